//! Watch folders, XML job folders and path mapping from a config file, with
//! real files and real ffmpeg: files are taken only once complete, bad jobs
//! land in failed/ with their reason, and a restart never encodes twice.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{DEADLINE, TestApp, make_clip, names_in, probe_streams};
use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, Guid, JobStatus};
use videoshare::encoder::preset::SEED_PRESET;

/// A folder tree for one test: `in/` (watched), `out/`, `jobs/` (XML),
/// `media/` (sources for XML jobs), `data/`, and the config file.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        for sub in ["in", "out", "jobs", "media", "data", "lib"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
        }
        let config = r#"
            roots = ["media"]
            [[watch]]
            folder = "in"
            output = "out"
            settle_secs = 1
            [[watch]]
            folder = "lib"
            settle_secs = 0.5
            [[xml_folder]]
            folder = "jobs"
            settle_secs = 0.5
            [[path_mapping]]
            from = '\\fileserver\media'
            to = "media"
        "#;
        std::fs::write(root.join("videoshare.toml"), config).expect("config");
        Tree { _dir: dir, root }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    async fn start(&self) -> TestApp {
        let config = self.path("videoshare.toml");
        common::spawn_app_in(self.path("data"), move |a| a.encoder.config = Some(config)).await
    }
}

/// Waits until `path` exists.
async fn appears(path: &Path) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slowly_copied_file_is_encoded_once_when_complete() {
    let tree = Tree::new();
    let app = tree.start().await;
    let clip = make_clip(&tree.root, "slow.mp4", 2, 160, 120);
    let bytes = std::fs::read(&clip).expect("read clip");
    // Written in 8 pieces over ~2.4 s (longer than the 1 s settle time in
    // all), with one pause of 2 s half-way while the file stays open, as a
    // stalled network copy would.
    let target = tree.path("in/slow.mp4");
    let mut file = std::fs::File::create(&target).expect("create");
    for (n, piece) in bytes.chunks(bytes.len().div_ceil(8)).enumerate() {
        file.write_all(piece).expect("write");
        file.flush().expect("flush");
        let pause = if n == 3 { 2000 } else { 300 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        assert!(target.exists(), "taken while still being written");
    }
    drop(file);

    appears(&tree.path("in/processed/slow.mp4")).await;
    assert_eq!(names_in(&tree.path("out")), ["slow.mp4"]);
    let encoded = common::duration_secs(&tree.path("out/slow.mp4"));
    assert!(
        (encoded - 2.0).abs() < 0.3,
        "the whole clip was encoded: {encoded} s"
    );
    assert!(names_in(&tree.path("in/failed")).is_empty());
    assert!(names_in(&tree.path("in/processing")).is_empty());
    let client = Client::new(app.carbon.to_string());
    let jobs = client
        .list(videoshare::carbon::JobStatusList::default())
        .await
        .expect("list");
    assert_eq!(jobs.len(), 1, "one job for one file");
    assert_eq!(jobs[0].user, format!("watch:{}", tree.path("in").display()));
    assert_eq!(jobs[0].status, JobStatus::Completed);

    // Not a video: failed/, with the reason beside it.
    std::fs::write(tree.path("in/notes.mp4"), "not a video").expect("write");
    appears(&tree.path("in/failed/notes.mp4.error.txt")).await;
    let why = std::fs::read_to_string(tree.path("in/failed/notes.mp4.error.txt")).expect("read");
    assert!(
        why.contains("ERROR") && why.contains("not a video") || why.contains("read"),
        "{why}"
    );
    assert!(tree.path("in/failed/notes.mp4").is_file());
    app.stop().await;
}

#[tokio::test]
async fn a_file_closed_after_writing_is_taken_before_its_settle_time() {
    let tree = Tree::new();
    // Ten minutes of settle time: only the close-write event can take the
    // file within the test.
    let config = "[[watch]]\nfolder = \"in\"\noutput = \"out\"\nsettle_secs = 600\n";
    std::fs::write(tree.path("videoshare.toml"), config).expect("config");
    let app = tree.start().await;
    let clip = make_clip(&tree.path("media"), "closed.mp4", 1, 160, 120);
    let bytes = std::fs::read(&clip).expect("read clip");
    let target = tree.path("in/closed.mp4");
    let mut file = std::fs::File::create(&target).expect("create");
    for piece in bytes.chunks(bytes.len().div_ceil(4)) {
        file.write_all(piece).expect("write");
        file.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(target.exists(), "taken while still being written");
    }
    drop(file);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while target.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not taken within 10 s of being closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    appears(&tree.path("in/processed/closed.mp4")).await;
    assert_eq!(names_in(&tree.path("out")), ["closed.mp4"]);
    app.stop().await;
}

fn job_xml(source: &str, dest: &Path) -> String {
    format!(
        "<cnpsXML TaskType=\"JobQueue\" JobName=\"from a file\"><Sources><Module_0 Filename=\"{source}\"/></Sources>\
         <Destinations><Module_0 PresetGUID=\"{SEED_PRESET}\"><ModuleData CML_P_Path=\"{}\" \
         CML_P_BaseFileName=\"%s-xml\"/></Module_0></Destinations></cnpsXML>",
        dest.display()
    )
}

#[tokio::test]
async fn xml_job_files_are_submitted_or_failed_with_their_reason() {
    let tree = Tree::new();
    let app = tree.start().await;
    make_clip(&tree.path("media"), "clip.mp4", 1, 160, 120);
    let out = tree.path("out");
    let cases = [
        // Through the configured mapping of a UNC path.
        ("good.xml", job_xml("\\\\fileserver\\media\\clip.mp4", &out)),
        (
            "broken.xml",
            "<cnpsXML TaskType=\"JobQueue\"><Sources>".to_owned(),
        ),
        ("outside.xml", job_xml("/etc/hostname", &out)),
        ("list.xml", "<cnpsXML TaskType=\"JobList\"/>".to_owned()),
        (
            "nopreset.xml",
            job_xml("\\\\fileserver\\media\\clip.mp4", &out).replace(
                &SEED_PRESET.to_string(),
                "{00000000-0000-0000-0000-000000000000}",
            ),
        ),
    ];
    for (name, text) in &cases {
        std::fs::write(tree.path("jobs").join(name), text).expect("write");
    }
    std::fs::write(tree.path("jobs/readme.txt"), "not a job").expect("write");

    appears(&tree.path("jobs/processed/good.xml.guid")).await;
    let guid: Guid = std::fs::read_to_string(tree.path("jobs/processed/good.xml.guid"))
        .expect("read")
        .trim()
        .parse()
        .expect("a GUID beside the job file");
    let client = Client::new(app.carbon.to_string());
    let job = common::wait_completed(&client, guid).await;
    assert_eq!(job.name, "from a file");
    assert!(tree.path("out/clip-xml.mp4").is_file());

    for (name, reason) in [
        ("broken.xml", "malformed"),
        ("outside.xml", "outside the folders"),
        ("list.xml", "must hold a JobQueue"),
        ("nopreset.xml", "unknown preset"),
    ] {
        let why_file = tree.path("jobs/failed").join(format!("{name}.error.txt"));
        appears(&why_file).await;
        let why = std::fs::read_to_string(&why_file).expect("read");
        assert!(why.contains(reason), "{name}: {why}");
        assert!(tree.path("jobs/failed").join(name).is_file());
    }
    assert_eq!(
        names_in(&tree.path("jobs")),
        ["failed", "processed", "processing", "readme.txt"]
    );
    assert_eq!(
        client.job_list().await.expect("list"),
        vec![guid],
        "only the good job"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_does_not_encode_twice() {
    let tree = Tree::new();
    // Left by a crash between recording a GUID and submitting the job.
    let recorded = Guid::new_random();
    std::fs::create_dir_all(tree.path("jobs/processing")).expect("mkdir");
    make_clip(&tree.path("media"), "clip.mp4", 1, 160, 120);
    std::fs::write(
        tree.path("jobs/processing/crashed.xml"),
        job_xml(
            &tree.path("media/clip.mp4").to_string_lossy(),
            &tree.path("out"),
        ),
    )
    .expect("write");
    std::fs::write(
        tree.path("jobs/processing/.crashed.xml.guid"),
        format!("{recorded}\n"),
    )
    .expect("write");

    let first = tree.start().await;
    let client = Client::new(first.carbon.to_string());
    appears(&tree.path("jobs/processed/crashed.xml.guid")).await;
    assert_eq!(
        client.job_list().await.expect("list"),
        vec![recorded],
        "submitted under its GUID"
    );

    // A long encode from the watch folder, interrupted by a restart.
    make_clip(&tree.path("in"), "long.mp4", 30, 320, 240);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let watched = loop {
        let jobs = client
            .list(videoshare::carbon::JobStatusList::default())
            .await
            .expect("list");
        if let Some(job) = jobs
            .iter()
            .find(|j| j.name == "long.mp4" && j.status == JobStatus::Started)
        {
            break job.guid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watched file never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    first.stop().await;

    let second = tree.start().await;
    appears(&tree.path("in/processed/long.mp4")).await;
    let client = Client::new(second.carbon.to_string());
    let guids = client.job_list().await.expect("list");
    assert_eq!(guids.len(), 2, "{guids:?}");
    assert!(guids.contains(&watched));
    assert_eq!(
        names_in(&tree.path("out")),
        ["clip-xml.mp4", "long.mp4"],
        "each encoded once"
    );
    assert!(
        probe_streams(&tree.path("out/long.mp4"))
            .iter()
            .any(|s| s.0 == "video")
    );
    second.stop().await;
}

#[tokio::test]
async fn mapped_paths_work_over_the_socket_too() {
    let tree = Tree::new();
    let app = tree.start().await;
    make_clip(&tree.path("media"), "mapped.mp4", 1, 160, 120);
    let client = Client::new(app.carbon.to_string());
    let job = JobQueue::single(
        "\\\\FILESERVER\\media\\mapped.mp4",
        SEED_PRESET,
        &tree.path("out").to_string_lossy(),
    );
    let guid = client.queue(job).await.expect("queued");
    common::wait_completed(&client, guid).await;
    assert_eq!(names_in(&tree.path("out")), ["mapped.mp4"]);
    app.stop().await;
}

#[tokio::test]
async fn odd_names_and_leftovers_do_not_confuse_a_watch_folder() {
    use std::os::unix::ffi::OsStrExt;
    let tree = Tree::new();
    // A GUID left by a crash after its file had moved on: it must not be
    // reused for the next file of that name.
    let stale = Guid::new_random();
    std::fs::create_dir_all(tree.path("in/processing")).expect("mkdir");
    std::fs::create_dir_all(tree.path("in/failed")).expect("mkdir");
    std::fs::write(
        tree.path("in/processing/.ghost.mp4.guid"),
        format!("{stale}\n"),
    )
    .expect("write");
    // A user's own file where a note would go.
    std::fs::write(tree.path("in/failed/notes.mp4.error.txt"), "theirs").expect("write");
    let app = tree.start().await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tree.path("in/processing/.ghost.mp4.guid").exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stale GUID never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    make_clip(&tree.path("in"), "ghost.mp4", 1, 160, 120);
    std::fs::write(tree.path("in/notes.mp4"), "not a video").expect("write");
    let bad_name = std::ffi::OsStr::from_bytes(b"clip-\xff.mp4");
    std::fs::write(tree.path("in").join(bad_name), "x").expect("write");

    appears(&tree.path("in/processed/ghost.mp4")).await;
    appears(&tree.path("in/failed/notes-1.mp4.error.txt")).await;
    let mut note = bad_name.to_owned();
    note.push(".error.txt");
    let bad_note = tree.path("in/failed").join(note);
    appears(&bad_note).await;
    let why = std::fs::read_to_string(&bad_note).expect("read");
    assert!(why.contains("not valid UTF-8"), "{why}");
    assert_eq!(
        std::fs::read_to_string(tree.path("in/failed/notes.mp4.error.txt")).expect("read"),
        "theirs",
        "a user's file is never overwritten"
    );
    let guids = Client::new(app.carbon.to_string())
        .job_list()
        .await
        .expect("list");
    assert_eq!(guids.len(), 2, "ghost.mp4 and notes.mp4");
    assert!(!guids.contains(&stale));
    app.stop().await;
}

#[tokio::test]
async fn every_ingest_path_feeds_the_portal_library() {
    let tree = Tree::new();
    let app = tree.start().await;
    // A watch folder without an output publishes to the data folder's streams/.
    make_clip(&tree.path("lib"), "dropped.mp4", 1, 160, 120);
    // An XML job written for the seed's Flash Media Server streams folder.
    make_clip(&tree.path("media"), "scripted.mp4", 1, 160, 120);
    let seed_streams = "C:\\Program Files\\Adobe\\Flash Media Server 3.5\\applications\\videoshare\\streams\\_definst_";
    let xml = job_xml(
        &tree.path("media/scripted.mp4").to_string_lossy(),
        Path::new(seed_streams),
    );
    std::fs::write(tree.path("jobs/scripted.xml"), xml).expect("write");
    // And the socket and the browser upload, as before.
    let socket_clip = make_clip(&tree.path("media"), "socket.mp4", 1, 160, 120);
    let client = Client::new(app.carbon.to_string());
    let job = JobQueue::single(&socket_clip.to_string_lossy(), SEED_PRESET, seed_streams);
    let socket_guid = client.queue(job).await.expect("queued");
    let uploaded = make_clip(&tree.root, "uploaded.mp4", 1, 160, 120);
    let upload_guid = app.upload_ok(&uploaded).await;

    common::wait_completed(&client, socket_guid).await;
    common::wait_completed(&client, upload_guid.parse().expect("GUID")).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let wanted = [
        "dropped.mp4",
        "scripted-xml.mp4",
        "socket.mp4",
        "uploaded.mp4",
    ];
    loop {
        let videos = app.videos().await;
        let names: Vec<&str> = videos.iter().filter_map(|v| v["name"].as_str()).collect();
        if wanted.iter().all(|w| names.contains(w)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "library has only {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.job_list().await.expect("list").len(), 4, "one queue");
    app.stop().await;
}
