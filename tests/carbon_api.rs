//! Every Carbon task type and `JobCommand` against a running encoder with
//! real ffmpeg jobs: job control really suspends, continues and kills
//! ffmpeg; the scheduler orders by priority; bad requests say why.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    ffmpeg_states, make_clip, names_in, probe_streams, spawn_app, spawn_app_with, wait_until,
};
use videoshare::carbon::message::{
    Command, Destination, JobQueue, JobStatusList, ModuleData, NodeCommand, NodeCommandKind,
    ProfileList, Source,
};
use videoshare::carbon::{Client, ClientError, Guid, JobEntry, JobStatus, Reply, Request};
use videoshare::encoder::preset::SEED_PRESET;

/// Long enough that an encode to 720×480 lasts seconds, so it can be paused,
/// stopped or removed while running.
const LONG_SECS: u32 = 30;

fn client(app: &common::TestApp) -> Client {
    Client::new(app.carbon.to_string())
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

async fn submit(client: &Client, source: &Path, streams: &Path, priority: Option<u32>) -> Guid {
    let job = JobQueue {
        priority,
        ..JobQueue::single(&text(source), SEED_PRESET, &text(streams))
    };
    client.queue(job).await.expect("queued")
}

async fn wait_status(client: &Client, guid: Guid, status: JobStatus) -> JobEntry {
    wait_until(client, guid, status.as_str(), |j| j.status == status).await
}

/// Makes a clip long enough to act on while it encodes, submits it and
/// waits until ffmpeg reports progress.
async fn start_long_encode(app: &common::TestApp, client: &Client) -> (PathBuf, Guid) {
    let clip = make_clip(&app.uploaded_dir(), "long.mp4", LONG_SECS, 320, 240);
    let guid = submit(client, &clip, &app.streams_dir(), None).await;
    wait_until(client, guid, "encoding", |j| {
        j.status == JobStatus::Started && j.progress > 0
    })
    .await;
    (clip, guid)
}

/// Waits (up to 5 s) for a process state the kernel applies asynchronously.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn refused(client: &Client, guid: Guid, command: Command) -> String {
    match client.command(guid, command).await {
        Err(ClientError::Refused(why)) => why,
        other => panic!("{command:?} should be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn read_only_tasks_describe_the_server_and_files() {
    let app = spawn_app_with(|a| a.encoder.encode_slots = 3).await;
    let client = client(&app);

    let version = client.version().await.expect("version");
    assert_eq!(version.product, "videoshare");
    assert!(
        version.version.starts_with("videoshare ver. ") && version.version.ends_with(".00"),
        "the manual's `<product> ver. NN.NN.NN.NN`: {}",
        version.version
    );
    assert!(!version.api_version.is_empty());

    let profiles = client.profiles().await.expect("profiles");
    assert!(
        profiles
            .iter()
            .any(|p| p.guid == SEED_PRESET && p.width == Some(720))
    );
    let of_type = |t: &str| {
        Request::ProfileList(ProfileList {
            profile_type: Some(t.to_owned()),
        })
    };
    let Reply::Profiles { profiles: none } =
        client.call(of_type("Source")).await.expect("profiles")
    else {
        panic!("not a profile list")
    };
    assert!(none.is_empty(), "no Source profiles");
    let all = client
        .call(Request::ProfileList(ProfileList::default()))
        .await
        .expect("all profiles");
    assert!(matches!(all, Reply::Profiles { profiles } if !profiles.is_empty()));

    let node = client.node_status().await.expect("node");
    // GetNodeStatus has no FreeSlots.DWD (the manual's node view)…
    assert_eq!((node.slots, node.free_slots, node.running_jobs), (3, 0, 0));
    let Reply::ServerNode(server_view) = client
        .call(Request::NodeCommand(NodeCommand::get(
            NodeCommandKind::GetServerNodeStatus,
        )))
        .await
        .expect("server node")
    else {
        panic!("not a ServerNodeStatus")
    };
    // …GetServerNodeStatus has.
    assert_eq!(
        server_view,
        videoshare::carbon::message::NodeStatus {
            free_slots: 3,
            ..node
        }
    );

    let clip = make_clip(&app.uploaded_dir(), "eval me.mp4", 2, 160, 120);
    let evaluated = client.evaluate(&text(&clip)).await.expect("evaluate");
    let video = evaluated.description.video.expect("a video stream");
    assert_eq!(
        (video.width, video.height, video.codec.as_str()),
        (160, 120, "h264")
    );
    let duration = evaluated.description.duration_ticks.expect("a duration");
    assert!(
        (duration as f64 / 27e6 - 2.0).abs() < 0.2,
        "{duration} ticks of 27 MHz"
    );
    assert_eq!(video.frame_duration_ticks, Some(1_080_000), "25 fps");
    let audio = evaluated.description.audio.expect("an audio stream");
    assert_eq!(audio.codec, "aac");
    assert!(evaluated.format.contains("mp4"));
    // Through the seed's path mapping, like any other source.
    let mapped = client
        .evaluate("c:\\videoshare\\uploaded\\eval me.mp4")
        .await
        .expect("mapped path");
    assert_eq!(mapped.filename, "c:\\videoshare\\uploaded\\eval me.mp4");

    std::fs::write(app.uploaded_dir().join("notes.mp4"), "just text").expect("write");
    for (file, reason) in [
        (
            text(&app.uploaded_dir().join("missing.mp4")),
            "does not exist",
        ),
        (text(&app.uploaded_dir().join("notes.mp4")), "notes.mp4"),
        ("/etc/hostname".to_owned(), "outside the folders"),
    ] {
        match client.evaluate(&file).await {
            Err(ClientError::Refused(why)) => assert!(why.contains(reason), "{file}: {why}"),
            other => panic!("{file}: {other:?}"),
        }
    }

    let a = submit(&client, &clip, &app.streams_dir(), None).await;
    let b = submit(&client, &clip, &app.streams_dir(), None).await;
    let guids = client.job_list().await.expect("job list");
    assert_eq!(guids, vec![a, b], "oldest first");
    app.stop().await;
}

#[tokio::test]
async fn pause_suspends_ffmpeg_and_resume_continues_from_there() {
    let app = spawn_app().await;
    let client = client(&app);
    let (clip, guid) = start_long_encode(&app, &client).await;

    let paused = client.command(guid, Command::Pause).await.expect("pause");
    assert_eq!(paused.status, JobStatus::Paused);
    eventually("ffmpeg is stopped by SIGSTOP", || {
        ffmpeg_states(&clip) == ['T']
    })
    .await;
    let held_at = client
        .command(guid, Command::QueryInfo)
        .await
        .expect("query");
    // A suspended ffmpeg reports nothing: progress stays put.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let later = client
        .command(guid, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!(
        (later.status, later.progress),
        (JobStatus::Paused, held_at.progress)
    );
    // Pausing twice is harmless.
    let again = client
        .command(guid, Command::Pause)
        .await
        .expect("pause again");
    assert_eq!(again.status, JobStatus::Paused);

    let resumed = client.command(guid, Command::Resume).await.expect("resume");
    assert_eq!(resumed.status, JobStatus::Started);
    eventually("ffmpeg continued by SIGCONT", || {
        let states = ffmpeg_states(&clip);
        !states.is_empty() && !states.contains(&'T')
    })
    .await;
    wait_until(&client, guid, "progress after resume", |j| {
        j.progress > held_at.progress || j.status == JobStatus::Completed
    })
    .await;
    let done = wait_status(&client, guid, JobStatus::Completed).await;
    assert_eq!(done.progress, 100);

    // QueryInfo: the source and the output of the destination.
    let info = client.info(guid).await.expect("info");
    assert_eq!(info.job.guid, guid);
    assert_eq!(info.sources[0], text(&clip));
    let output = info.destinations[0]
        .target_files
        .first()
        .expect("an output once completed");
    let streams = probe_streams(Path::new(output));
    assert!(
        streams
            .iter()
            .any(|s| s.0 == "video" && s.2 == 720 && s.3 == 480),
        "{streams:?}"
    );
    // A completed job can be neither paused nor resumed.
    let why = refused(&client, guid, Command::Pause).await;
    assert!(why.contains("it is COMPLETED"), "{why}");
    app.stop().await;
}

#[tokio::test]
async fn pausing_right_after_submit_holds_the_job_until_resumed() {
    let app = spawn_app().await;
    let client = client(&app);
    let clip = make_clip(&app.uploaded_dir(), "early.mp4", 2, 160, 120);
    let guid = submit(&client, &clip, &app.streams_dir(), None).await;
    // Whether it is still QUEUED or already STARTING (probing), it pauses.
    let paused = loop {
        match client.command(guid, Command::Pause).await {
            Ok(job) => break job,
            // The brief hand-over to a slot asks for a retry.
            Err(ClientError::Refused(why)) if why.contains("send the command again") => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(paused.status, JobStatus::Paused);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = client
        .command(guid, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!((held.status, held.progress), (JobStatus::Paused, 0));
    assert!(
        ffmpeg_states(&clip).iter().all(|s| *s == 'T'),
        "no ffmpeg runs"
    );
    client.command(guid, Command::Resume).await.expect("resume");
    let done = wait_status(&client, guid, JobStatus::Completed).await;
    assert_eq!(done.progress, 100);
    app.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_paused_jobs_paused_and_requeues_running_ones() {
    let data = tempfile::tempdir().expect("tempdir");
    let two_slots = |a: &mut videoshare::config::ServeArgs| a.encoder.encode_slots = 2;
    let first = common::spawn_app_in(data.path().to_path_buf(), two_slots).await;
    let client_1 = client(&first);
    let (_, paused) = start_long_encode(&first, &client_1).await;
    client_1
        .command(paused, Command::Pause)
        .await
        .expect("pause");
    let clip = make_clip(&first.uploaded_dir(), "other.mp4", LONG_SECS, 320, 240);
    let running = submit(&client_1, &clip, &first.streams_dir(), None).await;
    wait_status(&client_1, running, JobStatus::Started).await;
    let streams = first.streams_dir();
    first.stop().await;

    let second = common::spawn_app_in(data.path().to_path_buf(), two_slots).await;
    let client_2 = client(&second);
    // The suspended encode is gone with the old process: the job stays
    // PAUSED, to start over from 0 % when resumed.
    let held = client_2
        .command(paused, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!((held.status, held.progress), (JobStatus::Paused, 0));
    assert!(held.start_time.is_none());
    // The running one went back to the queue and runs again.
    wait_status(&client_2, running, JobStatus::Completed).await;
    client_2
        .command(paused, Command::Resume)
        .await
        .expect("resume");
    wait_status(&client_2, paused, JobStatus::Completed).await;
    assert_eq!(
        names_in(&streams),
        ["long.mp4", "other.mp4"],
        "each encoded once"
    );
    assert!(names_in(&data.path().join("tmp/encodes")).is_empty());
    second.stop().await;
}

#[tokio::test]
async fn stop_kills_the_encode_and_requeue_runs_it_again() {
    let app = spawn_app().await;
    let client = client(&app);
    let (clip, guid) = start_long_encode(&app, &client).await;
    let stopped = client.command(guid, Command::Stop).await.expect("stop");
    assert_eq!(stopped.status, JobStatus::Stopped);
    assert!(stopped.failure().contains("Stop"), "{}", stopped.failure());
    assert!(ffmpeg_states(&clip).is_empty(), "ffmpeg is gone");
    assert!(
        names_in(&app.data.join("tmp/encodes")).is_empty(),
        "temp output removed"
    );
    assert!(names_in(&app.streams_dir()).is_empty(), "nothing published");
    // Stop is idempotent; Resume of a stopped job is refused.
    let again = client
        .command(guid, Command::Stop)
        .await
        .expect("stop again");
    assert_eq!(again.status, JobStatus::Stopped);
    let why = refused(&client, guid, Command::Resume).await;
    assert!(why.contains("it is STOPPED"), "{why}");

    let requeued = client
        .command(guid, Command::Requeue)
        .await
        .expect("requeue");
    assert!(
        matches!(
            requeued.status,
            JobStatus::Queued | JobStatus::Starting | JobStatus::Started
        ),
        "{}",
        requeued.status
    );
    let done = wait_status(&client, guid, JobStatus::Completed).await;
    assert_eq!(done.progress, 100);
    assert_eq!(names_in(&app.streams_dir()), ["long.mp4"]);

    // A completed job requeued runs again and never overwrites its output.
    client
        .command(guid, Command::Requeue)
        .await
        .expect("requeue done");
    wait_status(&client, guid, JobStatus::Completed).await;
    assert_eq!(names_in(&app.streams_dir()), ["long-1.mp4", "long.mp4"]);
    let why = refused(&client, guid, Command::Stop).await;
    assert!(why.contains("it is COMPLETED"), "{why}");
    app.stop().await;
}

#[tokio::test]
async fn priority_orders_the_queue_and_node_status_counts_slots() {
    let app = spawn_app().await; // one slot
    let client = client(&app);
    let streams = app.streams_dir();
    let long = make_clip(&app.uploaded_dir(), "long.mp4", LONG_SECS, 320, 240);
    let short = make_clip(&app.uploaded_dir(), "short.mp4", 1, 160, 120);

    // Hold the only slot with a paused encode.
    let blocker = submit(&client, &long, &streams, None).await;
    wait_status(&client, blocker, JobStatus::Started).await;
    client
        .command(blocker, Command::Pause)
        .await
        .expect("pause");

    let first = submit(&client, &short, &streams, None).await;
    let second = submit(&client, &short, &streams, None).await;
    let urgent = submit(&client, &short, &streams, Some(200)).await;
    // A held (paused) queued job is skipped by the scheduler.
    let held = client.command(first, Command::Pause).await.expect("hold");
    assert_eq!(held.status, JobStatus::Paused);
    let node = client.node_status().await.expect("node");
    assert_eq!(
        (
            node.slots,
            node.free_slots,
            node.running_jobs,
            node.queued_jobs
        ),
        (1, 0, 1, 2)
    );

    // Raise `second` above `urgent`, then free the slot.
    let raised = client
        .command(second, Command::SetPriority(250))
        .await
        .expect("set priority");
    assert_eq!(raised.priority, 250);
    let why = refused(&client, second, Command::SetPriority(256)).await;
    assert!(why.contains("out of range"), "{why}");
    client.command(blocker, Command::Stop).await.expect("stop");

    let next = wait_until(&client, second, "second starts first", |j| {
        j.status != JobStatus::Queued
    })
    .await;
    assert_ne!(next.status, JobStatus::Queued);
    let other = client
        .command(urgent, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!(other.status, JobStatus::Queued, "priority 250 before 200");
    wait_status(&client, second, JobStatus::Completed).await;
    let urgent_done = wait_status(&client, urgent, JobStatus::Completed).await;
    // Then the held job is still held until resumed.
    let still = client
        .command(first, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!(still.status, JobStatus::Paused);
    let resumed = client
        .command(first, Command::Resume)
        .await
        .expect("resume");
    assert_ne!(resumed.status, JobStatus::Paused);
    let first_done = wait_status(&client, first, JobStatus::Completed).await;
    assert!(first_done.start_time_cnlt >= urgent_done.start_time_cnlt);
    app.stop().await;
}

#[tokio::test]
async fn remove_stops_a_running_job_and_keeps_finished_outputs() {
    let app = spawn_app().await;
    let client = client(&app);
    let streams = app.streams_dir();
    let short = make_clip(&app.uploaded_dir(), "short.mp4", 1, 160, 120);
    let done = submit(&client, &short, &streams, None).await;
    wait_status(&client, done, JobStatus::Completed).await;
    client.remove(done).await.expect("remove finished");
    assert_eq!(names_in(&streams), ["short.mp4"], "outputs stay");

    let long = make_clip(&app.uploaded_dir(), "long.mp4", LONG_SECS, 320, 240);
    let running = submit(&client, &long, &streams, None).await;
    wait_status(&client, running, JobStatus::Started).await;
    client.remove(running).await.expect("remove running");
    // Killed at once; on a loaded machine the process takes a moment to go.
    eventually("its ffmpeg is killed", || ffmpeg_states(&long).is_empty()).await;
    assert!(names_in(&app.data.join("tmp/encodes")).is_empty());
    for gone in [done, running] {
        let why = refused(&client, gone, Command::QueryInfo).await;
        assert!(why.contains("no job with GUID"), "{why}");
    }
    assert!(client.job_list().await.expect("list").is_empty());
    // The slot is free again.
    let next = submit(&client, &short, &streams, None).await;
    wait_status(&client, next, JobStatus::Completed).await;
    app.stop().await;
}

#[tokio::test]
async fn one_job_can_have_several_destinations() {
    let app = spawn_app().await;
    let client = client(&app);
    let clip = make_clip(&app.uploaded_dir(), "multi.mp4", 1, 160, 120);
    let second_dir: PathBuf = app.streams_dir().join("small");
    std::fs::create_dir(&second_dir).expect("mkdir");
    let destination = |dir: &Path, base: &str| Destination {
        preset_guid: Some(SEED_PRESET.to_string()),
        module_data: ModuleData {
            path: Some(text(dir)),
            base_file_name: Some(base.to_owned()),
        },
        ..Destination::default()
    };
    let job = JobQueue {
        job_name: Some("two outputs".into()),
        user: Some("ann".into()),
        sources: vec![Source::file(text(&clip))],
        destinations: vec![
            destination(&app.streams_dir(), "%s-web"),
            destination(&second_dir, "copy of %s"),
        ],
        priority: Some(7),
        ..JobQueue::default()
    };
    let guid = client.queue(job).await.expect("queued");
    let done = wait_status(&client, guid, JobStatus::Completed).await;
    assert_eq!(
        (done.name.as_str(), done.user.as_str(), done.priority),
        ("two outputs", "ann", 7)
    );
    let info = client.info(guid).await.expect("info");
    let outputs: Vec<String> = info
        .destinations
        .iter()
        .filter_map(|d| d.target_files.first().cloned())
        .collect();
    assert_eq!(
        outputs,
        vec![
            text(&app.streams_dir().join("multi-web.mp4")),
            text(&second_dir.join("copy of multi.mp4")),
        ]
    );
    for output in &outputs {
        assert!(!probe_streams(Path::new(output)).is_empty(), "{output}");
    }

    // One bad destination refuses the whole job, naming it.
    let bad = JobQueue {
        destinations: vec![
            destination(&app.streams_dir(), "%s"),
            destination(Path::new("/etc"), "%s"),
        ],
        ..JobQueue::single(&text(&clip), SEED_PRESET, "")
    };
    match client.queue(bad).await {
        Err(ClientError::Refused(why)) => assert!(why.contains("Module_1"), "{why}"),
        other => panic!("{other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_commands_get_reasons_and_the_connection_stays_up() {
    let app = spawn_app().await;
    let client = client(&app);
    let unknown = Guid::new_random();
    for command in [
        Command::QueryInfo,
        Command::Pause,
        Command::Remove,
        Command::QueryInfo,
    ] {
        let why = match client
            .call(Request::JobCommand(videoshare::carbon::JobCommand {
                guid: unknown,
                command,
            }))
            .await
        {
            Err(ClientError::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(why.contains(&unknown.to_string()), "{why}");
    }
    // Raw documents: an unknown command, a GUID that is not one.
    let mut stream = tokio::net::TcpStream::connect(app.carbon)
        .await
        .expect("connect");
    for (doc, reason) in [
        (
            format!("<cnpsXML TaskType=\"JobCommand\" Command=\"Explode\" GUID=\"{unknown}\"/>"),
            "Explode",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\" Command=\"Pause\" GUID=\"{123}\"/>".to_owned(),
            "GUID",
        ),
        (
            "<cnpsXML TaskType=\"NodeCommand\" Command=\"Shutdown\"/>".to_owned(),
            "Shutdown",
        ),
        (
            "<cnpsXML TaskType=\"JobEvaluate\"/>".to_owned(),
            "no source",
        ),
    ] {
        let reply = raw_exchange(&mut stream, &doc).await;
        assert!(
            reply.contains("Success=\"FALSE\"") && reply.contains(reason),
            "{doc}\n→ {reply}"
        );
    }
    let reply = raw_exchange(&mut stream, "<cnpsXML TaskType=\"Version\"/>").await;
    assert!(reply.contains("Success=\"TRUE\""), "{reply}");
    let listed = client
        .list(JobStatusList::default())
        .await
        .expect("still serving");
    assert!(listed.is_empty());
    app.stop().await;
}

/// One request written as raw bytes, one reply read back as text.
async fn raw_exchange(stream: &mut tokio::net::TcpStream, xml: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let frame = format!("CarbonAPIXML1 {} {xml}", xml.len());
    stream.write_all(frame.as_bytes()).await.expect("send");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a reply in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let declared = text
            .strip_prefix("CarbonAPIXML1 ")
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest.len())));
        if let Some((len, have)) = declared
            && have >= len
        {
            return text;
        }
    }
}

#[tokio::test]
async fn every_builtin_preset_encodes_in_one_job() {
    let app = spawn_app().await;
    let client = client(&app);
    let clip = make_clip(&app.uploaded_dir(), "all.mp4", 1, 160, 120);
    let profiles = client.profiles().await.expect("profiles");
    assert_eq!(profiles.len(), 7, "the built-in presets");
    let job = JobQueue {
        destinations: profiles
            .iter()
            .map(|p| Destination {
                preset_guid: Some(p.guid.to_string()),
                module_data: ModuleData {
                    path: Some(text(&app.streams_dir())),
                    base_file_name: Some(format!(
                        "%s-{}",
                        p.guid.to_string().trim_matches(['{', '}'])
                    )),
                },
                ..Destination::default()
            })
            .collect(),
        ..JobQueue::single(&text(&clip), SEED_PRESET, "")
    };
    let guid = client.queue(job).await.expect("queued");
    wait_status(&client, guid, JobStatus::Completed).await;
    let info = client.info(guid).await.expect("info");
    for (profile, destination) in profiles.iter().zip(&info.destinations) {
        let output = destination.target_files.first().expect("an output");
        assert!(
            output.ends_with(&format!(".{}", profile.extension)),
            "{}",
            output
        );
        if profile.container == "hls" {
            // A folder: the master playlist, and the one rung a 120-line
            // source gets (checked in depth by tests/hls.rs).
            let folder = Path::new(output).parent().expect("the ladder's folder");
            assert!(output.ends_with("/master.m3u8"), "{output}");
            assert!(folder.join("360p/index.m3u8").is_file(), "{output}");
            continue;
        }
        let streams = probe_streams(Path::new(output));
        let video = streams.iter().find(|s| s.0 == "video");
        match (profile.width, profile.height) {
            (Some(w), Some(h)) => {
                let video = video.unwrap_or_else(|| panic!("{} has no video", profile.name));
                assert_eq!(
                    (video.2, video.3),
                    (u64::from(w), u64::from(h)),
                    "{}",
                    profile.name
                );
            }
            _ => assert!(video.is_none(), "{} is audio only", profile.name),
        }
        assert!(
            streams.iter().any(|s| s.0 == "audio"),
            "{} has sound",
            profile.name
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_hung_ffmpeg_is_killed_and_the_queue_goes_on() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let app = spawn_app_with(|a| a.encoder.stall_secs = 2).await;
    let client = client(&app);
    let (clip, guid) = start_long_encode(&app, &client).await;
    // Freeze ffmpeg behind videoshare's back, as a hung read would.
    for (pid, _) in common::ffmpeg_processes(&clip) {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
    }
    let next = submit(
        &client,
        &make_clip(&app.uploaded_dir(), "next.mp4", 1, 160, 120),
        &app.streams_dir(),
        None,
    )
    .await;
    let failed = wait_until(&client, guid, "the stall is noticed", |j| {
        j.status.is_terminal()
    })
    .await;
    assert_eq!(failed.status, JobStatus::Error);
    assert!(
        failed.failure().contains("no progress for 2 s"),
        "{}",
        failed.failure()
    );
    eventually("the hung ffmpeg is gone", || {
        ffmpeg_states(&clip).is_empty()
    })
    .await;
    wait_status(&client, next, JobStatus::Completed).await;
    assert_eq!(names_in(&app.streams_dir()), ["next.mp4"]);
    assert!(names_in(&app.data.join("tmp/encodes")).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_paused_job_is_not_a_hung_job() {
    let app = spawn_app_with(|a| a.encoder.stall_secs = 2).await;
    let client = client(&app);
    let (_, guid) = start_long_encode(&app, &client).await;
    client.command(guid, Command::Pause).await.expect("pause");
    // Longer than the stall time, paused.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let job = client
        .command(guid, Command::QueryInfo)
        .await
        .expect("query");
    assert_eq!(job.status, JobStatus::Paused, "{}", job.failure());
    client.command(guid, Command::Stop).await.expect("stop");
    app.stop().await;
}

#[tokio::test]
async fn a_source_that_vanishes_while_queued_is_an_error_and_the_queue_goes_on() {
    let app = spawn_app().await; // one slot
    let client = client(&app);
    let (_, blocker) = start_long_encode(&app, &client).await;
    client
        .command(blocker, Command::Pause)
        .await
        .expect("hold the slot");
    let doomed = make_clip(&app.uploaded_dir(), "doomed.mp4", 1, 160, 120);
    let kept = make_clip(&app.uploaded_dir(), "kept.mp4", 1, 160, 120);
    let lost = submit(&client, &doomed, &app.streams_dir(), None).await;
    let next = submit(&client, &kept, &app.streams_dir(), None).await;
    std::fs::remove_file(&doomed).expect("remove the source");
    client
        .command(blocker, Command::Stop)
        .await
        .expect("free the slot");

    let failed = wait_until(&client, lost, "the job ends", |j| j.status.is_terminal()).await;
    assert_eq!(failed.status, JobStatus::Error);
    assert!(
        failed.failure().contains("doomed.mp4 no longer exists"),
        "{}",
        failed.failure()
    );
    let data = app.data.to_string_lossy().into_owned();
    assert!(!failed.failure().contains(&data), "no server folders shown");
    wait_status(&client, next, JobStatus::Completed).await;
    assert_eq!(names_in(&app.streams_dir()), ["kept.mp4"]);
    app.stop().await;
}
