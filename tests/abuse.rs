//! The abuse test: one attacker (127.0.0.2 to .9) holds 200 slow-header and
//! slow-body connections, tries 1,000 WebSockets, floods sign-in and uploads
//! non-videos, while one legitimate browser (127.0.0.1) uploads a clip,
//! follows it to COMPLETED and plays it. The legitimate flow must complete;
//! how fast it stays is measured in the abuse benchmark, not asserted here.

#[path = "common/attacker.rs"]
mod attacker;
mod common;

use std::time::Duration;

use attacker::{Attack, AttackSize, Tally};
use common::{make_clip, spawn_app_with};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legitimate_browser_gets_through_an_attack() {
    let app = spawn_app_with(|a| {
        a.portal.accounts = true;
        // Slow headers are ended after 2 s (10 s by default), so the test
        // sees them ended within its time.
        a.portal.http_header_secs = 2;
        a.portal.security.upload_window_secs = 2;
    })
    .await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 2, 320, 240);
    let attack = Attack::launch(app.http_addr, AttackSize::FULL);

    let legitimate = async {
        let me = app.me();
        let guid = me.upload_ok(&clip).await;
        let seen = app.follow_job(&guid).await;
        assert!(
            seen.iter().any(|v| v["job"]["status"] == "COMPLETED"),
            "the job did not complete: {seen:?}"
        );
        let (status, body) = me.get_json("/api/videos").await;
        assert_eq!(status, 200);
        let name = body[0]["name"].as_str().expect("a video").to_owned();
        let page = me
            .http
            .get(format!("{}/watch/{name}", app.base))
            .send()
            .await
            .expect("watch page");
        assert_eq!(page.status(), StatusCode::OK);
        let played = me
            .http
            .get(format!("{}/streams/{name}", app.base))
            .header("range", "bytes=0-1023")
            .send()
            .await
            .expect("play");
        assert_eq!(played.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(played.bytes().await.expect("bytes").len(), 1024);
    };
    tokio::time::timeout(Duration::from_secs(120), legitimate)
        .await
        .expect("the legitimate flow finished within 2 minutes under attack");

    // Give the attack time to meet every limit, then look at what it got.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while Tally::get(&attack.tally.slow_ended) < 150 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tally = attack.stop().await;
    println!("attack: {}", tally.summary());
    assert!(Tally::get(&tally.slow_ended) >= 150, "{}", tally.summary());
    assert!(
        Tally::get(&tally.sockets_refused) > 0,
        "{}",
        tally.summary()
    );
    assert!(
        Tally::get(&tally.sign_ins_limited) > 0,
        "{}",
        tally.summary()
    );
    assert!(
        Tally::get(&tally.uploads_refused) > 0,
        "{}",
        tally.summary()
    );
    // The attacker left nothing behind in the public folders.
    assert_eq!(common::names_in(&app.uploaded_dir()).len(), 1);
    // And the server still serves.
    let (status, _) = app.visitor().get_json("/api/jobs").await;
    assert_eq!(status, 200);
}
