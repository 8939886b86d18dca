//! ffmpeg and ffprobe read only local media: files that name other files or
//! network addresses (HLS, DASH, ffconcat) are refused by the tools
//! themselves, whether or not the upload sniff saw through them, and no
//! address they name is ever contacted. Probes are bounded process-wide.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{make_clip, spawn_app, wait_finished};
use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, JobStatus};
use videoshare::encoder::ffmpeg::{Audio, Inputs, encode_args};
use videoshare::encoder::preset::{Presets, SEED_PRESET};
use videoshare::media::probe::{peak_running, probe_limit, running};

/// A listener that counts the connections it is offered.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// A DASH manifest whose first bytes are a comment: the upload sniff does
/// not see it, ffmpeg's own detection does.
fn dash(base_url: &str) -> String {
    format!(
        "<!-- a manifest --><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\" type=\"static\" \
         mediaPresentationDuration=\"PT1S\"><Period><AdaptationSet mimeType=\"video/mp4\">\
         <Representation id=\"1\" bandwidth=\"1000\"><BaseURL>{base_url}</BaseURL>\
         </Representation></AdaptationSet></Period></MPD>\n"
    )
}

/// The crafted files, each saved under a `.mp4` name in `dir`: three that
/// point at `http://127.0.0.1:port/`, and three that would read local files
/// outside the allowed folders (`outside` is a real clip there).
fn crafted(dir: &Path, port: u16, outside: &Path) -> Vec<PathBuf> {
    let url = format!("http://127.0.0.1:{port}");
    let outside = outside.to_string_lossy();
    let files = [
        (
            "hls.mp4",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{url}/seg.ts\n#EXT-X-ENDLIST\n"
            ),
        ),
        (
            "concat.mp4",
            format!("ffconcat version 1.0\nfile {url}/a.mp4\n"),
        ),
        ("dash.mp4", dash(&format!("{url}/v.mp4"))),
        (
            "passwd.mp4",
            "ffconcat version 1.0\nfile file:/etc/passwd\n".to_owned(),
        ),
        ("dash-local.mp4", dash(&outside)),
        (
            "hls-local.mp4",
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{outside}\n#EXT-X-ENDLIST\n"),
        ),
    ];
    files
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write the crafted file");
            path
        })
        .collect()
}

/// A reason a user can act on: it says what the file is, with no memory
/// addresses or bare errno text.
fn assert_readable(file: &Path, reason: &str) {
    let said_what = ["playlist", "manifest", "list", "only local media files"]
        .iter()
        .any(|w| reason.contains(w));
    assert!(
        said_what && !reason.contains("0x") && !reason.contains("Invalid argument"),
        "{}: {reason}",
        file.display()
    );
    assert!(
        !reason.contains("root:"),
        "nothing of /etc/passwd: {reason}"
    );
}

#[tokio::test]
async fn crafted_playlists_reach_no_address_and_fail_readably() {
    let app = spawn_app().await;
    let (port, accepted) = counting_listener().await;
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let outside = make_clip(elsewhere.path(), "private.mp4", 1, 160, 120);
    let files = crafted(&app.uploaded_dir(), port, &outside);

    for file in &files {
        match videoshare::media::probe(file).await {
            Ok(info) => panic!("{} probed as {info:?}", file.display()),
            Err(e) => assert_readable(file, &e.to_string()),
        }
    }

    // Straight to the encoder (no upload sniff on this path).
    let client = Client::new(app.carbon.to_string());
    let streams = app.streams_dir().to_string_lossy().into_owned();
    for file in &files {
        let job = JobQueue::single(&file.to_string_lossy(), SEED_PRESET, &streams);
        let guid = client.queue(job).await.expect("accepted");
        let ended = wait_finished(&client, guid).await;
        assert_eq!(ended.status, JobStatus::Error, "{}", file.display());
        assert_readable(file, &ended.failure());
    }
    assert!(common::names_in(&app.streams_dir()).is_empty());
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "ffmpeg or ffprobe connected"
    );
    app.stop().await;
}

#[tokio::test]
async fn ffmpeg_itself_refuses_a_manifest_of_files_outside_the_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = make_clip(dir.path(), "private.mp4", 1, 160, 120);
    let manifest = dir.path().join("innocent.mp4");
    std::fs::write(&manifest, dash(&outside.to_string_lossy())).expect("write");

    // The encoder's own command line, run as the scheduler runs it.
    let presets = Presets::builtin();
    let preset = presets.get(SEED_PRESET).expect("seed preset");
    let output = dir.path().join("out.mp4");
    let inputs = Inputs {
        source: &manifest,
        audio: Audio::Source,
        trim: None,
        picture: None,
    };
    let ran = std::process::Command::new("ffmpeg")
        .args(encode_args(&inputs, &[(&output, preset)]))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ffmpeg");
    assert!(!ran.status.success(), "ffmpeg encoded the manifest");
    let said = videoshare::media::process::stderr_tail(&ran.stderr);
    assert!(said.contains("(dash) that is not accepted"), "{said}");
    assert!(!output.exists() || std::fs::metadata(&output).is_ok_and(|m| m.len() == 0));

    let thumb = dir.path().join("thumb.jpg");
    let made = videoshare::media::thumbnail::thumbnail(&manifest, &thumb, 0.0).await;
    assert!(made.is_err(), "a thumbnail of the manifest");
    assert!(!thumb.exists());
}

#[tokio::test]
async fn probes_run_at_most_the_limit_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "clip.mp4", 1, 160, 120);
    let limit = probe_limit();
    let probes = (0..limit * 4).map(|_| videoshare::media::probe(&clip));
    let results = futures_util::future::join_all(probes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let peak = peak_running();
    assert!(peak <= limit, "{peak} ffprobe runs at once, limit {limit}");
    assert!(peak >= 2, "the probes ran concurrently at all ({peak})");
    // Other tests in this binary may be probing right now.
    assert!(running() <= limit, "{} running", running());
    // Other tests here probe too: the gauge is at least what was seen.
    let metrics = videoshare::metrics::Metrics::default().render();
    let shown: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("videoshare_ffprobe_running_max "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ffprobe gauge in {metrics}"));
    assert!((peak..=limit).contains(&shown), "{shown}");
}
