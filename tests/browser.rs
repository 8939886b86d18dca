//! A real headless Chromium (Debian's chromium + chromium-driver) doing what
//! users do: pick files, press Upload, watch the bars, pause and resume an
//! encode, see the video appear with its thumbnail and play it. Two
//! browsers do not see each other's queues; an upload whose connection is
//! cut resumes; a page on another origin cannot open the WebSocket. An
//! HLS ladder uploaded from the page plays with hls.js, its quality menu
//! switches rungs, its seek bar previews storyboard tiles.
//! Screenshots are saved under `target/screenshots/` (for the ladder tests,
//! also when they fail).

mod common;
#[path = "common/browser.rs"]
mod kit;
#[path = "common/page.rs"]
mod page;

use std::path::Path;
use std::time::Duration;

use common::proxy::{Direction, Fault, Proxy};
use common::{DEADLINE, make_clip, require, spawn_app, spawn_app_with};
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use kit::{js, start_browser};
use page::{
    choose_file_and_upload, eventually, newest_job, open_watch_page, screenshot,
    screenshot_on_failure, text_of, upload_with_preset,
};
use serde_json::json;

/// Collects the distinct texts of `css` until one equals `last` (or one
/// starts with `fail`, which fails the test).
async fn texts_until(client: &Client, css: &str, last: &str, fail: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while seen.last().map(String::as_str) != Some(last) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {last:?} in {css}; saw {seen:?}"
        );
        if let Some(text) = text_of(client, css).await
            && seen.last() != Some(&text)
        {
            assert!(!text.starts_with(fail), "{text} (saw {seen:?})");
            seen.push(text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// Waits until the first `<video>` matching `css` has played a little.
async fn plays(client: &Client, css: &str) -> f64 {
    let duration = eventually("the video's metadata", || async {
        js(client, &format!("const v = document.querySelector('{css}'); return v && v.readyState >= 1 ? v.duration : null;"))
            .await
            .as_f64()
    })
    .await;
    let played = js(
        client,
        &format!("return document.querySelector('{css}').play().then(() => 'playing', e => 'refused: ' + e.message);"),
    )
    .await;
    assert_eq!(played, json!("playing"));
    eventually("playback to advance", || async {
        let t = js(
            client,
            &format!("return document.querySelector('{css}').currentTime;"),
        )
        .await
        .as_f64()?;
        (t > 0.2).then_some(())
    })
    .await;
    duration
}

/// Whether the page is wider than the window (a sideways scroll).
async fn overflows_sideways(client: &Client) -> bool {
    js(
        client,
        "return document.documentElement.scrollWidth > window.innerWidth + 1;",
    )
    .await
        == json!(true)
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

    // By keyboard: Tab from the top reaches the file input.
    let mut reached = false;
    for _ in 0..12 {
        c.active_element()
            .await
            .expect("focus")
            .send_keys("\u{E004}")
            .await
            .expect("tab");
        if js(c, "return document.activeElement.id;").await == json!("file-input") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the file input");

    // A bad file: the server's reason appears on its upload row.
    choose_file_and_upload(c, &bogus).await;
    let error = eventually("the upload error", || async {
        text_of(c, "#uploads .upload.failed .label").await
    })
    .await;
    assert!(
        error.contains("notes.mp4") && error.contains("not a video"),
        "{error}"
    );
    // Its bar is empty and red, not full and blue as if it had worked.
    let failed_bar = js(
        c,
        "const bar = document.querySelector('#uploads .upload.failed progress'); \
         return [bar.value, getComputedStyle(bar).borderTopColor];",
    )
    .await;
    assert_eq!(failed_bar, json!([0, "rgb(180, 35, 24)"]), "the failed bar");

    // A real clip: upload bar, then the encode bar to "Encoding complete".
    choose_file_and_upload(c, &clip).await;
    let labels_seen = texts_until(
        c,
        "#jobs .job .label",
        "Encoding complete",
        "Encoding failed",
    )
    .await;
    assert_eq!(
        text_of(c, "#jobs .job .job-name").await.as_deref(),
        Some("beach day.mp4")
    );
    let bar = js(
        c,
        "const p = document.querySelector('#jobs .job progress'); return [p.value, p.getAttribute('aria-valuenow'), p.getAttribute('aria-valuetext')];",
    )
    .await;
    assert_eq!(bar, json!([100, "100", "Encoding complete"]));
    assert_eq!(
        text_of(c, "#jobs .job .job-links a").await.as_deref(),
        Some("Watch beach_day.mp4")
    );

    // The video appears with its thumbnail, without a reload.
    let width = eventually("the thumbnail to load", || async {
        js(c, "const i = document.querySelector('#videos .video img.thumb'); return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null;")
            .await
            .as_u64()
    })
    .await;
    assert_eq!(width, 320);
    assert_eq!(
        text_of(c, "#videos .video .title").await.as_deref(),
        Some("beach_day")
    );
    assert_eq!(
        js(c, "return window.__sameDocument || null;").await,
        json!("yes"),
        "the page reloaded"
    );
    screenshot(c, "queue.png").await;
    eprintln!("labels seen: {labels_seen:?}");

    // At phone width nothing needs a sideways scroll.
    c.set_window_size(390, 844).await.expect("phone size");
    assert!(
        !overflows_sideways(c).await,
        "the queue page overflows at phone width"
    );
    screenshot(c, "queue-phone.png").await;
    c.set_window_size(1280, 1000).await.expect("desktop size");

    // The library and the watch page: the video plays.
    c.goto(&format!("{}/library", app.base))
        .await
        .expect("library");
    eventually("the library's thumbnail", || async {
        js(c, "const i = document.querySelector('#videos img.thumb'); return i && i.complete && i.naturalWidth > 0 ? true : null;")
            .await
            .as_bool()
    })
    .await;
    screenshot(c, "library.png").await;
    c.find(Locator::Css("#videos .video a.title"))
        .await
        .expect("a title link")
        .click()
        .await
        .expect("open the watch page");
    let duration = plays(c, "#player").await;
    assert!(duration > 1.5 && duration < 3.0, "duration {duration}");
    assert!(
        c.find(Locator::Css("a[download]")).await.is_ok(),
        "a download link"
    );
    screenshot(c, "watch.png").await;

    browser.client.close().await.expect("close the session");
    app.stop().await;
}

#[tokio::test]
async fn two_browsers_keep_private_queues_and_pause_and_resume_from_the_page() {
    require("chromium");
    let app = spawn_app_with(|a| a.encoder.encode_slots = 2).await;
    let files = tempfile::tempdir().expect("tempdir");
    let long = make_clip(files.path(), "long take.mp4", 60, 320, 240);
    let short = make_clip(files.path(), "short.mp4", 1, 160, 120);

    let alice = start_browser().await;
    let bob = start_browser().await;
    let (a, b) = (&alice.client, &bob.client);
    a.goto(&app.base).await.expect("alice opens the page");
    b.goto(&app.base).await.expect("bob opens the page");
    choose_file_and_upload(a, &long).await;
    choose_file_and_upload(b, &short).await;
    let alices = newest_job(a).await;
    let bobs = newest_job(b).await;
    texts_until(
        b,
        "#jobs .job .label",
        "Encoding complete",
        "Encoding failed",
    )
    .await;

    // Each queue holds only its own job.
    let rows = "return [...document.querySelectorAll('#jobs .job')].map(r => r.dataset.guid);";
    assert_eq!(js(a, rows).await, json!([alices]));
    assert_eq!(js(b, rows).await, json!([bobs]));

    // Bob cannot act on Alice's job, over HTTP or the WebSocket.
    let status = js(
        b,
        &format!(
            "return fetch('/api/jobs/{alices}/pause', {{method: 'POST'}}).then(r => r.status);"
        ),
    )
    .await;
    assert_eq!(status, json!(404));
    let refusal = js(
        b,
        &format!(
            "return new Promise((resolve) => {{
               const ws = new WebSocket(`ws://${{location.host}}/ws`);
               ws.onopen = () => ws.send(JSON.stringify({{type: 'watch', guid: '{alices}'}}));
               ws.onmessage = (e) => {{ const m = JSON.parse(e.data); if (m.type === 'error') {{ ws.close(); resolve(m.code); }} }};
               setTimeout(() => resolve('no answer'), 10000);
             }});"
        ),
    )
    .await;
    assert_eq!(refusal, json!("unknown_job"));

    // Alice pauses her encode from the page: it holds still...
    let pause = eventually("the encode to be under way", || async {
        let state = js(a, "const r = document.querySelector('#jobs .job'); const p = r.querySelector('[data-action=pause]'); return r.dataset.status === 'STARTED' && Number(r.querySelector('progress').value) > 0 && !p.hidden ? true : null;").await;
        state.as_bool()
    })
    .await;
    assert!(pause);
    a.find(Locator::Css("#jobs .job [data-action=pause]"))
        .await
        .expect("pause button")
        .click()
        .await
        .expect("click pause");
    let paused = eventually("the paused label", || async {
        text_of(a, "#jobs .job .label")
            .await
            .filter(|l| l.starts_with("Paused at"))
    })
    .await;
    screenshot(a, "queue-paused.png").await;
    let progress = "return Number(document.querySelector('#jobs .job progress').value);";
    let held = js(a, progress).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(js(a, progress).await, held, "progress moved while paused");
    assert_eq!(text_of(a, "#jobs .job .label").await, Some(paused));

    // ...and resumes: progress goes on to the end.
    a.find(Locator::Css("#jobs .job [data-action=resume]"))
        .await
        .expect("resume button")
        .click()
        .await
        .expect("click resume");
    eventually("progress after resuming", || async {
        let now = js(a, progress).await.as_f64()?;
        (now > held.as_f64()?).then_some(())
    })
    .await;
    texts_until(
        a,
        "#jobs .job .label",
        "Encoding complete",
        "Encoding failed",
    )
    .await;

    alice.client.close().await.expect("close");
    bob.client.close().await.expect("close");
    app.stop().await;
}

#[tokio::test]
async fn an_upload_cut_midway_resumes_and_the_result_plays() {
    require("chromium");
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "cut.mp4", 8, 640, 480);
    let size = std::fs::metadata(&clip).expect("clip").len() as usize;
    assert!(size > 400_000, "the clip is big enough to cut: {size}");
    // Cuts, once, the first connection carrying more than half the clip
    // from the browser.
    let cut = Fault::Cut {
        direction: Direction::Upload,
        after: size / 2,
    };
    let proxy = Proxy::start(app.http_addr, cut).await;

    let browser = start_browser().await;
    let c = &browser.client;
    c.goto(&format!("http://{}/", proxy.addr))
        .await
        .expect("open the page through the proxy");
    choose_file_and_upload(c, &clip).await;
    texts_until(
        c,
        "#jobs .job .label",
        "Encoding complete",
        "Encoding failed",
    )
    .await;
    assert!(proxy.fired(), "the upload's connection was cut");
    assert!(
        proxy.sent_after_fault(b"HEAD /files"),
        "the client asked HEAD where to resume"
    );
    // The server got every byte once: the stored upload is the clip.
    let stored = app.uploaded_dir().join("cut.mp4");
    assert_eq!(
        std::fs::read(&stored).expect("stored upload"),
        std::fs::read(&clip).expect("clip")
    );

    open_watch_page(c, "#jobs .job .job-links a", "cut").await;
    let duration = plays(c, "#player").await;
    assert!(duration > 7.0 && duration < 9.0, "duration {duration}");
    browser.client.close().await.expect("close");
    app.stop().await;
}

#[tokio::test]
async fn a_page_on_another_origin_cannot_open_the_websocket() {
    require("chromium");
    let app = spawn_app().await;
    // Another site, on another port: a page that tries the portal's socket.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other_addr = other.local_addr().expect("addr");
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>elsewhere</title>")
        }),
    );
    tokio::spawn(async move { axum::serve(other, page).await });

    let try_socket = format!(
        "return new Promise((resolve) => {{
           const ws = new WebSocket('ws://{}/ws');
           ws.onmessage = (e) => {{ ws.close(); resolve('open: ' + JSON.parse(e.data).type); }};
           ws.onerror = () => resolve('refused');
           setTimeout(() => resolve('no answer'), 10000);
         }});",
        app.http_addr
    );
    let browser = start_browser().await;
    let c = &browser.client;
    c.goto(&format!("http://{other_addr}/"))
        .await
        .expect("the other site");
    assert_eq!(js(c, &try_socket).await, json!("refused"));
    c.goto(&app.base).await.expect("the portal");
    assert_eq!(js(c, &try_socket).await, json!("open: queue"));
    browser.client.close().await.expect("close");
    app.stop().await;
}

/// The built-in HLS ladder preset.
const LADDER: &str = "{5C1E7A3B-9D24-4F6E-8B0A-2E7D4C9F1A63}";

/// Uploads an 8 s 854×480 clip with sound from the page with the ladder
/// preset chosen, waits for "Encoding complete" and opens its watch page
/// through the queue's Watch link.
async fn upload_a_ladder_and_watch_it(client: &Client, app: &common::TestApp, dir: &Path) {
    let clip = make_clip(dir, "harbour.mp4", 8, 854, 480);
    client.goto(&app.base).await.expect("open the page");
    client
        .find(Locator::Css("#preset-select"))
        .await
        .expect("the preset menu")
        .select_by_value(LADDER)
        .await
        .expect("choose the ladder");
    choose_file_and_upload(client, &clip).await;
    texts_until(
        client,
        "#jobs .job .label",
        "Encoding complete",
        "Encoding failed",
    )
    .await;
    // The row may be redrawn just as "Encoding complete" shows.
    open_watch_page(client, "#jobs .job .job-links a", "harbour").await;
}

/// The `<video>`'s decoded height once it is `wanted`, polled while it plays.
async fn height_becomes(client: &Client, wanted: u64) {
    eventually(&format!("a {wanted}p picture"), || async {
        let v = js(
            client,
            "const v = document.querySelector('#player'); return [v.videoHeight, v.paused];",
        )
        .await;
        (v == json!([wanted, false])).then_some(())
    })
    .await;
}

/// Moves the pointer over `element`, `x` pixels right of its centre.
async fn hover(client: &Client, element: &Element, x: f64) {
    let over = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: element.clone(),
        duration: None,
        x,
        y: 0.0,
    });
    client
        .perform_actions(over)
        .await
        .expect("move the pointer");
}

/// Chooses `label` in the quality menu (by keyboard-reachable `<select>`).
async fn choose_quality(client: &Client, label: &str) {
    client
        .find(Locator::Css("#quality"))
        .await
        .expect("the quality menu")
        .select_by_label(label)
        .await
        .expect("choose a quality");
}

#[tokio::test]
async fn a_ladder_plays_with_hls_js_and_its_quality_menu_switches_rungs() {
    require("chromium");
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let browser = start_browser().await;
    let c = &browser.client;
    screenshot_on_failure(c, "watch-hls-failed.png", async {
        upload_a_ladder_and_watch_it(c, &app, files.path()).await;

        // hls.js (served by the portal, named by its version) plays it from
        // the start.
        assert_eq!(
            js(c, "return [document.querySelector('#player').dataset.engine, typeof Hls, [...document.scripts].some(s => /\\/static\\/hls\\.min\\.js\\?v=\\d/.test(s.src))];").await,
            json!(["hls.js", "function", true])
        );
        js(c, "document.querySelector('#player').loop = true; return null;").await;
        let duration = plays(c, "#player").await;
        assert!(duration > 7.5 && duration < 8.5, "duration {duration}");
        let height = js(c, "return document.querySelector('#player').videoHeight;").await;
        assert!(height == json!(480) || height == json!(360), "{height}");

        // The menu: labelled, Auto naming the rung playing, then the rungs.
        assert_eq!(
            text_of(c, "label[for=quality]").await.as_deref(),
            Some("Quality")
        );
        let options = "return [...document.querySelectorAll('#quality option')].map(o => o.textContent);";
        let auto = eventually("Auto to name the rung playing", || async {
            let labels = js(c, options).await;
            let first = labels.get(0)?.as_str()?.to_owned();
            (first == "Auto (480p)" || first == "Auto (360p)").then_some(labels)
        })
        .await;
        assert_eq!(
            auto.as_array().map(|labels| labels[1..].to_vec()),
            Some(vec![json!("480p"), json!("360p")]),
            "{auto}"
        );

        choose_quality(c, "360p").await;
        height_becomes(c, 360).await;
        screenshot(c, "watch-hls-360p.png").await;
        choose_quality(c, "480p").await;
        height_becomes(c, 480).await;
        assert_eq!(js(c, options).await[0], json!("Auto"), "a rung is chosen");

        // The seek bar: by keyboard, 5 s a step; hovering shows the time.
        js(c, "const v = document.querySelector('#player'); v.pause(); v.currentTime = 0; return null;").await;
        let bar = c.find(Locator::Css("#seek-bar")).await.expect("the seek bar");
        bar.send_keys("\u{E014}").await.expect("ArrowRight");
        // The bar tells the new time as the seek lands.
        eventually("a keyboard seek to 5 s, told by the bar", || async {
            let seen = js(c, "return [document.querySelector('#player').currentTime, document.querySelector('#seek-bar').getAttribute('aria-valuetext')];").await;
            let t = seen.get(0)?.as_f64()?;
            ((t - 5.0).abs() < 0.2 && seen[1] == json!("0:05 of 0:08")).then_some(())
        })
        .await;
        // 9/16 of the way: 4.5 s, clear of a second's edge.
        let width = js(c, "return document.querySelector('#seek-bar').clientWidth;")
            .await
            .as_f64()
            .expect("a width");
        hover(c, &bar, width / 16.0).await;
        let tip = eventually("the seek bar's tooltip", || async {
            text_of(c, "#seek-tip:not([hidden]) .seek-time").await
        })
        .await;
        assert_eq!(tip, "0:04", "4.5 s into an 8 s bar");

        // At a 360 px phone width the player, menu and bar fit.
        c.set_window_size(360, 800).await.expect("phone size");
        assert!(!overflows_sideways(c).await, "the watch page overflows");
        let fits = "return ['#player', '#seek-bar', '#quality'].every(s => document.querySelector(s).getBoundingClientRect().right <= window.innerWidth);";
        assert_eq!(js(c, fits).await, json!(true));
        screenshot(c, "watch-hls-phone.png").await;

        // Rung playlists gone (404): the page says it cannot load the video.
        for rung in ["480p", "360p"] {
            let playlist = app.streams_dir().join("harbour").join(rung).join("index.m3u8");
            std::fs::remove_file(playlist).expect("remove a rung playlist");
        }
        c.refresh().await.expect("reload");
        let error = eventually("the player's error", || async {
            text_of(c, "#player-error:not([hidden])").await
        })
        .await;
        assert!(error.starts_with("The video could not be loaded"), "{error}");
    })
    .await;
    browser.client.close().await.expect("close the session");
    app.stop().await;
}

/// Needs the encoder to write `storyboard.vtt` (+ sprites) and
/// `download.mp4` into the ladder's folder.
#[tokio::test]
async fn a_ladders_seek_bar_previews_storyboard_tiles_and_it_downloads_as_one_mp4() {
    require("chromium");
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let browser = start_browser().await;
    let c = &browser.client;
    screenshot_on_failure(c, "watch-storyboard-failed.png", async {
        upload_a_ladder_and_watch_it(c, &app, files.path()).await;
        assert_eq!(
            js(c, "return document.querySelector('#player').dataset.storyboard;").await,
            json!("/streams/harbour/storyboard.vtt")
        );
        plays(c, "#player").await;

        // Hovering 5/16 of the way (2.5 s: inside the second 2 s tile)
        // shows that moment's tile.
        let bar = c.find(Locator::Css("#seek-bar")).await.expect("the seek bar");
        let width = js(c, "return document.querySelector('#seek-bar').clientWidth;")
            .await
            .as_f64()
            .expect("a width");
        hover(c, &bar, -width * 3.0 / 16.0).await;
        let tile = eventually("a storyboard tile in the tooltip", || async {
            let tile = js(c, "const t = document.querySelector('#seek-tip:not([hidden]) .seek-tile:not([hidden])'); return t ? [getComputedStyle(t).backgroundImage, t.offsetWidth, t.offsetHeight] : null;").await;
            (!tile.is_null()).then_some(tile)
        })
        .await;
        let image = tile[0].as_str().unwrap_or_default();
        assert!(image.contains("/streams/harbour/storyboard-"), "{tile}");
        assert!(tile[1].as_u64() > Some(0) && tile[2].as_u64() > Some(0), "{tile}");
        assert_eq!(text_of(c, "#seek-tip .seek-time").await.as_deref(), Some("0:02"));
        screenshot(c, "watch-storyboard.png").await;

        // One MP4 to download, named after the video.
        let link = js(c, "const a = document.querySelector('a[download]'); return a && [a.textContent, a.getAttribute('href'), a.getAttribute('download')];").await;
        assert_eq!(
            link,
            json!(["Download MP4", "/streams/harbour/download.mp4", "harbour.mp4"])
        );
        let fetched = js(c, "return fetch('/streams/harbour/download.mp4', {method: 'HEAD'}).then(r => [r.status, r.headers.get('content-type')]);").await;
        assert_eq!(fetched, json!([200, "video/mp4"]));
    })
    .await;
    browser.client.close().await.expect("close the session");
    app.stop().await;
}

/// The `<video>`'s position and whether it ended.
async fn position(client: &Client) -> (f64, bool) {
    let v = js(
        client,
        "const v = document.querySelector('#player'); return [v.currentTime, v.ended];",
    )
    .await;
    (v[0].as_f64().unwrap_or(0.0), v[1] == json!(true))
}

#[tokio::test]
async fn a_ladder_plays_in_chromium_while_it_encodes_and_on_to_its_end() {
    require("chromium");
    let files = tempfile::tempdir().expect("tempdir");
    let config = common::slow_ladder_config(files.path());
    let app = spawn_app_with(|args| args.encoder.config = Some(config.clone())).await;
    let browser = start_browser().await;
    let c = &browser.client;
    screenshot_on_failure(c, "watch-live-failed.png", async {
        // 12 s through the test's veryslow ladder: its first segments are
        // playable after a few seconds, the whole takes several times that.
        let clip = make_clip(files.path(), "growing.mp4", 12, 854, 480);
        c.goto(&app.base).await.expect("open the page");
        let guid = upload_with_preset(c, &common::SLOW_LADDER.to_string(), &clip).await;
        let link = eventually("the watch-now link", || async {
            text_of(c, "#jobs .job .job-links a.watch-now").await
        })
        .await;
        assert_eq!(link, "Watch now — still encoding");
        open_watch_page(c, "#jobs .job .job-links a.watch-now", "growing").await;
        assert!(
            text_of(c, ".watch .encoding-badge")
                .await
                .is_some_and(|t| t.starts_with("Still encoding")),
            "the page says it is still encoding"
        );

        // It starts at 0 and plays while the job still encodes.
        let played = js(c, "return document.querySelector('#player').play().then(() => 'playing', e => 'refused: ' + e.message);").await;
        assert_eq!(played, json!("playing"));
        eventually("playback to advance", || async {
            let (at, _) = position(c).await;
            (at > 1.0).then_some(())
        })
        .await;
        let status = app.carbon_status(&guid).await.status;
        assert_ne!(
            status,
            videoshare::carbon::JobStatus::Completed,
            "playing before COMPLETED"
        );
        screenshot(c, "watch-live-encoding.png").await;

        // After the encode ends (the playlists get ENDLIST), it plays on
        // to the end.
        let client = videoshare::carbon::Client::new(app.carbon.to_string());
        common::wait_completed(&client, guid.parse().expect("a GUID")).await;
        let (at, _) = eventually("the video to end", || async {
            let (at, ended) = position(c).await;
            ended.then_some((at, ended))
        })
        .await;
        assert!((at - 12.0).abs() < 0.5, "ended at {at} s of 12");
    })
    .await;
    app.stop().await;
}
