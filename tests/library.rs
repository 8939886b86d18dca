//! The library (thumbnails, sorting, pages, the watch page), the private
//! library option and optional accounts, against the real portal.

mod common;

use std::time::{Duration, SystemTime};

use common::{Visitor, make_clip, spawn_app, spawn_app_with};
use reqwest::StatusCode;

async fn page(who: &Visitor, path: &str) -> (StatusCode, String) {
    let response = who
        .http
        .get(format!("{}{path}", who.base))
        .send()
        .await
        .expect("request");
    (response.status(), response.text().await.expect("body"))
}

/// The `data-name`s of the cards on a page, in order.
fn card_names(html: &str) -> Vec<String> {
    html.split("class=\"video\" data-name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Every `/thumbs/…` address on a page.
fn thumbs(html: &str) -> Vec<String> {
    html.split("src=\"/thumbs/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|name| format!("/thumbs/{name}"))
        .collect()
}

#[tokio::test]
async fn the_library_sorts_pages_and_shows_thumbnails() {
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 1, 160, 120);
    // Thirteen finished videos (one more than a page), as any ingest path
    // would leave them, each a minute older than the one before.
    let now = SystemTime::now();
    let titles: Vec<String> = (0..13)
        .map(|i| format!("video-{:02}", (i * 7) % 13))
        .collect();
    for (age, title) in titles.iter().enumerate() {
        let path = app.streams_dir().join(format!("{title}.mp4"));
        std::fs::copy(&clip, &path).expect("copy");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(now - Duration::from_secs(60 * age as u64))
            .expect("set time");
    }
    let me = app.me();

    let (status, first) = page(&me, "/library").await;
    assert_eq!(status, StatusCode::OK);
    let newest: Vec<String> = titles.iter().take(12).map(|t| format!("{t}.mp4")).collect();
    assert_eq!(card_names(&first), newest);
    assert!(first.contains("(13 videos)"), "{first}");
    assert!(first.contains("Page 1 of 2"));
    assert!(first.contains("page=2\" rel=\"next\""), "a link to page 2");

    let (_, second) = page(&me, "/library?page=2").await;
    assert_eq!(card_names(&second), [format!("{}.mp4", titles[12])]);
    let (_, by_title) = page(&me, "/library?sort=title").await;
    let mut sorted = titles.clone();
    sorted.sort();
    let expected: Vec<String> = sorted.iter().take(12).map(|t| format!("{t}.mp4")).collect();
    assert_eq!(card_names(&by_title), expected);
    let (status, clamped) = page(&me, "/library?sort=nonsense&page=99").await;
    assert_eq!(status, StatusCode::OK);
    assert!(clamped.contains("Page 2 of 2"));

    // Every card has a real JPEG thumbnail, duration, size and date.
    let pictures = thumbs(&first);
    assert_eq!(pictures.len(), 12);
    for thumb in &pictures[..2] {
        let response = me
            .http
            .get(format!("{}{thumb}", me.base))
            .send()
            .await
            .expect("thumb");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let bytes = response.bytes().await.expect("bytes");
        assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG");
    }
    assert!(first.contains("<span class=\"duration\">0:01</span>"));

    // The watch page: a player and a download link; unknown names 404.
    let (status, watch) = page(&me, "/watch/video-00.mp4").await;
    assert_eq!(status, StatusCode::OK);
    assert!(watch.contains("<video id=\"player\" controls"), "{watch}");
    assert!(watch.contains("src=\"/streams/video-00.mp4\""));
    assert!(watch.contains("download=\"video-00.mp4\""));
    let (status, missing) = page(&me, "/watch/nothing.mp4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A browser gets a page it can read, with a way back...
    assert!(missing.starts_with("<!doctype html>"), "{missing}");
    assert!(
        missing.contains("There is no video &#34;nothing.mp4&#34; in the library.")
            && missing.contains("href=\"/library\""),
        "{missing}"
    );
    // ...a client that asks for JSON gets the JSON error.
    let asked = me
        .http
        .get(format!("{}/watch/nothing.mp4", me.base))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(asked.status(), StatusCode::NOT_FOUND);
    let error: serde_json::Value = asked.json().await.expect("a JSON error");
    assert_eq!(error["code"], "unknown_video");
    let (status, _) = page(&me, "/watch/..%2Fvideoshare.db").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_private_library_shows_each_user_only_their_videos() {
    let app = spawn_app_with(|a| a.portal.private_library = true).await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "mine.mp4", 1, 160, 120);
    let ann = app.me();
    let bob = app.visitor();
    let guid = ann.upload_ok(&clip).await;
    app.follow_job(&guid).await;
    // A file no upload made (a watch folder's) is nobody's.
    std::fs::copy(&clip, app.streams_dir().join("dropped.mp4")).expect("copy");

    let (_, anns) = page(&ann, "/library").await;
    assert_eq!(card_names(&anns), ["mine.mp4"]);
    assert!(anns.contains("H.264"), "the preset is shown: {anns}");
    let (_, bobs) = page(&bob, "/library").await;
    assert!(card_names(&bobs).is_empty(), "{bobs}");
    for (who, expected) in [(&ann, StatusCode::OK), (&bob, StatusCode::NOT_FOUND)] {
        let (status, _) = page(who, "/streams/mine.mp4").await;
        assert_eq!(status, expected);
        let (status, _) = page(who, "/watch/mine.mp4").await;
        assert_eq!(status, expected);
    }
    let (status, _) = page(&ann, "/streams/dropped.mp4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, videos) = bob.get_json("/api/videos").await;
    assert_eq!(videos, serde_json::json!([]));
    app.stop().await;
}

#[tokio::test]
async fn accounts_keep_a_queue_across_browsers() {
    let app = spawn_app_with(|a| a.portal.accounts = true).await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "a.mp4", 1, 160, 120);
    let laptop = app.me();
    let guid = laptop.upload_ok(&clip).await;

    // Mistakes are explained on the form.
    for (fields, status, says) in [
        (
            [("name", "ann lee"), ("password", "long enough")],
            StatusCode::BAD_REQUEST,
            "may use only letters",
        ),
        (
            [("name", "ann"), ("password", "short")],
            StatusCode::BAD_REQUEST,
            "8 to 256 characters",
        ),
    ] {
        let (got, html) = laptop.form("/account/register", &fields).await;
        assert_eq!(got, status);
        assert!(html.contains(says), "{html}");
    }

    // Registering keeps the queue this browser already had.
    let (status, home) = laptop
        .form(
            "/account/register",
            &[("name", "Ann"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Signed in as Ann"), "{home}");
    assert_eq!(laptop.queue().await, std::slice::from_ref(&guid));
    let (status, html) = app
        .visitor()
        .form(
            "/account/register",
            &[("name", "ann"), ("password", "another one")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("is taken"));

    // Another browser signs in and sees the same queue; a wrong password
    // does not.
    let phone = app.visitor();
    let (status, html) = phone
        .form(
            "/account/login",
            &[("name", "ann"), ("password", "wrong horse")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Wrong user name or password"));
    assert!(phone.queue().await.is_empty());
    let (status, _) = phone
        .form(
            "/account/login",
            &[("name", "ANN"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.queue().await, std::slice::from_ref(&guid));
    let (status, job) = phone.control(&guid, "retry").await;
    assert!(status == 200 || status == 409, "{status} {job}");

    // Signing out: a new anonymous browser with an empty queue.
    let (status, _) = phone.form("/account/logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(phone.queue().await.is_empty());
    app.stop().await;

    // Without --accounts there is nothing to sign in to.
    let plain = spawn_app().await;
    let me = plain.me();
    let (status, _) = page(&me, "/account").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = me
        .form(
            "/account/login",
            &[("name", "ann"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    plain.stop().await;
}
