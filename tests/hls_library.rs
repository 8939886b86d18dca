//! An HLS ladder in the portal: a ladder job's folder (made through
//! Carbon, as any ingest path would) is one library item with its
//! duration, size and rungs; `/streams/` serves its playlists and segments
//! with the types players expect and byte ranges; a private library
//! serves them to the owner of the upload that made them only.

mod common;

use std::path::{Path, PathBuf};

use common::{Visitor, make_clip, spawn_app, spawn_app_in, wait_completed};
use reqwest::StatusCode;
use serde_json::Value;
use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, Guid};
use videoshare::encoder::preset::HLS_LADDER_PRESET;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// Queues `clip` with the ladder preset into `streams`; its GUID.
async fn queue_ladder(client: &Client, clip: &Path, streams: &Path) -> Guid {
    let job = JobQueue::single(
        &clip.to_string_lossy(),
        HLS_LADDER_PRESET,
        &streams.to_string_lossy(),
    );
    client.queue(job).await.expect("queued")
}

/// The bytes of every file under `folder`.
fn bytes_under(folder: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// `GET path` as `who`, with an optional Range: status, content type, body.
async fn fetch(who: &Visitor, path: &str, range: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut request = who.http.get(format!("{}{path}", who.base));
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.expect("body").to_vec();
    (status, kind, body)
}

/// A counter from `/metrics`.
async fn counter(who: &Visitor, name: &str) -> u64 {
    let text = who.get_text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} "))?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The files a player fetches first from ladder `name`: the master, the
/// top rung's playlist, its init segment and first media segment.
fn first_files(name: &str) -> [String; 4] {
    [
        format!("/streams/{name}/master.m3u8"),
        format!("/streams/{name}/480p/index.m3u8"),
        format!("/streams/{name}/480p/init_0.mp4"),
        format!("/streams/{name}/480p/seg00000.m4s"),
    ]
}

#[tokio::test]
async fn a_ladder_folder_is_one_library_item_served_as_hls() {
    let app = spawn_app().await;
    let client = Client::new(app.carbon.to_string());
    let clip = make_clip(&app.uploaded_dir(), "ladder.mp4", 6, 854, 480);
    let streams = app.streams_dir();
    let guid = queue_ladder(&client, &clip, &streams).await;
    wait_completed(&client, guid).await;
    let folder = streams.join("ladder");
    // Beside it: an MP4 (listed as before), a folder without a master
    // playlist and a hidden one (neither is a video).
    std::fs::copy(&clip, streams.join("plain.mp4")).expect("copy");
    std::fs::create_dir_all(streams.join("partial/480p")).expect("mkdir");
    std::fs::create_dir_all(streams.join(".hidden")).expect("mkdir");
    std::fs::copy(
        folder.join("master.m3u8"),
        streams.join(".hidden/master.m3u8"),
    )
    .expect("copy");

    // Four listings at once, as four browsers opening the library: each
    // item's facts and picture are learnt once.
    let me = app.me();
    let listings = futures_util::future::join_all((0..4).map(|_| me.get_json("/api/videos"))).await;
    for (status, listed) in &listings {
        assert_eq!(*status, 200);
        assert_eq!(listed, &listings[0].1);
    }
    let videos = app.videos().await;
    assert_eq!(counter(&me, "videoshare_library_probes_total").await, 2);
    let names: Vec<&str> = videos.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{videos:?}");
    assert!(
        names.contains(&"ladder") && names.contains(&"plain.mp4"),
        "{names:?}"
    );
    let item = videos
        .iter()
        .find(|v| v["name"] == "ladder")
        .expect("the ladder");
    assert_eq!(item["hls"], true);
    assert_eq!(item["title"], "ladder");
    assert_eq!(item["url"], "/streams/ladder/master.m3u8");
    assert_eq!(item["watch_url"], "/watch/ladder");
    let duration = item["duration"].as_f64().expect("duration");
    assert!((duration - 6.0).abs() < 0.2, "{duration}");
    assert_eq!(item["size"].as_u64(), Some(bytes_under(&folder)));
    let rungs: Vec<(String, u64, u64)> = item["rungs"]
        .as_array()
        .expect("rungs")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["width"].as_u64().unwrap_or(0),
                r["height"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        rungs,
        [("480p".to_owned(), 854, 480), ("360p".to_owned(), 640, 360)]
    );
    let plain = videos
        .iter()
        .find(|v| v["name"] == "plain.mp4")
        .expect("the MP4");
    assert_eq!(
        (&plain["hls"], &plain["rungs"]),
        (&Value::Bool(false), &serde_json::json!([]))
    );

    // A picture from the top rung's first fragment.
    let thumb = item["thumb"].as_str().expect("a thumbnail");
    let (status, kind, jpeg) = fetch(&me, thumb, None).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/jpeg"));
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "a JPEG");

    // Playlists and segments, with the types players expect.
    let [master, rung, init, segment] = first_files("ladder");
    for (path, expected) in [
        (&master, PLAYLIST),
        (&rung, PLAYLIST),
        (&init, "video/mp4"),
        (&segment, "video/mp4"),
        (&"/streams/ladder/audio/index.m3u8".to_owned(), PLAYLIST),
    ] {
        let (status, kind, body) = fetch(&me, path, None).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, expected),
            "{path}"
        );
        assert!(!body.is_empty(), "{path}");
    }
    let (_, _, text) = fetch(&me, &master, None).await;
    assert!(String::from_utf8_lossy(&text).starts_with("#EXTM3U"));
    let on_disk = std::fs::read(folder.join("480p/seg00000.m4s")).expect("segment");
    let (status, kind, part) = fetch(&me, &segment, Some("bytes=100-199")).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::PARTIAL_CONTENT, "video/mp4")
    );
    assert_eq!(part, on_disk[100..200]);
    let (status, _, _) = fetch(&me, "/streams/ladder/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no folder listings");
    for hidden in [
        "/streams/.hidden/master.m3u8",
        "/streams/%2Ehidden/master.m3u8",
    ] {
        let (status, _, _) = fetch(&me, hidden, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hidden} is never served");
    }

    // The library and watch pages show it as one video, without a
    // download of the master playlist alone: the MP4 download and the
    // storyboard only when the encoder wrote them into the folder.
    let library = me.get_text("/library").await;
    assert!(library.contains("data-name=\"ladder\""), "{library}");
    assert!(library.contains("HLS 480p, 360p"), "{library}");
    let watch = me.get_text("/watch/ladder").await;
    assert!(
        watch.contains("data-hls=\"/streams/ladder/master.m3u8\"")
            && watch.contains("<script src=\"/static/hls.min.js?v="),
        "{watch}"
    );
    let download = folder.join("download.mp4").is_file();
    assert_eq!(
        watch.contains("href=\"/streams/ladder/download.mp4\" download=\"ladder.mp4\""),
        download,
        "{watch}"
    );
    assert_eq!(
        watch.matches("download=").count(),
        usize::from(download),
        "{watch}"
    );
    let storyboard = folder.join("storyboard.vtt").is_file();
    assert_eq!(
        (item["download"].is_string(), item["storyboard"].is_string()),
        (download, storyboard),
        "{item}"
    );
    assert_eq!(
        watch.contains("data-storyboard=\"/streams/ladder/storyboard.vtt\""),
        storyboard,
        "{watch}"
    );
    // hls.js, at the version its page names, cached for good.
    let script = watch
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the hls.js script");
    let response = me
        .http
        .get(format!("{}{script}", me.base))
        .send()
        .await
        .expect("hls.js");
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response.headers()[name]
            .to_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(
        header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.len() > 100_000 && body.contains("isSupported"),
        "{script}"
    );
    // An MP4 plays from its src as before: no hls.js.
    let plain = me.get_text("/watch/plain.mp4").await;
    assert!(
        plain.contains("src=\"/streams/plain.mp4\"") && !plain.contains("hls.min.js"),
        "{plain}"
    );

    // A storyboard and a download MP4 added to the folder later (as the
    // encoder does) are found: the folder's change is a new version.
    for (file, bytes) in [
        ("storyboard.vtt", &b"WEBVTT\n"[..]),
        ("download.mp4", &b"an mp4"[..]),
    ] {
        if !folder.join(file).exists() {
            std::fs::write(folder.join(file), bytes).expect("write");
        }
    }
    let ladder = app
        .videos()
        .await
        .into_iter()
        .find(|v| v["name"] == "ladder")
        .expect("the ladder");
    assert_eq!(
        (&ladder["storyboard"], &ladder["download"]),
        (
            &serde_json::json!("/streams/ladder/storyboard.vtt"),
            &serde_json::json!("/streams/ladder/download.mp4")
        ),
        "{ladder}"
    );
    let watch = me.get_text("/watch/ladder").await;
    assert!(
        watch.contains(">Download MP4</a>")
            && watch.contains("data-storyboard=\"/streams/ladder/storyboard.vtt\""),
        "{watch}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_private_library_serves_a_ladders_segments_to_its_owner_only() {
    let data = tempfile::tempdir().expect("tempdir");
    let private = |a: &mut videoshare::config::ServeArgs| {
        a.portal.private_library = true;
        a.portal.accounts = true;
    };
    let app = spawn_app_in(data.path().to_path_buf(), private).await;
    let ann = app.me();
    let (status, _) = ann
        .form(
            "/account/register",
            &[("name", "ann"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let client = Client::new(app.carbon.to_string());
    let clip = make_clip(&app.uploaded_dir(), "mine.mp4", 6, 854, 480);
    let guid = queue_ladder(&client, &clip, &app.streams_dir()).await;
    wait_completed(&client, guid).await;

    // Recorded as ann's upload, as the portal records one it submitted
    // (a crash between submitting and following it): on restart the
    // poller asks the encoder, sees it completed and records its outputs.
    let folder: PathBuf = app.data.clone();
    app.stop().await;
    let pool = common::db::open_app_db(&folder).await;
    let upload = videoshare::store::uploads::new_upload(
        guid,
        "mine.mp4".into(),
        "mine.mp4".into(),
        1,
        videoshare::owner::Owner::account("ann"),
        String::new(),
    );
    videoshare::store::UploadStore::new(pool.clone())
        .insert(&upload)
        .await
        .expect("insert");
    pool.close().await;
    let mut app = spawn_app_in(data.path().to_path_buf(), private).await;
    (app.http, app.cookies) = (ann.http, ann.cookies);
    let ann = app.me();
    let bob = app.visitor();

    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    let item = loop {
        let (_, videos) = ann.get_json("/api/videos").await;
        if let Some(item) = videos.as_array().and_then(|v| v.first()).cloned() {
            break item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ann's ladder never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(item["name"], "mine");
    assert_eq!(item["preset"], "HLS ladder (adaptive)");
    let (_, videos) = bob.get_json("/api/videos").await;
    assert_eq!(videos, serde_json::json!([]));
    // Her queue links the job to the library item (the folder).
    let (_, jobs) = ann.get_json("/api/jobs").await;
    assert_eq!(
        jobs["jobs"][0]["outputs"],
        serde_json::json!(["mine"]),
        "{jobs}"
    );
    let (status, _, _) = fetch(&ann, "/watch/mine", None).await;
    assert_eq!(status, StatusCode::OK);

    for path in first_files("mine") {
        let (status, _, _) = fetch(&ann, &path, Some("bytes=0-9")).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "ann gets {path}");
        let (status, _, _) = fetch(&bob, &path, Some("bytes=0-9")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "bob gets no {path}");
    }
    let (status, _, _) = fetch(&bob, "/watch/mine", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The `Cache-Control` of a response.
async fn cache_control(who: &Visitor, path: &str) -> String {
    let response = who
        .http
        .get(format!("{}{path}", who.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The library item named `name`.
async fn listed(app: &common::TestApp, name: &str) -> Value {
    app.videos()
        .await
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[tokio::test]
async fn a_ladder_still_being_written_is_listed_as_encoding_and_its_partial_segments_are_never_served()
 {
    let app = spawn_app().await;
    let client = Client::new(app.carbon.to_string());
    let clip = make_clip(&app.uploaded_dir(), "growing.mp4", 5, 640, 360);
    let guid = queue_ladder(&client, &clip, &app.streams_dir()).await;
    wait_completed(&client, guid).await;
    let folder = app.streams_dir().join("growing");
    let me = app.me();
    assert_eq!(listed(&app, "growing").await["encoding"], false);

    // The folder as the encoder leaves it mid-encode: its marker, and a
    // segment ffmpeg is still writing under a temp name.
    std::fs::write(folder.join(".encoding"), guid.to_string()).expect("marker");
    std::fs::write(folder.join("360p/seg00009.m4s.tmp"), b"half").expect("partial");
    let item = listed(&app, "growing").await;
    assert_eq!(item["encoding"], true, "{item}");
    let library = me.get_text("/library").await;
    assert!(library.contains("Still encoding"), "{library}");
    let watch = me.get_text("/watch/growing").await;
    assert!(watch.contains("Still encoding"), "{watch}");
    for hidden in [
        "/streams/growing/360p/seg00009.m4s.tmp",
        "/streams/growing/.encoding",
    ] {
        let (status, _, _) = fetch(&me, hidden, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hidden} is never served");
    }
    // A growing playlist is asked for again, never taken from a cache.
    assert_eq!(
        cache_control(&me, "/streams/growing/360p/index.m3u8").await,
        "no-cache"
    );
    assert_eq!(
        cache_control(&me, "/streams/growing/master.m3u8").await,
        "no-cache"
    );
    assert_ne!(
        cache_control(&me, "/streams/growing/360p/seg00000.m4s").await,
        "no-cache"
    );

    // The marker goes last when the ladder is whole: a new version.
    std::fs::remove_file(folder.join("360p/seg00009.m4s.tmp")).expect("rm");
    std::fs::remove_file(folder.join(".encoding")).expect("rm");
    assert_eq!(listed(&app, "growing").await["encoding"], false);
    app.stop().await;
}
