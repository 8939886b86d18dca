//! One long video encoded by several farm nodes at once: real encoder
//! processes on a real PostgreSQL cut a 3-minute source (threshold and
//! chunk length lowered for the test) into chunks that every node takes;
//! the joined MP4 and HLS ladder are checked with ffprobe (frame count,
//! duration, keyframes at the joins, continuous sound); a node killed
//! mid-chunk costs only that chunk (its ffmpeg runs are counted in the
//! `chunks` table); Pause, Stop and Requeue act on every chunk, and a
//! requeued job keeps the chunks it had finished.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::farm::{ChunkRow, Farm, Node};
use common::make_clip;
use common::media_check;
use common::proxy::{Direction, Fault, Proxy};
use tokio::time::Instant;
use videoshare::carbon::message::{Command, JobQueue};
use videoshare::carbon::{Guid, JobStatus, PresetId};

/// The built-in MP4 preset the jobs also ask for (one decode feeds both).
const MP4_360P: PresetId = PresetId::from_u128(0x543B8954_549F_4966_9B1C_99669AE288F7);

/// A one-rung ladder at the test source's size with 2 s segments, x264
/// `medium`: slow enough that every node gets chunks, quick enough for CI.
const TEST_LADDER: PresetId = PresetId::from_u128(0x3C5A1E2B_7D4F_4E6A_8B9C_0D1E2F3A4B5C);

fn add_test_ladder(farm: &Farm) {
    let preset = format!(
        r#"guid = "{TEST_LADDER}"
name = "Chunk test ladder"
description = "HLS 320x240, medium, 2 s segments"
container = "hls"
extension = "m3u8"

[video]
codec = "libx264"
bitrate_kbps = 400
width = 320
height = 240
speed = "medium"

[audio]
codec = "aac"
bitrate_kbps = 64

[hls]
segment_seconds = 2
"#
    );
    farm.add_preset("chunk-ladder.toml", &preset);
}

/// A farm whose nodes load [`TEST_LADDER`].
async fn chunk_farm() -> Farm {
    let farm = Farm::new().await;
    add_test_ladder(&farm);
    farm
}

/// Chunking for a short test source: over 60 s, chunks of about 30 s;
/// one ffmpeg thread per node, so three nodes share two cores fairly.
const CHUNKING: &[&str] = &[
    "--chunk-threshold-secs",
    "60",
    "--chunk-secs",
    "30",
    "--ffmpeg-threads",
    "1",
];

/// The test source's length and rate.
const SOURCE_SECS: u32 = 180;
const FPS: u32 = 25;

/// How long a farm on this 2-core machine may take for the whole job.
const ENCODE_LIMIT: Duration = Duration::from_secs(300);

/// How long a command may take to reach every chunk.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// Queues `clip` as one job with two destinations: [`MP4_360P`] and the
/// test ladder (2 s segments: its chunks are cut every 30 s).
async fn queue_both(farm: &Farm, node: &Node, clip: &Path) -> Guid {
    let mut job = JobQueue::single(
        &clip.to_string_lossy(),
        MP4_360P,
        &farm.streams().to_string_lossy(),
    );
    let mut ladder = job.destinations[0].clone();
    ladder.preset_guid = Some(TEST_LADDER.to_string());
    ladder.module_guid = Some(TEST_LADDER.to_string());
    job.destinations.push(ladder);
    node.client()
        .queue(job)
        .await
        .expect("the node queues the job")
}

/// Polls job `guid`'s chunks until `done` holds.
async fn wait_chunks(
    farm: &Farm,
    guid: Guid,
    what: &str,
    limit: Duration,
    done: impl Fn(&[ChunkRow]) -> bool,
) -> Vec<ChunkRow> {
    let deadline = Instant::now() + limit;
    loop {
        let chunks = farm.chunks(guid).await;
        if done(&chunks) {
            return chunks;
        }
        assert!(
            !chunks.iter().any(|c| c.state == "failed"),
            "{what}: a chunk failed: {chunks:?}"
        );
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}: {chunks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn done_videos(chunks: &[ChunkRow]) -> usize {
    chunks
        .iter()
        .filter(|c| c.kind == "video" && c.state == "done")
        .count()
}

/// The job's outputs as its node reports them: the MP4 file and the
/// ladder's master playlist.
async fn outputs(node: &Node, guid: Guid) -> (PathBuf, PathBuf) {
    let info = node
        .client()
        .info(guid)
        .await
        .expect("the node knows the job");
    let files: Vec<PathBuf> = info
        .destinations
        .iter()
        .flat_map(|d| &d.target_files)
        .map(PathBuf::from)
        .collect();
    assert_eq!(files.len(), 2, "an MP4 and a ladder: {files:?}");
    (files[0].clone(), files[1].clone())
}

/// The joined outputs are as one run would give: every frame once, the
/// source's duration, a keyframe at each join, sound without a gap.
fn check_outputs(mp4: &Path, master: &Path, joins_secs: &[f64]) {
    let frames = u64::from(SOURCE_SECS * FPS);
    let tolerance = 1.0 / f64::from(FPS);
    assert_eq!(media_check::video_frames(mp4), frames, "MP4 frame count");
    let duration = media_check::video_duration(mp4);
    assert!(
        (duration - f64::from(SOURCE_SECS)).abs() <= tolerance,
        "MP4 duration {duration}"
    );
    media_check::assert_keyframes_at(mp4, joins_secs, tolerance / 2.0);
    media_check::assert_dts_increasing(mp4);
    media_check::assert_audio_continuous(mp4);
    let folder = master.parent().expect("the ladder's folder");
    let rungs = media_check::ladder_rungs(folder);
    assert!(!rungs.is_empty(), "the ladder has rungs");
    for rung in rungs {
        let joined = media_check::ladder_rung_as_file(folder, &rung);
        assert_eq!(
            media_check::video_frames(&joined),
            frames,
            "rung {rung} frame count"
        );
        media_check::assert_dts_increasing(&joined);
        media_check::assert_keyframes_at(&joined, joins_secs, tolerance / 2.0);
    }
    let sound = media_check::ladder_rung_as_file(folder, "audio");
    media_check::assert_audio_continuous(&sound);
}

/// Where the video chunks after the first start (the joins), in seconds.
fn joins(chunks: &[ChunkRow]) -> Vec<f64> {
    chunks
        .iter()
        .filter(|c| c.kind == "video")
        .skip(1)
        .map(|c| c.start_us as f64 / 1e6)
        .collect()
}

/// No chunk pieces (or their hidden folder) are left beside the outputs.
fn assert_no_pieces_left(farm: &Farm) {
    let left: Vec<PathBuf> = common::farm::files_under(&farm.streams())
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("/.chunks-"))
        .chain(common::farm::leftovers(&farm.streams()))
        .collect();
    assert!(left.is_empty(), "no chunk pieces left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_long_job() {
    let farm = chunk_farm().await;
    let nodes = [
        farm.node_with("c1", CHUNKING).await,
        farm.node_with("c2", CHUNKING).await,
        farm.node_with("c3", CHUNKING).await,
    ];
    let clip = make_clip(&farm.uploaded(), "long.mp4", SOURCE_SECS, 320, 240);
    let guid = queue_both(&farm, &nodes[0], &clip).await;

    // Every Carbon client sees one job whose progress rises in steps.
    let mut seen = BTreeSet::new();
    let mut rated = false;
    let deadline = Instant::now() + ENCODE_LIMIT;
    loop {
        let statuses = nodes[2].client().statuses(&[guid]).await.expect("status");
        let entry = statuses[0].1.clone().expect("the job is known");
        seen.insert(entry.progress);
        let positive = |x: Option<f64>| x.is_some_and(|x| x > 0.0);
        rated |= positive(entry.fps) && positive(entry.speed);
        if entry.status == JobStatus::Completed {
            break;
        }
        assert!(
            !entry.status.is_terminal(),
            "the job ended {:?}: {}",
            entry.status,
            entry.description
        );
        assert!(
            Instant::now() < deadline,
            "completed within {ENCODE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let between: Vec<_> = seen.iter().filter(|p| (1..99).contains(*p)).collect();
    assert!(between.len() >= 3, "progress rose in steps: {seen:?}");
    assert!(
        rated,
        "FPS.DBL and Speed.DBL came from the chunks' encoders"
    );
    let list = nodes[1].client().job_list().await.expect("JobList");
    assert_eq!(list, vec![guid], "Carbon lists one job");

    // The chunks' rows stay as the job's history: who encoded what.
    let chunks = farm.chunks(guid).await;
    assert!(
        chunks.len() >= 6,
        "a 3-minute source in chunks of 30 s: {chunks:?}"
    );
    assert!(
        chunks.iter().all(|c| c.state == "done" && c.runs == 1),
        "{chunks:?}"
    );
    let ran: BTreeSet<&str> = chunks.iter().filter_map(|c| c.node.as_deref()).collect();
    for node in &nodes {
        assert!(
            ran.contains(node.name.as_str()),
            "{} encoded chunks: {chunks:?}",
            node.name
        );
    }
    let (mp4, master) = outputs(&nodes[0], guid).await;
    check_outputs(&mp4, &master, &joins(&chunks));
    assert_no_pieces_left(&farm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_costs_one_chunk() {
    let farm = chunk_farm().await;
    let mut nodes = [
        farm.node_with("k1", CHUNKING).await,
        farm.node_with("k2", CHUNKING).await,
        farm.node_with("k3", CHUNKING).await,
    ];
    let clip = make_clip(&farm.uploaded(), "long.mp4", SOURCE_SECS, 320, 240);
    let guid = queue_both(&farm, &nodes[0], &clip).await;
    let conductor = farm
        .wait_row(guid, "a node conducts the job", ENCODE_LIMIT, |r| {
            r.is(JobStatus::Started)
        })
        .await
        .node
        .expect("the conductor");
    // A video chunk well under way on another node.
    let chunks = wait_chunks(
        &farm,
        guid,
        "a chunk under way elsewhere",
        ENCODE_LIMIT,
        |cs| {
            cs.iter().any(|c| {
                c.kind == "video"
                    && c.state == "running"
                    && c.progress >= 20
                    && c.node.as_deref().is_some_and(|n| n != conductor)
            })
        },
    )
    .await;
    let victim = chunks
        .iter()
        .find(|c| {
            c.kind == "video"
                && c.state == "running"
                && c.progress >= 20
                && c.node.as_deref().is_some_and(|n| n != conductor)
        })
        .expect("found above")
        .clone();
    let name = victim.node.clone().expect("its node");
    let finished_before: Vec<ChunkRow> = chunks
        .iter()
        .filter(|c| c.state == "done")
        .cloned()
        .collect();
    let node = nodes.iter_mut().find(|n| n.name == name).expect("the node");
    node.kill9().await;

    farm.wait_row(guid, "the job completes", ENCODE_LIMIT, |r| {
        r.is(JobStatus::Completed)
    })
    .await;
    let after = farm.chunks(guid).await;
    assert!(after.iter().all(|c| c.state == "done"), "{after:?}");
    for chunk in &after {
        let expected = if chunk.idx == victim.idx { 2 } else { 1 };
        assert_eq!(
            chunk.runs, expected,
            "ffmpeg runs of chunk {}: {after:?}",
            chunk.idx
        );
    }
    for before in &finished_before {
        let now = after.iter().find(|c| c.idx == before.idx).expect("kept");
        assert_eq!(
            now.done_at, before.done_at,
            "finished chunk {} kept",
            before.idx
        );
    }
    let alive = nodes.iter().find(|n| n.name != name).expect("a live node");
    let (mp4, _) = outputs(alive, guid).await;
    assert_eq!(
        media_check::video_frames(&mp4),
        u64::from(SOURCE_SECS * FPS),
        "every frame once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stop_and_requeue_act_on_every_chunk() {
    let farm = chunk_farm().await;
    let nodes = [
        farm.node_with("p1", CHUNKING).await,
        farm.node_with("p2", CHUNKING).await,
    ];
    let clip = make_clip(&farm.uploaded(), "long.mp4", SOURCE_SECS, 320, 240);
    let guid = queue_both(&farm, &nodes[0], &clip).await;
    let client = nodes[1].client();
    wait_chunks(&farm, guid, "two chunks done", ENCODE_LIMIT, |cs| {
        done_videos(cs) >= 2
    })
    .await;

    // Paused: no chunk is claimed, none finishes.
    let paused = client.command(guid, Command::Pause).await.expect("Pause");
    assert_eq!(paused.status, JobStatus::Paused);
    // A piece whose ffmpeg ended as the pause arrived may still be
    // delivered: look once that has settled, then watch for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_pause = farm.chunks(guid).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = farm.chunks(guid).await;
    let runs = |cs: &[ChunkRow]| cs.iter().map(|c| c.runs).sum::<i64>();
    assert_eq!(
        runs(&still),
        runs(&at_pause),
        "no chunk started while paused"
    );
    assert_eq!(
        done_videos(&still),
        done_videos(&at_pause),
        "none finished while paused"
    );
    let resumed = client.command(guid, Command::Resume).await.expect("Resume");
    assert_eq!(resumed.status, JobStatus::Started);

    // Stopped: every chunk worker drops its chunk; finished ones stay.
    wait_chunks(&farm, guid, "one more chunk done", ENCODE_LIMIT, |cs| {
        done_videos(cs) > done_videos(&still)
    })
    .await;
    let stopped = client.command(guid, Command::Stop).await.expect("Stop");
    assert_eq!(stopped.status, JobStatus::Stopped);
    let kept = wait_chunks(&farm, guid, "no chunk running", COMMAND_LIMIT, |cs| {
        cs.iter().all(|c| c.state != "running")
    })
    .await;
    let done: Vec<ChunkRow> = kept.iter().filter(|c| c.state == "done").cloned().collect();
    assert!(done.len() >= 3, "finished chunks kept: {kept:?}");

    // Requeued: the finished chunks are not encoded again.
    client
        .command(guid, Command::Requeue)
        .await
        .expect("Requeue");
    farm.wait_row(guid, "the job completes", ENCODE_LIMIT, |r| {
        r.is(JobStatus::Completed)
    })
    .await;
    let after = farm.chunks(guid).await;
    for before in &done {
        let now = after.iter().find(|c| c.idx == before.idx).expect("kept");
        assert_eq!(
            (now.runs, now.done_at),
            (before.runs, before.done_at),
            "chunk {} kept from before the stop",
            before.idx
        );
    }
    let (mp4, master) = outputs(&nodes[0], guid).await;
    check_outputs(&mp4, &master, &joins(&after));
    assert_no_pieces_left(&farm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_shared_folder_fetches_its_chunks() {
    let farm = chunk_farm().await;
    let mut serving = CHUNKING.to_vec();
    serving.extend(["--file-service", "127.0.0.1:0"]);
    let local = farm.node_with("s1", &serving).await;
    let service = farm
        .logged("s1", "farm file service listening on ")
        .expect("the file service's address");
    // A byte of the download flipped on the way: caught, fetched again.
    let proxy = Proxy::start(
        service.parse().expect("an address"),
        Fault::Flip {
            direction: Direction::Download,
            at: 200_000,
        },
    )
    .await;
    let token_dir = tempfile::tempdir().expect("tempdir");
    let token_file = token_dir.path().join("f9.token");
    let made = common::cli::videoshare(&["node-token", "f9", "--database", &farm.url()]).await;
    assert!(made.ok, "node-token: {}", made.stderr);
    assert!(
        made.stdout.trim().starts_with("vsn_"),
        "a token: {}",
        made.stdout
    );
    std::fs::write(&token_file, made.stdout.trim()).expect("write the token");
    let fetch = format!("http://{}", proxy.addr);
    let token_arg = token_file.to_string_lossy().into_owned();
    let mut fetching = CHUNKING.to_vec();
    fetching.extend(["--fetch", &fetch, "--fetch-token-file", &token_arg]);
    let _remote = farm.node_without_share("f9", &fetching).await;

    let clip = make_clip(&farm.uploaded(), "long.mp4", SOURCE_SECS, 320, 240);
    let guid = queue_both(&farm, &local, &clip).await;
    farm.wait_row(guid, "the job completes", ENCODE_LIMIT, |r| {
        r.is(JobStatus::Completed)
    })
    .await;
    let chunks = farm.chunks(guid).await;
    let remote: Vec<&ChunkRow> = chunks
        .iter()
        .filter(|c| c.node.as_deref() == Some("f9"))
        .collect();
    assert!(
        !remote.is_empty(),
        "the fetch node encoded chunks: {chunks:?}"
    );
    assert!(proxy.fired(), "the proxy flipped a byte");
    let retried = farm.logged("f9", "sha256 mismatch; retrying");
    assert!(
        retried.is_some(),
        "the fetch node saw the bad download and fetched again"
    );
    assert_eq!(
        farm.row(guid).await.node.as_deref(),
        Some("s1"),
        "s1 conducted"
    );
    let (mp4, master) = outputs(&local, guid).await;
    check_outputs(&mp4, &master, &joins(&chunks));
    assert_no_pieces_left(&farm);
}
