//! Time to first playable (issue 16): a clip is uploaded through the page
//! with the HLS ladder preset to a real `videoshare serve`; measured from
//! the end of the upload (its 202) to
//! - the ladder's master playlist on disk (the encoder publishes it once
//!   every rung has a whole segment: the video can be played),
//! - the job's `watch` link in the portal's view ("Watch now — still
//!   encoding"),
//! - the browser's first `playing` event on the watch page (Chromium,
//!   started beforehand: its launch is not counted),
//! - the ladder job's COMPLETED,
//!
//! and, beside it in the same run, the same clip with the seed MP4 preset
//! to COMPLETED.

use std::path::Path;
use std::time::{Duration, Instant};

use videoshare::encoder::preset::HLS_LADDER_PRESET;

use crate::browser_kit::{js, start_browser};
use crate::support::{Row, Server, make_clip, session, upload_with_preset};

/// How often the folder and the job are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// The longest any one step may take.
const STEP_LIMIT: Duration = Duration::from_secs(900);

/// Seconds since `start` until `probe` yields, looking every [`LOOK_EVERY`].
async fn seconds_until<T, F, Fut>(start: Instant, what: &str, mut probe: F) -> (f64, T)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = probe().await {
            return (start.elapsed().as_secs_f64(), value);
        }
        assert!(start.elapsed() < STEP_LIMIT, "{what} never happened");
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// The job's view as the page gets it.
async fn job(client: &reqwest::Client, base: &str, guid: &str) -> serde_json::Value {
    client
        .get(format!("{base}/api/jobs/{guid}"))
        .send()
        .await
        .expect("job")
        .json()
        .await
        .expect("job json")
}

/// The first ladder folder in `streams` whose master playlist exists.
fn published_master(streams: &Path) -> Option<String> {
    std::fs::read_dir(streams)
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            (!name.starts_with('.') && entry.path().join("master.m3u8").is_file()).then_some(name)
        })
}

/// Seconds from the upload's end to COMPLETED.
async fn until_completed(client: &reqwest::Client, base: &str, guid: &str, from: Instant) -> f64 {
    seconds_until(from, "COMPLETED", || async {
        let view = job(client, base, guid).await;
        assert!(
            !matches!(
                view["status"].as_str(),
                Some("ERROR" | "INVALID" | "STOPPED")
            ),
            "the job failed: {view}"
        );
        (view["status"] == "COMPLETED").then_some(())
    })
    .await
    .0
}

/// Opens the watch page at `url`, presses play and returns the seconds
/// since `from` when the `<video>` fires `playing`.
async fn seconds_until_playing(client: &fantoccini::Client, url: &str, from: Instant) -> f64 {
    client.goto(url).await.expect("open the watch page");
    let played = js(
        client,
        "const v = document.querySelector('#player');
         return new Promise((resolve) => {
           v.addEventListener('playing', () => resolve('playing'), { once: true });
           v.play().catch((e) => resolve('refused: ' + e.message));
         });",
    )
    .await;
    assert_eq!(played, serde_json::json!("playing"), "the page plays");
    from.elapsed().as_secs_f64()
}

pub async fn run(secs: u32, width: u32, height: u32) -> Row {
    let work = tempfile::tempdir().expect("work dir");
    let clip = make_clip(work.path(), secs, width, height);
    let data = work.path().join("data");
    let server = Server::start("serve", &data, &[]).await;
    let base = server.base();
    let (client, _) = session(&base).await;
    let browser = start_browser().await;

    let ladder = HLS_LADDER_PRESET.to_string();
    let guid = upload_with_preset(&client, &base, &clip, Some(&ladder)).await;
    let uploaded = Instant::now();
    let streams = data.join("streams");
    let (published, folder) = seconds_until(uploaded, "the master playlist", || async {
        published_master(&streams)
    })
    .await;
    // The page's link to it: "Watch now" while it encodes, or (a clip too
    // short to be seen encoding) the finished video's.
    let (linked, watch) = seconds_until(uploaded, "the watch link", || async {
        let view = job(&client, &base, &guid).await;
        view["watch"]
            .as_str()
            .or_else(|| view["outputs"][0].as_str())
            .map(str::to_owned)
    })
    .await;
    assert_eq!(watch, folder, "the page links the published folder");
    let page = format!("{base}/watch/{watch}");
    let playing = seconds_until_playing(&browser.client, &page, uploaded).await;
    let ladder_done = until_completed(&client, &base, &guid, uploaded).await;
    browser.client.close().await.expect("close the browser");

    let guid = upload_with_preset(&client, &base, &clip, None).await;
    let mp4_from = Instant::now();
    let mp4_done = until_completed(&client, &base, &guid, mp4_from).await;
    server.stop().await;

    Row {
        measurement: "HLS time to first playable (from the upload's end)",
        result: format!(
            "{secs} s {width}×{height}: master playlist {published:.2} s · page link {linked:.2} s · browser playing \
             {playing:.2} s; whole ladder {ladder_done:.1} s; seed MP4 {mp4_done:.1} s"
        ),
        target: "first playable < 5 s, the whole ladder many times that",
        met: Some(published < 5.0),
        details: serde_json::json!({
            "master_playlist_secs": published,
            "watch_link_secs": linked,
            "browser_playing_secs": playing,
            "ladder_completed_secs": ladder_done,
            "seed_mp4_completed_secs": mp4_done,
        }),
    }
}
