//! What a user does on the portal's pages in Chromium, shared by the
//! browser tests: wait for something to show, choose a file and a preset
//! and press Upload, find the newest job in the queue, save screenshots.
//! Included by path next to `common` and `kit` (`common/browser.rs`), which
//! the including test declares at its root.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, Locator};

use super::common::DEADLINE;
use super::kit::js;

/// Polls `probe` until it yields a value, or fails after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
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

/// Clicks the first `link` (CSS) until the watch page of `title` opens.
/// The queue redraws its rows on every update, so a click can land on a row
/// just replaced (lost), or a handle go stale between find and click.
pub async fn open_watch_page(client: &Client, link: &str, title: &str) {
    eventually(&format!("the watch page of {title}"), || async {
        if text_of(client, "#video-title").await.as_deref() == Some(title) {
            return Some(());
        }
        if let Ok(found) = client.find(Locator::Css(link)).await {
            let _ = found.click().await;
        }
        None
    })
    .await;
}

/// The text of the first element matching `css`, if there is one.
pub async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Saves a screenshot of the page under `target/screenshots/`.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_path(name);
    std::fs::write(&path, png).expect("save screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

/// Runs `steps`; when they fail, saves a screenshot named `name` first.
pub async fn screenshot_on_failure(client: &Client, name: &str, steps: impl Future<Output = ()>) {
    use futures_util::FutureExt;
    if let Err(failure) = std::panic::AssertUnwindSafe(steps).catch_unwind().await {
        screenshot(client, name).await;
        std::panic::resume_unwind(failure);
    }
}

/// Chooses `path` in the page's file input and presses Upload.
pub async fn choose_file_and_upload(client: &Client, path: &Path) {
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

/// The GUID of the newest job in the page's queue, once there is one.
pub async fn newest_job(client: &Client) -> String {
    eventually("a job in the queue", || async {
        js(
            client,
            "const r = document.querySelector('#jobs .job'); return r ? r.dataset.guid : null;",
        )
        .await
        .as_str()
        .map(str::to_owned)
    })
    .await
}

/// The GUIDs of the jobs in the page's queue, newest first.
async fn queued_jobs(client: &Client) -> Vec<String> {
    let rows = js(
        client,
        "return [...document.querySelectorAll('#jobs .job')].map(r => r.dataset.guid);",
    )
    .await;
    serde_json::from_value(rows).unwrap_or_default()
}

/// Chooses the preset `guid` in the page's menu, uploads `clip` and
/// returns the new job's GUID (not one the queue showed before).
pub async fn upload_with_preset(client: &Client, guid: &str, clip: &Path) -> String {
    let before = queued_jobs(client).await;
    client
        .find(Locator::Css("#preset-select"))
        .await
        .expect("the preset menu")
        .select_by_value(guid)
        .await
        .expect("choose the preset");
    choose_file_and_upload(client, clip).await;
    eventually("the new job in the queue", || async {
        queued_jobs(client)
            .await
            .into_iter()
            .find(|job| !before.contains(job))
    })
    .await
}
