//! The walking skeleton end to end over real HTTP, WebSocket, Carbon socket,
//! ffmpeg and SQLite: upload → encode → live progress → library → playback.

mod common;

use common::{job_updates, make_clip, names_in, probe_streams, spawn_app, spawn_app_in};
use serde_json::Value;
use videoshare::carbon::JobStatus;

#[tokio::test]
async fn an_upload_is_encoded_followed_live_and_playable() {
    let app = spawn_app().await;
    let clips = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(clips.path(), "holiday trip.mp4", 2, 320, 240);

    let guid = app.upload_ok(&clip).await;
    assert_eq!(names_in(&app.uploaded_dir()), ["holiday_trip.mp4"]);
    assert!(
        names_in(&app.tmp_uploads_dir()).is_empty(),
        "temp upload left behind"
    );

    let messages = app.follow_job(&guid).await;
    let updates = job_updates(&messages);
    let last = updates.last().expect("some job updates");
    assert_eq!(last["status"], "COMPLETED", "{messages:?}");
    assert_eq!(last["progress"], 100);
    assert_eq!(last["label"], "Encoding complete");
    let percents: Vec<u64> = updates
        .iter()
        .filter_map(|u| u["progress"].as_u64())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "progress went down: {percents:?}"
    );

    // The library update names the new video and carries its rendered item.
    let library = messages
        .iter()
        .rev()
        .find(|m| m["type"] == "videos")
        .expect("library update");
    let video = &library["videos"][0];
    assert_eq!(video["name"], "holiday_trip.mp4");
    assert!(
        video["html"]
            .as_str()
            .is_some_and(|h| h.contains("href=\"/watch/holiday_trip.mp4\"")),
        "{video}"
    );

    // The output is the seed preset: H.264 720×480 with AAC audio.
    let output = app.streams_dir().join("holiday_trip.mp4");
    let streams = probe_streams(&output);
    assert!(
        streams.contains(&("video".into(), "h264".into(), 720, 480)),
        "{streams:?}"
    );
    assert!(
        streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
        "{streams:?}"
    );
    assert!(
        names_in(&app.app.dirs().tmp_encodes).is_empty(),
        "temp encode left behind"
    );

    // The JSON list and HTTP Range playback.
    let videos = app.videos().await;
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0]["url"], "/streams/holiday_trip.mp4");
    assert!(
        videos[0]["duration"]
            .as_f64()
            .is_some_and(|d| (1.5..3.0).contains(&d)),
        "{videos:?}"
    );
    assert_eq!(
        videos[0]["size"].as_u64(),
        Some(std::fs::metadata(&output).expect("stat").len())
    );
    let partial = app
        .http
        .get(format!("{}{}", app.base, "/streams/holiday_trip.mp4"))
        .header("Range", "bytes=0-99")
        .send()
        .await
        .expect("range request");
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.bytes().await.expect("body").len(), 100);

    // The first page render lists it too (askama).
    let page = app.page().await;
    assert!(page.contains("data-name=\"holiday_trip.mp4\""), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn jobs_and_videos_survive_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let clips = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(clips.path(), "keep.mp4", 1, 160, 120);

    let first = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    let guid = first.upload_ok(&clip).await;
    first.follow_job(&guid).await;
    let (http, cookies) = (first.http.clone(), first.cookies.clone());
    first.stop().await;

    let mut second = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    // The same browser: its session cookie outlives the restart.
    (second.http, second.cookies) = (http, cookies);
    let entry = second.carbon_status(&guid).await;
    assert_eq!(entry.status, JobStatus::Completed);
    assert_eq!(entry.progress, 100);

    let job: Value = second
        .http
        .get(format!("{}/api/jobs/{}", second.base, guid))
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("json");
    assert_eq!(job["status"], "COMPLETED");
    let page = second
        .http
        .get(&second.base)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("data-name=\"keep.mp4\""));
    second.stop().await;
}

#[tokio::test]
async fn two_uploads_of_the_same_name_are_both_kept() {
    let app = spawn_app().await;
    let clips = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(clips.path(), "same.mp4", 1, 160, 120);
    let first = app.upload_ok(&clip).await;
    let second = app.upload_ok(&clip).await;
    assert_ne!(first, second);
    assert_eq!(names_in(&app.uploaded_dir()), ["same-1.mp4", "same.mp4"]);
    app.follow_job(&first).await;
    app.follow_job(&second).await;
    assert_eq!(names_in(&app.streams_dir()), ["same-1.mp4", "same.mp4"]);
    app.stop().await;
}

#[tokio::test]
async fn an_encode_interrupted_by_a_stop_is_requeued_and_finishes_after_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let clips = tempfile::tempdir().expect("tempdir");
    // Long enough that the stop lands mid-encode.
    let clip = make_clip(clips.path(), "long.mp4", 20, 640, 480);

    let first = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    let guid = first.upload_ok(&clip).await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let entry = first.carbon_status(&guid).await;
        assert_ne!(
            entry.status,
            JobStatus::Completed,
            "finished before the stop; use a longer clip"
        );
        if entry.status == JobStatus::Started && entry.progress > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (streams, tmp_encodes) = (first.streams_dir(), first.app.dirs().tmp_encodes.clone());
    let (http, cookies) = (first.http.clone(), first.cookies.clone());
    first.stop().await;
    assert!(
        names_in(&streams).is_empty(),
        "no partial output is visible"
    );
    assert!(
        names_in(&tmp_encodes).is_empty(),
        "the killed encode's temp file is removed"
    );

    let mut second = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    (second.http, second.cookies) = (http, cookies);
    let updates = second.follow_job(&guid).await;
    assert_eq!(
        job_updates(&updates).last().map(|j| j["status"].clone()),
        Some("COMPLETED".into())
    );
    assert_eq!(names_in(&second.streams_dir()), ["long.mp4"]);
    let streams = probe_streams(&second.streams_dir().join("long.mp4"));
    assert!(
        streams.contains(&("video".into(), "h264".into(), 720, 480)),
        "{streams:?}"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_plain_form_post_goes_back_to_the_page_following_the_job() {
    let app = spawn_app().await;
    let clips = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(clips.path(), "form.mp4", 1, 160, 120);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&clip).expect("read")).file_name("form.mp4"),
    );
    // The same browser session, without following the redirect.
    let no_redirects = reqwest::Client::builder()
        .cookie_provider(app.cookies.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = no_redirects
        .post(format!("{}/upload", app.base))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let guid = location
        .strip_prefix("/#job=")
        .map(|g| {
            g.replace("%7B", "{")
                .replace("%7D", "}")
                .replace("%2D", "-")
        })
        .expect("a job fragment");
    let updates = app.follow_job(&guid).await;
    assert_eq!(
        job_updates(&updates).last().map(|j| j["status"].clone()),
        Some("COMPLETED".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn the_page_offers_the_presets_and_an_upload_uses_the_chosen_one() {
    let app = spawn_app().await;
    let page = app.page().await;
    let small = "{543B8954-549F-4966-9B1C-99669AE288F7}";
    assert!(
        page.contains(small) && page.contains("H.264 360p"),
        "the 360p preset is offered"
    );
    assert!(
        page.contains("value=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\" title=\"H.264 800 kbit/s, 720x480, AAC 128 kbit/s, MP4 (fast start)\" selected"),
        "the seed's preset is the default"
    );

    let clip = make_clip(&app.uploaded_dir(), "choose.mp4", 1, 160, 120);
    let bytes = std::fs::read(&clip).expect("read");
    let upload = |preset: &str| {
        // The file first and the preset after it: any order is read.
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name("choose.mp4"),
            )
            .text("preset", preset.to_owned());
        app.http
            .post(format!("{}/upload", app.base))
            .header("Accept", "application/json")
            .multipart(form)
            .send()
    };
    // The HLS ladder is offered like every preset (the watch page plays it).
    let ladder = "{5C1E7A3B-9D24-4F6E-8B0A-2E7D4C9F1A63}";
    assert!(page.contains(ladder) && page.contains("HLS ladder"));
    let refused = upload("{00000000-0000-0000-0000-000000000009}")
        .await
        .expect("send");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["code"], "bad_field");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not one this server offers")),
        "{body}"
    );

    let accepted = upload(small).await.expect("send");
    assert_eq!(accepted.status(), 202);
    let body: serde_json::Value = accepted.json().await.expect("json");
    let guid = body["guid"].as_str().expect("guid").to_owned();
    app.follow_job(&guid).await;
    let streams = probe_streams(
        &app.streams_dir()
            .join(body["stored_as"].as_str().expect("name")),
    );
    assert!(
        streams
            .iter()
            .any(|s| s.0 == "video" && (s.2, s.3) == (640, 360)),
        "{streams:?}"
    );

    // A ladder upload completes and is one item in the library: its
    // folder, named after the stored file.
    let accepted = upload(ladder).await.expect("send");
    assert_eq!(accepted.status(), 202);
    let body: serde_json::Value = accepted.json().await.expect("json");
    let updates = app.follow_job(body["guid"].as_str().expect("guid")).await;
    assert_eq!(
        job_updates(&updates).last().map(|j| j["status"].clone()),
        Some("COMPLETED".into())
    );
    let stored = body["stored_as"].as_str().expect("name");
    let folder = stored.strip_suffix(".mp4").expect("an .mp4 name");
    let videos = app.videos().await;
    let ladders: Vec<&serde_json::Value> = videos.iter().filter(|v| v["hls"] == true).collect();
    assert_eq!(ladders.len(), 1, "{videos:?}");
    assert_eq!(ladders[0]["name"], folder);
    assert_eq!(ladders[0]["preset"], "HLS ladder (adaptive)");
    assert_eq!(
        ladders[0]["url"],
        format!("/streams/{folder}/master.m3u8").as_str()
    );
    assert_eq!(videos.len(), 2, "the MP4 and the ladder: {videos:?}");
    app.stop().await;
}
