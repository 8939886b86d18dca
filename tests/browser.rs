//! A real headless Chromium (Debian's chromium + chromium-driver) doing what
//! a user does: pick a file, press Upload, watch the bars, see the video
//! appear in the list and play it — without a reload. A bad file shows the
//! server's reason on the page.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{DEADLINE, make_clip, require, spawn_app};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn chromium_binary() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is not installed: run `make test`, which installs it")
}

async fn start_browser() -> Browser {
    require("chromedriver");
    let port = free_port();
    let driver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let ready = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("chromedriver listening");

    let profile = tempfile::tempdir().expect("profile dir");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium_binary(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// Polls `probe` until it yields a value, or fails after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, Vec::new())
        .await
        .expect("script runs")
}

async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn choose_file_and_upload(client: &Client, path: &Path) {
    let input = client
        .find(Locator::Css("#file-input"))
        .await
        .expect("file input");
    input
        .send_keys(&path.to_string_lossy())
        .await
        .expect("choose file");
    client
        .find(Locator::Css("#upload-button"))
        .await
        .expect("upload button")
        .click()
        .await
        .expect("click upload");
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

#[tokio::test]
async fn a_user_uploads_watches_and_plays_in_chromium() {
    require("chromium");
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "beach day.mp4", 2, 320, 240);
    let bogus = files.path().join("notes.mp4");
    std::fs::write(&bogus, "plain text, not a video").expect("write");

    let browser = start_browser().await;
    let c = &browser.client;
    c.goto(&app.base).await.expect("open the page");
    // Survives only if the page is never reloaded.
    js(c, "window.__sameDocument = 'yes'; return null;").await;
    assert_eq!(
        text_of(c, "#videos-empty").await.as_deref(),
        Some("No videos yet: upload one above.")
    );

    // A bad file: the server's reason appears on the page.
    choose_file_and_upload(c, &bogus).await;
    let error = eventually("the upload error", || async {
        let shown = js(c, "const e = document.getElementById('upload-error'); return e.hidden ? null : e.textContent;").await;
        shown.as_str().map(str::to_owned)
    })
    .await;
    assert!(
        error.contains("notes.mp4") && error.contains("not a video"),
        "{error}"
    );

    // A real clip: upload bar, then the encode bar to "Encoding complete".
    choose_file_and_upload(c, &clip).await;
    let mut labels_seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while labels_seen.last().map(String::as_str) != Some("Encoding complete") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no \"Encoding complete\"; saw {labels_seen:?}"
        );
        if let Some(label) = text_of(c, "#jobs .job .label").await
            && labels_seen.last() != Some(&label)
        {
            labels_seen.push(label);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        text_of(c, "#jobs .job .job-name").await.as_deref(),
        Some("beach day.mp4")
    );
    assert_eq!(
        js(
            c,
            "return document.querySelector('#jobs .job progress').value;"
        )
        .await,
        json!(100)
    );
    assert_eq!(
        js(
            c,
            "return document.getElementById('upload-progress').value;"
        )
        .await,
        json!(100)
    );
    assert_eq!(
        text_of(c, "#upload-label").await.as_deref(),
        Some("Upload complete")
    );
    assert!(
        js(c, "return document.getElementById('upload-error').hidden;").await == json!(true),
        "the earlier error is cleared"
    );

    // The video appears in the list without a reload, loads and plays.
    let duration = eventually("the video's metadata", || async {
        js(c, "const v = document.querySelector('#videos video'); return v && v.readyState >= 1 ? v.duration : null;")
            .await
            .as_f64()
    })
    .await;
    assert!(duration > 1.5 && duration < 3.0, "duration {duration}");
    assert_eq!(
        text_of(c, "#videos .video .name").await.as_deref(),
        Some("beach_day.mp4")
    );
    assert_eq!(
        js(c, "return document.getElementById('videos-empty').hidden;").await,
        json!(true)
    );
    let played = js(
        c,
        "return document.querySelector('#videos video').play().then(() => 'playing', e => 'refused: ' + e.message);",
    )
    .await;
    assert_eq!(played, json!("playing"));
    eventually("playback to advance", || async {
        let t = js(
            c,
            "return document.querySelector('#videos video').currentTime;",
        )
        .await
        .as_f64()?;
        (t > 0.2).then_some(())
    })
    .await;
    assert_eq!(
        js(c, "return window.__sameDocument || null;").await,
        json!("yes"),
        "the page reloaded"
    );

    let png = c.screenshot().await.expect("screenshot");
    let path = screenshot_path("walking-skeleton.png");
    std::fs::write(&path, png).expect("save screenshot");
    eprintln!(
        "screenshot: {} (labels seen: {labels_seen:?})",
        path.display()
    );

    browser.client.close().await.expect("close the session");
    app.stop().await;
}
