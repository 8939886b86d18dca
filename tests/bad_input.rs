//! Bad uploads get a 4xx with a message the page can show, and leave nothing
//! behind in `uploaded/` or `tmp/`.

mod common;

use std::time::Duration;

use common::{TestApp, job_updates, make_clip, names_in, spawn_app, spawn_app_with};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use videoshare::app::DataDirs;
use videoshare::carbon::JobStatus;
use videoshare::encoder::preset::SEED_PRESET;
use videoshare::portal::{Portal, PortalConfig};

/// Asserts the reply status and error code, that the message is a sentence,
/// and that no file was kept anywhere.
async fn assert_refused(
    app: &TestApp,
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("json error body");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().expect("message").to_owned();
    assert!(message.len() > 10, "{message}");
    assert!(
        names_in(&app.uploaded_dir()).is_empty(),
        "kept in uploaded/"
    );
    assert!(names_in(&app.tmp_uploads_dir()).is_empty(), "left in tmp/");
    message
}

/// Posts a multipart form holding one text field and no file.
async fn post_text_field(
    app: &TestApp,
    name: &'static str,
    value: &'static str,
) -> reqwest::Response {
    app.http
        .post(format!("{}/upload", app.base))
        .multipart(reqwest::multipart::Form::new().text(name, value))
        .send()
        .await
        .expect("request")
}

/// Posts `body` as-is as a multipart upload with boundary `XYZ`.
async fn post_raw_multipart(app: &TestApp, body: &[u8]) -> reqwest::Response {
    app.http
        .post(format!("{}/upload", app.base))
        .header("Content-Type", "multipart/form-data; boundary=XYZ")
        .body(body.to_vec())
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn non_video_empty_and_missing_files_are_refused() {
    let app = spawn_app().await;

    let text = app
        .upload_bytes(b"this is not a video\n".to_vec(), "notes.mp4")
        .await;
    let message = assert_refused(&app, text, 415, "not_a_video").await;
    assert!(
        message.contains("notes.mp4") && message.contains("not a video"),
        "{message}"
    );
    // What is wrong with the file, not where the server keeps it.
    assert!(
        !message.contains("/tmp") && !message.contains(".part"),
        "{message}"
    );
    assert!(!message.contains(" @ 0x"), "{message}");

    // A live HLS playlist (no end tag) would keep ffprobe waiting: refused at once.
    let playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\nother.mp4\n".to_vec();
    let started = std::time::Instant::now();
    let message = assert_refused(
        &app,
        app.upload_bytes(playlist, "list.mp4").await,
        415,
        "not_a_video",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered without waiting on ffprobe"
    );
    assert!(
        message.contains("list.mp4") && message.contains("HLS playlist"),
        "{message}"
    );

    let empty = app.upload_bytes(Vec::new(), "empty.mp4").await;
    let message = assert_refused(&app, empty, 400, "empty_file").await;
    assert!(message.contains("empty"), "{message}");

    let missing = post_text_field(&app, "title", "no file here").await;
    let message = assert_refused(&app, missing, 400, "missing_file").await;
    assert!(message.contains("\"file\""), "{message}");

    // A text field that happens to be called "file" carries no file.
    let text_field = post_text_field(&app, "file", "hello").await;
    assert_refused(&app, text_field, 400, "missing_file").await;

    let plain = app
        .http
        .post(format!("{}/upload", app.base))
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_refused(&app, plain, 415, "not_multipart").await;

    // A NUL inside the part headers is malformed multipart, not a name to clean.
    let nul = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\0b.mp4\"\r\n\r\ndata\r\n--XYZ--\r\n";
    assert_refused(&app, post_raw_multipart(&app, nul).await, 400, "bad_upload").await;

    // Cut off in the middle of the file.
    let cut = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\npartial data";
    assert_refused(&app, post_raw_multipart(&app, cut).await, 400, "bad_upload").await;
    app.stop().await;
}

#[tokio::test]
async fn audio_only_and_still_images_are_not_videos() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = dir.path().join("tone.m4a");
    let image = dir.path().join("frame.png");
    for (args, out) in [
        (
            vec!["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"],
            &audio,
        ),
        (
            vec!["-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"],
            &image,
        ),
    ] {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .expect("ffmpeg")
            .success();
        assert!(ok);
    }
    let message = assert_refused(&app, app.upload_file(&audio).await, 415, "not_a_video").await;
    assert!(message.contains("no video stream"), "{message}");
    let message = assert_refused(&app, app.upload_file(&image).await, 415, "not_a_video").await;
    assert!(message.contains("still image"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn oversize_uploads_are_refused_streamed_or_declared() {
    let app = spawn_app_with(|args| args.portal.max_upload = 64 * 1024).await;

    // Within the declared slack, caught while streaming.
    let streamed = app.upload_bytes(vec![7u8; 200 * 1024], "big.mp4").await;
    let message = assert_refused(&app, streamed, 413, "too_large").await;
    assert!(message.contains("64.0 KiB"), "{message}");

    // Announced far beyond the limit: refused from the headers alone, before
    // any body byte is sent.
    let mut stream = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    let head = "POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
                Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 10737418240\r\n\r\n";
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send headers");
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut reply))
        .await
        .expect("a reply without sending the body")
        .expect("read");
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("too_large"), "{reply}");
    assert!(names_in(&app.tmp_uploads_dir()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn hostile_file_names_are_made_safe_and_still_encode() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "clip.mp4", 1, 160, 120);
    let bytes = std::fs::read(&clip).expect("read");
    let hostile = format!("../../{}evil \"<&>\".mp4", "é".repeat(3));
    let response = app.upload_bytes(bytes.clone(), &hostile).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored_as"], "evil.mp4", "{body}");
    assert_eq!(
        body["job"]["file"],
        hostile.as_str(),
        "the page shows the name the user chose"
    );
    let guid = body["guid"].as_str().expect("guid").to_owned();
    let updates = app.follow_job(&guid).await;
    assert_eq!(
        job_updates(&updates).last().map(|j| j["status"].clone()),
        Some("COMPLETED".into())
    );
    assert_eq!(names_in(&app.streams_dir()), ["evil.mp4"]);

    // A percent-escaped path reads as the name it spells, stored and encoded.
    let escaped = "..%2f..%2fetc%2fpasswd";
    let response = app.upload_bytes(bytes, escaped).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored_as"], "passwd", "{body}");
    assert_eq!(body["job"]["file"], escaped);
    let updates = app.follow_job(body["guid"].as_str().expect("guid")).await;
    assert_eq!(
        job_updates(&updates).last().map(|j| j["status"].clone()),
        Some("COMPLETED".into())
    );
    assert_eq!(names_in(&app.streams_dir()), ["evil.mp4", "passwd.mp4"]);
    app.stop().await;
}

/// Serves a portal (alone, as `videoshare portal` would) over `dirs`,
/// talking Carbon to `encoder`. Returns its HTTP address.
async fn spawn_portal(dirs: &DataDirs, tmp: &str, encoder: SocketAddr) -> SocketAddr {
    let pool = common::db::open_app_db(&dirs.root).await;
    let portal = Portal::new(
        PortalConfig {
            uploaded_dir: dirs.uploaded.clone(),
            streams_dir: dirs.streams.clone(),
            tmp_dir: dirs.root.join(tmp),
            max_upload: 1 << 30,
            poll_interval: Duration::from_millis(100),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            encoder_addr: encoder.to_string(),
            encoder_habit: videoshare::carbon::client::ConnectionHabit::OnePerRequest,
            encoder_timeout: Duration::from_secs(10),
            encoder_uploaded: dirs.uploaded.to_string_lossy().into_owned(),
            encoder_streams: dirs.streams.to_string_lossy().into_owned(),
            metrics: Default::default(),
            preset: SEED_PRESET,
            session_keys: videoshare::portal::session::SessionKeys::ephemeral(),
            session_lifetime: Duration::from_secs(3600),
            secure_cookies: false,
            limits: Default::default(),
            accounts: false,
            private_library: false,
            thumbs_dir: dirs.root.join(format!("{tmp}-thumbs")),
            tus_dir: dirs.root.join(format!("{tmp}-tus")),
            ws_per_client: 16,
        },
        pool,
        Default::default(),
    )
    .await
    .expect("portal");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { portal.serve(listener, Default::default()).await });
    addr
}

async fn upload_clip_to(addr: SocketAddr, clip: &std::path::Path) -> reqwest::Response {
    common::upload_to(&format!("http://{addr}"), clip).await
}

#[tokio::test]
async fn an_unreachable_encoder_is_reported_and_nothing_is_kept() {
    common::init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = DataDirs::create(dir.path()).expect("dirs");
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let addr = spawn_portal(&dirs, "tmp/uploads", closed_addr).await;

    let clip = make_clip(dir.path(), "clip.mp4", 1, 160, 120);
    let response = upload_clip_to(addr, &clip).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "encoder_unavailable");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{body}"
    );
    assert!(names_in(&dirs.uploaded).is_empty());
    assert!(names_in(&dirs.tmp_uploads).is_empty());
}

/// A TCP proxy to `target` whose first connection forwards one request
/// frame, swallows the reply and hangs up; later connections pass through.
async fn reply_swallowing_proxy(target: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                return;
            };
            if !std::mem::take(&mut first) {
                tokio::spawn(async move {
                    tokio::io::copy_bidirectional(&mut client, &mut server).await
                });
                continue;
            }
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = vec![0u8; 65536];
                while !holds_a_frame(&request) {
                    match client.read(&mut buf).await {
                        Ok(n @ 1..) => request.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                server.write_all(&request).await.expect("forward");
                let _ = server.read(&mut buf).await; // the reply, dropped
            });
        }
    });
    addr
}

fn holds_a_frame(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((len, rest)) = text
        .strip_prefix("CarbonAPIXML1 ")
        .and_then(|r| r.split_once(' '))
    else {
        return false;
    };
    len.parse::<usize>().is_ok_and(|n| rest.len() >= n)
}

#[tokio::test]
async fn a_job_accepted_without_a_reply_keeps_its_source_and_runs() {
    let app = spawn_app().await;
    let proxy = reply_swallowing_proxy(app.carbon).await;
    let addr = spawn_portal(app.app.dirs(), "tmp/uploads-proxied", proxy).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "clip.mp4", 1, 160, 120);

    let response = upload_clip_to(addr, &clip).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        status, 202,
        "the portal found the job the encoder accepted: {body}"
    );
    assert_eq!(
        names_in(&app.uploaded_dir()),
        ["clip.mp4"],
        "the source is kept"
    );
    let guid = body["guid"].as_str().expect("guid").to_owned();
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while app.carbon_status(&guid).await.status != JobStatus::Completed {
        assert!(tokio::time::Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(names_in(&app.streams_dir()), ["clip.mp4"]);
    app.stop().await;
}

#[tokio::test]
async fn extra_form_fields_are_bounded_and_one_file_is_taken() {
    let app = spawn_app().await;
    let clip = make_clip(&app.data, "one.mp4", 1, 160, 120);
    let bytes = std::fs::read(&clip).expect("read");
    let part =
        |name: &str| reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_owned());
    let send = |form: reqwest::multipart::Form| {
        app.http
            .post(format!("{}/upload", app.base))
            .header("Accept", "application/json")
            .multipart(form)
            .send()
    };
    let two_files = reqwest::multipart::Form::new()
        .part("file", part("a.mp4"))
        .part("file", part("b.mp4"));
    let message =
        assert_refused(&app, send(two_files).await.expect("send"), 400, "bad_field").await;
    assert!(message.contains("one file"), "{message}");

    let two_presets = reqwest::multipart::Form::new()
        .text("preset", SEED_PRESET.to_string())
        .text("preset", SEED_PRESET.to_string())
        .part("file", part("a.mp4"));
    assert_refused(
        &app,
        send(two_presets).await.expect("send"),
        400,
        "bad_field",
    )
    .await;

    let bulky = reqwest::multipart::Form::new()
        .text("notes", "x".repeat(100_000))
        .part("file", part("a.mp4"));
    let message = assert_refused(&app, send(bulky).await.expect("send"), 400, "bad_field").await;
    assert!(message.contains("\"notes\""), "{message}");

    let garbage_preset = reqwest::multipart::Form::new()
        .text("preset", "480p")
        .part("file", part("a.mp4"));
    let message = assert_refused(
        &app,
        send(garbage_preset).await.expect("send"),
        400,
        "bad_field",
    )
    .await;
    assert!(message.contains("not a preset GUID"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn truncated_videos_and_huge_names_get_clear_answers() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A real MP4 whose index (written last) never arrived.
    let clip = make_clip(dir.path(), "whole.mp4", 1, 160, 120);
    let bytes = std::fs::read(&clip).expect("read");
    let half = bytes[..bytes.len() / 2].to_vec();
    let message = assert_refused(
        &app,
        app.upload_bytes(half, "half.mp4").await,
        415,
        "not_a_video",
    )
    .await;
    assert!(message.contains("half.mp4"), "{message}");

    // 10,000 characters of name: stored under a short safe name, shown whole.
    let long = format!("{}.mp4", "long name ".repeat(1000));
    let response = app.upload_bytes(bytes, &long).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    let stored = body["stored_as"].as_str().expect("stored_as");
    assert!(stored.len() < 200 && stored.ends_with(".mp4"), "{stored}");
    assert_eq!(body["job"]["file"], long.as_str());
    app.follow_job(body["guid"].as_str().expect("guid")).await;
    assert_eq!(names_in(&app.streams_dir()), [stored]);
    app.stop().await;
}
