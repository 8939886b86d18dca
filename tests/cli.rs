//! The `videoshare` binary's client commands against a running encoder, and
//! `videoshare encoder` + `videoshare portal` as two processes.

mod common;

use std::path::Path;

use common::cli::{ANY_PORT, CODER, fails, ok, videoshare};
use common::{DEADLINE, make_clip, names_in, spawn_app};
use serde_json::Value;
use tokio::process::{Child, Command};

use videoshare::carbon::Client;

use common::cli::BIN;

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn every_subcommand_has_help() {
    for command in [
        "serve", "encoder", "portal", "submit", "jobs", "job", "presets", "probe", "nodes",
    ] {
        let run = videoshare(&[command, "--help"]).await;
        assert!(
            run.ok && run.stdout.contains("Usage: videoshare"),
            "{command}: {}",
            run.stderr
        );
    }
    let run = videoshare(&["portal", "--help"]).await;
    assert!(run.stdout.contains("--encoder <HOST:PORT>") && run.stdout.contains("127.0.0.1:1547"));
    let run = videoshare(&["job", "--help"]).await;
    for action in [
        "info", "pause", "resume", "stop", "requeue", "remove", "priority",
    ] {
        assert!(run.stdout.contains(action), "job --help lacks {action}");
    }
}

#[tokio::test]
async fn client_commands_drive_a_running_encoder() {
    let app = spawn_app().await;
    let encoder = app.carbon.to_string();
    let clip = make_clip(&app.uploaded_dir(), "cli clip.mp4", 1, 160, 120);

    let presets = ok(&["presets"], &encoder).await;
    assert!(
        presets.contains("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"),
        "{presets}"
    );

    let probed = ok(&["probe", &text(&clip)], &encoder).await;
    assert!(
        probed.contains("h264 160x120") && probed.contains("aac"),
        "{probed}"
    );

    let submitted = ok(
        &["submit", &text(&clip), "--wait", "--priority", "9"],
        &encoder,
    )
    .await;
    let lines: Vec<&str> = submitted.lines().collect();
    let guid = lines[0].to_owned();
    let output = app.streams_dir().join("cli clip.mp4");
    assert_eq!(lines[1..], [text(&output).as_str()], "{submitted}");
    assert!(output.is_file());

    let json: Value = serde_json::from_str(&ok(&["jobs", "--json"], &encoder).await).expect("json");
    assert_eq!(json[0]["guid"], guid.as_str());
    assert_eq!(json[0]["status"], "COMPLETED");
    assert_eq!(json[0]["priority"], 9);
    let table = ok(&["jobs", "--status", "completed"], &encoder).await;
    assert!(table.contains(&guid), "{table}");
    let none = ok(&["jobs", "--status", "QUEUED"], &encoder).await;
    assert!(!none.contains(&guid), "{none}");
    let why = fails(&["jobs", "--status", "DONE"], &encoder).await;
    assert!(
        why.contains("--status") && why.contains("COMPLETED"),
        "{why}"
    );

    let info = ok(&["job", &guid, "info"], &encoder).await;
    assert!(
        info.contains("Output") && info.contains(&text(&output)),
        "{info}"
    );
    let raised = ok(&["job", &guid, "priority", "42"], &encoder).await;
    assert!(raised.contains("priority 42"), "{raised}");
    let why = fails(&["job", &guid, "pause"], &encoder).await;
    assert!(why.contains("it is COMPLETED"), "{why}");
    let why = fails(&["job", &guid, "resume"], &encoder).await;
    assert!(why.contains("Resume applies to PAUSED jobs"), "{why}");
    let requeued = ok(&["job", &guid, "requeue"], &encoder).await;
    assert!(!requeued.contains("COMPLETED"), "{requeued}");
    let client = Client::new(encoder.clone());
    common::wait_completed(&client, guid.parse().expect("a GUID")).await;
    let removed = ok(&["job", &guid, "remove"], &encoder).await;
    assert!(removed.contains("removed"));
    let why = fails(&["job", &guid, "info"], &encoder).await;
    assert!(why.contains("no job with GUID"), "{why}");
    let why = fails(&["job", "12345", "info"], &encoder).await;
    assert!(why.contains("is not a GUID"), "{why}");
    app.stop().await;
}

#[tokio::test]
async fn submit_reports_refusals_and_failed_jobs_with_its_exit_code() {
    let app = spawn_app().await;
    let encoder = app.carbon.to_string();
    let missing = app.uploaded_dir().join("missing.mp4");
    let why = fails(&["submit", &text(&missing)], &encoder).await;
    assert!(why.contains("does not exist"), "{why}");
    let why = fails(&["submit", &text(&missing), "--preset", "480p"], &encoder).await;
    assert!(
        why.contains("--preset") && why.contains("not a GUID"),
        "{why}"
    );

    let fake = app.uploaded_dir().join("fake.mp4");
    std::fs::write(&fake, "not a video at all").expect("write");
    let run = videoshare(&["submit", &text(&fake), "--wait", "--encoder", &encoder]).await;
    assert!(!run.ok, "an ERROR job must fail the command");
    assert!(run.stderr.contains("ended ERROR"), "{}", run.stderr);
    assert!(names_in(&app.streams_dir()).is_empty());

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let nobody = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let why = fails(&["jobs"], &nobody).await;
    assert!(
        why.contains("cannot connect") && why.contains(&nobody),
        "{why}"
    );
    assert!(
        why.contains("hint:") && why.contains("--encoder HOST:PORT"),
        "{why}"
    );
    assert_eq!(
        why.matches("Connection refused").count(),
        1,
        "said once: {why}"
    );

    // Mistakes caught before anything is sent.
    let clip = make_clip(&app.uploaded_dir(), "c.mp4", 1, 160, 120);
    let seed = "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}";
    let why = fails(&["submit", &text(&clip), "--also", seed], &encoder).await;
    assert!(why.contains("already asked for"), "{why}");
    let why = fails(&["probe", "no-such-clip.mp4"], &encoder).await;
    assert!(why.contains("no such file or folder here"), "{why}");
    let why = fails(&["submit", &text(&clip), "--dest", "no/such/dir"], &encoder).await;
    assert!(why.contains("--dest"), "{why}");
    // Outside the encoder's folders: the reply says what to do.
    let outside = make_clip(&app.data, "outside.mp4", 1, 160, 120);
    let why = fails(&["submit", &text(&outside)], &encoder).await;
    assert!(
        why.contains("copy the file into uploaded/") && why.contains("--root"),
        "{why}"
    );
    app.stop().await;
}

/// Starts `videoshare ARGS` and waits for the log line containing `marker`;
/// returns the child and the text after the marker.
async fn start(args: &[&str], marker: &str) -> (Child, String) {
    let mut command = Command::new(BIN);
    command.args(args).env(CODER, ANY_PORT);
    common::start_command(command, marker).await
}

/// Starts `videoshare serve` over `data` on free ports; returns the child
/// and the portal's `host:port`.
async fn start_serve(data: &str) -> (Child, String) {
    let args = [
        "serve",
        "--data",
        data,
        "--http",
        "127.0.0.1:0",
        "--carbon",
        "127.0.0.1:0",
    ];
    let (child, http) = start(&args, "portal listening on ").await;
    (child, http.trim_start_matches("http://").to_owned())
}

#[tokio::test]
async fn the_portal_alone_drives_the_encoder_alone() {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let (encoder_data, portal_data) = (dir.path().join("encoder"), dir.path().join("portal"));
    std::fs::create_dir_all(&portal_data).expect("mkdir");
    let (_encoder, carbon) = start(
        &[
            "encoder",
            "--data",
            &text(&encoder_data),
            "--carbon",
            "127.0.0.1:0",
            "--root",
            &text(&portal_data),
        ],
        "Carbon encoder listening on ",
    )
    .await;
    let (_portal, http) = start(
        &[
            "portal",
            "--data",
            &text(&portal_data),
            "--http",
            "127.0.0.1:0",
            "--encoder",
            &carbon,
        ],
        "portal listening on ",
    )
    .await;

    let clip = make_clip(dir.path(), "two processes.mp4", 1, 160, 120);
    let reply: Value = common::upload_to(&http, &clip)
        .await
        .json()
        .await
        .expect("json");
    let guid = reply["guid"]
        .as_str()
        .expect("a job GUID")
        .parse()
        .expect("GUID");
    common::wait_completed(&Client::new(carbon), guid).await;
    // The encoder wrote into the portal's streams folder (under the
    // portal's safe name for the upload), which it was
    // allowed with --root.
    assert_eq!(
        names_in(&portal_data.join("streams")),
        ["two_processes.mp4"]
    );
    assert!(names_in(&encoder_data.join("streams")).is_empty());
}

#[tokio::test]
async fn a_closed_stdout_ends_the_command_quietly() {
    let app = spawn_app().await;
    // `videoshare jobs | head -0`: the reader is gone before anything is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(BIN)
        .args(["jobs", "--encoder", &app.carbon.to_string()])
        .stdout(writer)
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_encoders_cannot_share_a_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = text(dir.path());
    let args = ["encoder", "--data", &data, "--carbon", "127.0.0.1:0"];
    let (_first, _) = start(&args, "Carbon encoder listening on ").await;
    let second = videoshare(&args).await;
    assert!(!second.ok);
    assert!(
        second
            .stderr
            .contains("another videoshare encoder is already using"),
        "{}",
        second.stderr
    );
    // A portal may share it (it takes the other half of the folder).
    let (_portal, _) = start(
        &["portal", "--data", &data, "--http", "127.0.0.1:0"],
        "portal listening on ",
    )
    .await;
}

#[tokio::test]
async fn a_bad_config_or_preset_file_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("videoshare.toml");
    let data = text(&dir.path().join("data"));
    let start_with = |config: &Path| {
        let config = text(config);
        let data = data.clone();
        async move {
            videoshare(&[
                "encoder",
                "--data",
                &data,
                "--carbon",
                "127.0.0.1:0",
                "--config",
                &config,
            ])
            .await
        }
    };
    std::fs::write(&config, "[[watch]]\nfolder = \"nowhere\"\n").expect("write");
    let run = start_with(&config).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("videoshare.toml") && run.stderr.contains("watch[0].folder"),
        "{}",
        run.stderr
    );

    std::fs::create_dir(dir.path().join("presets")).expect("mkdir");
    std::fs::write(
        dir.path().join("presets/broken.toml"),
        "guid = \"{11111111-2222-3333-4444-555555555555}\"\nname = \"x\"\ncontainer = \"mp4\"\n\
         extension = \"mp4\"\n[video]\ncodec = \"libx264\"\nbitrate_kbps = 800\nwidth = 641\nheight = 360\n",
    )
    .expect("write");
    std::fs::write(&config, "presets = \"presets\"\n").expect("write");
    let run = start_with(&config).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("broken.toml") && run.stderr.contains("video.width"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_killed_encoder_leaves_no_ffmpeg_behind_and_its_restart_finishes_the_job() {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = text(&dir.path().join("data"));
    let args = ["encoder", "--data", &data, "--carbon", "127.0.0.1:0"];
    let (mut first, carbon) = start(&args, "Carbon encoder listening on ").await;
    let uploaded = dir.path().join("data/uploaded");
    let clip = make_clip(&uploaded, "long.mp4", 30, 320, 240);
    let client = Client::new(carbon);
    let guid = client
        .queue(videoshare::carbon::message::JobQueue::single(
            &text(&clip),
            videoshare::encoder::preset::SEED_PRESET,
            &text(&dir.path().join("data/streams")),
        ))
        .await
        .expect("queued");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while common::ffmpeg_states(&clip).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ffmpeg never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.start_kill().expect("kill -9");
    first.wait().await.expect("reaped");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !common::ffmpeg_states(&clip).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an orphan ffmpeg is still encoding"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let (_second, carbon) = start(&args, "Carbon encoder listening on ").await;
    common::wait_completed(&Client::new(carbon), guid).await;
    assert_eq!(names_in(&dir.path().join("data/streams")), ["long.mp4"]);
    assert!(names_in(&dir.path().join("data/tmp/encodes")).is_empty());
}

#[tokio::test]
async fn the_carbon_socket_stays_on_loopback_unless_told_who_may_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = text(dir.path());
    let open = videoshare(&["encoder", "--data", &data, "--carbon", "0.0.0.0:0"]).await;
    assert!(!open.ok);
    assert!(open.stderr.contains("--carbon-allow"), "{}", open.stderr);
    let bad = videoshare(&["encoder", "--data", &data, "--carbon-allow", "10.0.0.0/33"]).await;
    assert!(
        !bad.ok && bad.stderr.contains("not a network"),
        "{}",
        bad.stderr
    );
    let (_allowed, addr) = start(
        &[
            "encoder",
            "--data",
            &data,
            "--carbon",
            "0.0.0.0:0",
            "--carbon-allow",
            "10.0.0.0/8",
        ],
        "Carbon encoder listening on ",
    )
    .await;
    // Loopback is always allowed.
    let port = addr.rsplit(':').next().expect("port");
    let version = Client::new(format!("127.0.0.1:{port}"))
        .version()
        .await
        .expect("a loopback client is served");
    assert_eq!(version.product, "videoshare");
}

#[tokio::test]
async fn a_killed_portal_leaves_no_half_upload_and_keeps_finished_videos() {
    use tokio::io::AsyncWriteExt;
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = text(&dir.path().join("data"));
    let (mut first, http) = start_serve(&data).await;
    let data_dir = dir.path().join("data");

    // A finished video first.
    let clip = make_clip(dir.path(), "done.mp4", 1, 160, 120);
    let reply: Value = common::upload_to(&format!("http://{http}"), &clip)
        .await
        .json()
        .await
        .expect("json");
    assert!(reply["guid"].is_string(), "{reply}");
    let finished = data_dir.join("streams/done.mp4");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !finished.exists() {
        assert!(tokio::time::Instant::now() < deadline, "never encoded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let finished_bytes = std::fs::read(&finished).expect("read");

    // Then an upload cut by kill -9 half-way through its body.
    let body_len = 4 << 20;
    let mut stream = tokio::net::TcpStream::connect(&http)
        .await
        .expect("connect");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
         Content-Length: {body_len}\r\n\r\n--XYZ\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"cut.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
        .write_all(&vec![7u8; 1 << 20])
        .await
        .expect("send a part");
    let tmp = data_dir.join("tmp/uploads");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while names_in(&tmp).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.start_kill().expect("kill -9");
    first.wait().await.expect("reaped");
    drop(stream);

    let (_second, _) = start_serve(&data).await;
    assert!(names_in(&tmp).is_empty(), "the half upload is gone");
    assert_eq!(
        names_in(&data_dir.join("uploaded")),
        ["done.mp4"],
        "only the whole upload"
    );
    assert_eq!(names_in(&data_dir.join("streams")), ["done.mp4"]);
    assert_eq!(
        std::fs::read(&finished).expect("read"),
        finished_bytes,
        "intact"
    );
}

#[tokio::test]
async fn sigterm_closes_sockets_with_a_reason_and_requeues_the_running_encode() {
    use futures_util::StreamExt;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = text(&dir.path().join("data"));
    let (mut server, http) = start_serve(&data).await;
    let clip = make_clip(dir.path(), "long.mp4", 30, 320, 240);
    let reply: Value = common::upload_to(&format!("http://{http}"), &clip)
        .await
        .json()
        .await
        .expect("json");
    let guid: videoshare::carbon::Guid =
        reply["guid"].as_str().expect("guid").parse().expect("GUID");
    let stored = dir.path().join("data/uploaded/long.mp4");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while common::ffmpeg_states(&stored).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the encode never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("websocket");

    let pid = i32::try_from(server.id().expect("running")).expect("pid");
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM");
    let close = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                return frame.map(|f| f.reason.to_string());
            }
        }
        None
    })
    .await
    .expect("the socket is closed in time");
    assert_eq!(close.as_deref(), Some("server shutting down"));
    let status = tokio::time::timeout(DEADLINE, server.wait())
        .await
        .expect("the server stops in time")
        .expect("exit status");
    assert!(status.success(), "{status}");
    assert!(
        common::ffmpeg_states(&stored).is_empty(),
        "no ffmpeg left running"
    );

    // The interrupted encode is back in the queue and finishes after a restart.
    let encoder_args = ["encoder", "--data", &data, "--carbon", "127.0.0.1:0"];
    let (_encoder, carbon) = start(&encoder_args, "Carbon encoder listening on ").await;
    common::wait_completed(&Client::new(carbon), guid).await;
    assert_eq!(names_in(&dir.path().join("data/streams")), ["long.mp4"]);
}

/// Runs `videoshare encoder` in a private mount namespace whose data folder
/// is a tmpfs of `size` (`unshare -m`, or with a user namespace where root
/// is not available), so a test can fill the disk for real.
async fn encoder_on_small_disk(data: &Path, sources: &Path, size: &str) -> (Child, String) {
    let script = r#"mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" && exec "$3" encoder --data "$1" --carbon 127.0.0.1:0 --root "$4""#;
    let usable = |flags: &[&str]| {
        std::process::Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", "mount -t tmpfs tmpfs /mnt"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let flags: &[&str] = if usable(&["-m"]) {
        &["-m"]
    } else if usable(&["-r", "-m"]) {
        &["-r", "-m"]
    } else {
        panic!("this test needs `unshare -m` (root) or user namespaces to mount a small tmpfs");
    };
    let mut command = Command::new("unshare");
    command
        .env(CODER, ANY_PORT)
        .args(flags)
        .args(["sh", "-c", script, "sh"])
        .arg(data)
        .arg(size)
        .arg(BIN)
        .arg(sources);
    common::start_command(command, "Carbon encoder listening on ").await
}

#[tokio::test]
async fn a_full_disk_fails_the_job_readably_and_the_next_job_runs() {
    use videoshare::carbon::JobStatus;
    use videoshare::carbon::message::JobQueue;
    use videoshare::encoder::preset::SEED_PRESET;
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).expect("mkdir");
    // About 7 MB of output: far more than the 2 MiB disk.
    let big = make_clip(&sources, "big.mp4", 60, 320, 240);
    let small = make_clip(&sources, "small.mp4", 1, 160, 120);
    let data = dir.path().join("data");
    let (_encoder, carbon) = encoder_on_small_disk(&data, &sources, "2m").await;
    let client = Client::new(carbon);
    let streams = data.join("streams");
    let streams = text(&streams);

    let guid = client
        .queue(JobQueue::single(&text(&big), SEED_PRESET, &streams))
        .await
        .expect("queued");
    let failed = common::wait_finished(&client, guid).await;
    assert_eq!(failed.status, JobStatus::Error, "{failed:?}");
    eprintln!("Description: {}", failed.failure());
    assert!(
        failed.failure().starts_with("the disk is full"),
        "{}",
        failed.failure()
    );

    // The server goes on; the small job fits only because the failed
    // encode's partial output was removed.
    let guid = client
        .queue(JobQueue::single(&text(&small), SEED_PRESET, &streams))
        .await
        .expect("queued");
    let done = common::wait_finished(&client, guid).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let info = client.info(guid).await.expect("info");
    let output = info.destinations[0]
        .target_files
        .first()
        .expect("an output");
    assert!(output.ends_with("small.mp4"), "{output:?}");
}
