//! Watching an HLS ladder while it still encodes, through the portal: an
//! upload with a ladder preset gets a "watch now" link in its job view as
//! soon as the encoder publishes the master playlist (every rung has a
//! whole segment), long before COMPLETED; the library lists the folder as
//! still encoding; a private library serves its growing files to the
//! uploader only; at the end the job links the finished video.
//!
//! The encode is made slow enough to look at with the test-only
//! `veryslow` ladder of `common::slow_ladder_config`, and the job is paused
//! while the mid-encode facts are checked, so nothing races ffmpeg.

mod common;

use common::{SLOW_LADDER, Visitor, make_clip, slow_ladder_config, spawn_app_with};
use serde_json::Value;

/// The job's view, polled until `ready` holds for it.
async fn job_until(who: &Visitor, guid: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let (status, view) = who.get_json(&format!("/api/jobs/{guid}")).await;
        assert_eq!(status, 200, "{view}");
        assert!(
            !matches!(
                view["status"].as_str(),
                Some("ERROR" | "INVALID" | "STOPPED")
            ),
            "the job failed: {view}"
        );
        if ready(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never: {what}; last {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The status of `GET path` as `who`.
async fn status_of(who: &Visitor, path: &str) -> u16 {
    who.http
        .get(format!("{}{path}", who.base))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_ladder_upload_is_watchable_from_the_queue_before_it_completes() {
    let extra = tempfile::tempdir().expect("tempdir");
    let config = slow_ladder_config(extra.path());
    let app = spawn_app_with(|args| {
        args.encoder.config = Some(config.clone());
        args.portal.private_library = true;
    })
    .await;
    let me = app.me();
    let stranger = app.visitor();
    let page = me.get_text("/").await;
    assert!(page.contains("Slow ladder (test)"), "offered on the page");
    let clip = make_clip(extra.path(), "live.mp4", 12, 854, 480);
    let guid = me.upload_with_preset(&clip, Some(SLOW_LADDER)).await;

    let view = job_until(&me, &guid, "a watch link", |v| v["watch"].is_string()).await;
    let (status, paused) = me.control(&guid, "pause").await;
    assert_eq!(status, 200, "still encoding, so it pauses: {paused}");
    assert_ne!(view["status"], "COMPLETED", "{view}");
    assert_eq!(view["watch"], "live", "{view}");
    assert_eq!(
        view["outputs"],
        serde_json::json!([]),
        "not finished: {view}"
    );

    // The growing ladder: listed as encoding, its page says so, its files
    // are the uploader's alone.
    let videos = me.get_json("/api/videos").await.1;
    let item = videos
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "live"))
        .unwrap_or_else(|| panic!("listed while encoding: {videos}"));
    assert_eq!(item["encoding"], true, "{item}");
    assert!(me.get_text("/watch/live").await.contains("Still encoding"));
    for path in ["/streams/live/master.m3u8", "/streams/live/480p/index.m3u8"] {
        assert_eq!(status_of(&me, path).await, 200, "{path}");
        assert_eq!(status_of(&stranger, path).await, 404, "{path}");
    }
    assert_eq!(
        stranger.get_json("/api/videos").await.1,
        serde_json::json!([])
    );

    let (status, _) = me.control(&guid, "resume").await;
    assert_eq!(status, 200);
    let done = job_until(&me, &guid, "COMPLETED", |v| v["status"] == "COMPLETED").await;
    assert_eq!(done["outputs"], serde_json::json!(["live"]), "{done}");
    assert!(
        done.get("watch").is_none(),
        "finished: no 'still encoding' link: {done}"
    );
    // The marker goes before COMPLETED: the listing is whole by now.
    let videos = me.get_json("/api/videos").await.1;
    let item = videos
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "live"))
        .cloned()
        .unwrap_or_else(|| panic!("listed: {videos}"));
    assert_eq!(item["encoding"], false, "{item}");
    let duration = item["duration"].as_f64().unwrap_or(0.0);
    assert!((duration - 12.0).abs() < 0.2, "the whole duration: {item}");
    app.stop().await;
}

/// The output names the portal has recorded for its uploads, read from
/// its database beside the running app.
async fn recorded_outputs(app: &common::TestApp) -> Vec<String> {
    let pool = common::db::open_app_db(&app.data).await;
    let outputs = videoshare::store::UploadStore::new(pool.clone())
        .outputs()
        .await
        .expect("outputs");
    pool.close().await;
    outputs.into_iter().map(|o| o.file_name).collect()
}

#[tokio::test]
async fn a_ladder_stopped_while_watchable_is_no_longer_its_uploaders_output() {
    let extra = tempfile::tempdir().expect("tempdir");
    let config = slow_ladder_config(extra.path());
    let app = spawn_app_with(|args| args.encoder.config = Some(config.clone())).await;
    let me = app.me();
    assert!(me.get_text("/").await.contains("Slow ladder (test)"));
    let clip = make_clip(extra.path(), "halted.mp4", 12, 854, 480);
    let guid = me.upload_with_preset(&clip, Some(SLOW_LADDER)).await;
    job_until(&me, &guid, "a watch link", |v| v["watch"].is_string()).await;
    assert_eq!(recorded_outputs(&app).await, ["halted/master.m3u8"]);

    let (status, _) = me.control(&guid, "stop").await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let (_, view) = me.get_json(&format!("/api/jobs/{guid}")).await;
        if view["status"] == "STOPPED" {
            assert!(view.get("watch").is_none(), "{view}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stopped: {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Its folder is gone, and so is the record that it was this upload's:
    // a later job taking the name is not shown as this uploader's.
    assert!(!app.streams_dir().join("halted").exists());
    assert!(recorded_outputs(&app).await.is_empty());
    assert_eq!(me.get_json("/api/videos").await.1, serde_json::json!([]));
    app.stop().await;
}
