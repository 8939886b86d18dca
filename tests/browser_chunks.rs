//! A chunked encode played in a real headless Chromium across its joins:
//! a 40 s clip, cut into chunks of about 10 s by one node's two encode
//! slots on the default SQLite database, as an HLS ladder (hls.js) and as
//! an MP4 (the `<video>` itself). At every join the player plays through
//! without waiting, stalling or skipping, its buffer has no hole, new
//! frames keep coming and the sound (the clip's steady tone) never drops.

mod common;
#[path = "common/browser.rs"]
mod kit;
#[path = "common/page.rs"]
mod page;

use common::{make_clip, require, spawn_app_with};
use fantoccini::Client;
use kit::{js, start_browser};
use page::{eventually, screenshot_on_failure, upload_with_preset};
use serde_json::{Value, json};
use videoshare::carbon::Guid;
use videoshare::encoder::preset::HLS_LADDER_PRESET;
use videoshare::store::{ChunkKind, ChunkState, ChunkStore};

/// The built-in MP4 preset (H.264 360p).
const MP4_360P: &str = "{543B8954-549F-4966-9B1C-99669AE288F7}";

/// Seconds played before and after each join.
const LEAD: f64 = 1.5;
const TAIL: f64 = 1.5;

/// Installed once per watch page: counts the `<video>`'s `waiting`,
/// `stalled` and `error` events, notes the media time of every frame shown
/// (`requestVideoFrameCallback`) and routes its sound through an analyser,
/// so that [`CROSS_JOIN`] can tell what happened while it played.
const WATCH_PLAYER: &str = r#"
const v = document.querySelector('#player');
v.preload = 'auto';
const ctx = new AudioContext();
const analyser = ctx.createAnalyser();
analyser.fftSize = 2048;
ctx.createMediaElementSource(v).connect(analyser);
analyser.connect(ctx.destination);
const frames = [];
const onFrame = (_now, meta) => { frames.push(meta.mediaTime); v.requestVideoFrameCallback(onFrame); };
v.requestVideoFrameCallback(onFrame);
const events = {waiting: 0, stalled: 0, error: 0};
for (const name of Object.keys(events)) v.addEventListener(name, () => { events[name] += 1; });
window.__watch = {ctx, analyser, frames, events};
return typeof v.webkitAudioDecodedByteCount;
"#;

/// Seeks to `arguments[0] - LEAD`, waits for the buffer to cover the span
/// to `arguments[0] + TAIL`, then plays it and reports: whether it was
/// buffered (in one range), whether it played through, the wall time it
/// took, the events counted meanwhile, the compressed sound bytes decoded,
/// the sound's level (RMS over 2048 samples, sampled every 25 ms) and the
/// largest step between the media times of consecutive frames shown.
const CROSS_JOIN: &str = r#"
const [join, lead, tail] = arguments;
const v = document.querySelector('#player');
const {ctx, analyser, frames, events} = window.__watch;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (ok, ms) => {
  const end = performance.now() + ms;
  while (!ok()) { if (performance.now() > end) return false; await sleep(25); }
  return true;
};
const ranges = () => [...Array(v.buffered.length).keys()].map((i) => [v.buffered.start(i), v.buffered.end(i)]);
const from = join - lead, to = join + tail;
const covered = () => ranges().some(([s, e]) => s <= from + 0.05 && e >= to + 0.5);
await ctx.resume();
v.pause();
v.currentTime = from;
const ready = await until(() => !v.seeking && v.readyState >= 3 && covered(), 20000);
if (!ready) {
  return {ready, buffered: ranges(), readyState: v.readyState, at: v.currentTime};
}
for (const name of Object.keys(events)) events[name] = 0;
frames.length = 0;
const bytes = v.webkitAudioDecodedByteCount;
const start = v.currentTime;
const levels = [];
const samples = new Float32Array(analyser.fftSize);
const t0 = performance.now();
await v.play();
const played = await until(() => {
  if (v.currentTime > start + 0.3) {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    levels.push([v.currentTime, Math.sqrt(sum / samples.length)]);
  }
  return v.currentTime >= to;
}, (lead + tail) * 1000 + 4000);
const wall = (performance.now() - t0) / 1000;
v.pause();
const sorted = levels.map(([, l]) => l).sort((a, b) => a - b);
const quietest = levels.reduce((q, l) => (l[1] < q[1] ? l : q), [null, Infinity]);
let frameStep = 0;
for (let i = 1; i < frames.length; i++) frameStep = Math.max(frameStep, frames[i] - frames[i - 1]);
return {
  ready, played, start, end: v.currentTime, wall, events: {...events},
  soundBytes: v.webkitAudioDecodedByteCount - bytes,
  levels: levels.length, medianLevel: sorted[sorted.length >> 1] || 0, quietest,
  frames: frames.length, frameStep, buffered: ranges(),
};
"#;

/// Where the job's video chunks after the first start (its joins), in
/// seconds, read from the app's `chunks` table once every chunk is done.
async fn joins_of(app: &common::TestApp, guid: &str) -> Vec<f64> {
    let db = common::db::open_app_db(&app.data).await;
    let guid: Guid = guid.parse().expect("a GUID");
    let chunks = ChunkStore::new(db.clone())
        .list(guid)
        .await
        .expect("the job's chunks");
    db.close().await;
    assert!(
        chunks.iter().all(|c| c.state == ChunkState::Done),
        "every chunk done: {chunks:?}"
    );
    assert!(
        chunks.iter().any(|c| c.planned.kind == ChunkKind::Audio),
        "the sound encoded once, as its own chunk: {chunks:?}"
    );
    chunks
        .iter()
        .filter(|c| c.planned.kind == ChunkKind::Video)
        .skip(1)
        .map(|c| c.planned.start_us as f64 / 1e6)
        .collect()
}

/// Opens the watch page of job `guid`'s finished output (its queue row's
/// Watch link) and readies the player for [`crosses_join`].
async fn watch(client: &Client, base: &str, guid: &str) {
    client.goto(base).await.expect("open the queue");
    let href = eventually("the job's Watch link", || async {
        let script = format!(
            "const a = document.querySelector('#jobs .job[data-guid=\"{guid}\"] .job-links a:not(.watch-now)'); return a ? a.href : null;"
        );
        js(client, &script).await.as_str().map(str::to_owned)
    })
    .await;
    client.goto(&href).await.expect("open the watch page");
    eventually("the player's metadata", || async {
        let ready = js(
            client,
            "return document.querySelector('#player').readyState >= 1;",
        )
        .await;
        (ready == json!(true)).then_some(())
    })
    .await;
    let counter = js(client, WATCH_PLAYER).await;
    assert_eq!(counter, json!("number"), "webkitAudioDecodedByteCount");
}

/// Plays `output` across the join at `join` seconds; fails saying what the
/// player showed when it did not play through cleanly.
async fn crosses_join(client: &Client, output: &str, join: f64) -> Value {
    let report = client
        .execute(CROSS_JOIN, vec![json!(join), json!(LEAD), json!(TAIL)])
        .await
        .expect("the join's script runs");
    let at = format!("{output}, join at {join} s: {report}");
    assert_eq!(report["ready"], json!(true), "no hole in the buffer: {at}");
    assert_eq!(report["played"], json!(true), "played through: {at}");
    assert_eq!(
        report["events"],
        json!({"waiting": 0, "stalled": 0, "error": 0}),
        "no wait, stall or error: {at}"
    );
    let number = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    // Played at the pace of the clock: no hole jumped over.
    let advanced = number("end") - number("start");
    assert!(advanced <= number("wall") + 0.25, "no skip: {at}");
    // New frames all along: the picture did not freeze at the join.
    assert!(number("frames") >= 25.0, "frames shown: {at}");
    assert!(number("frameStep") < 0.3, "no frozen picture: {at}");
    // The tone all along: sound decoded, never near silence.
    assert!(number("soundBytes") > 0.0, "sound decoded: {at}");
    assert!(number("levels") >= 20.0, "sound sampled: {at}");
    let median = number("medianLevel");
    let quietest = report["quietest"][1].as_f64().unwrap_or(f64::NAN);
    assert!(median > 0.01, "the tone is heard: {at}");
    assert!(quietest > median / 2.0, "no drop in the sound: {at}");
    report
}

#[tokio::test]
async fn a_chunked_ladder_and_mp4_play_across_their_joins() {
    require("chromium");
    let started = std::time::Instant::now();
    let app = spawn_app_with(|args| {
        args.encoder.encode_slots = 2;
        args.encoder.chunk_threshold_secs = 20;
        args.encoder.chunk_secs = 10;
    })
    .await;
    let files = tempfile::tempdir().expect("tempdir");
    let ladder_clip = make_clip(files.path(), "crossing.mp4", 40, 320, 240);
    let mp4_clip = files.path().join("ferry.mp4");
    std::fs::copy(&ladder_clip, &mp4_clip).expect("copy the clip");

    let browser = start_browser().await;
    let c = &browser.client;
    screenshot_on_failure(c, "watch-chunked-failed.png", async {
        c.goto(&app.base).await.expect("open the page");
        let ladder = upload_with_preset(c, &HLS_LADDER_PRESET.to_string(), &ladder_clip).await;
        let mp4 = upload_with_preset(c, MP4_360P, &mp4_clip).await;
        let carbon = videoshare::carbon::Client::new(app.carbon.to_string());
        for guid in [&ladder, &mp4] {
            common::wait_completed(&carbon, guid.parse().expect("a GUID")).await;
        }
        eprintln!("encoded in {:?}", started.elapsed());

        for (output, guid, engine) in [("ladder", &ladder, "hls.js"), ("MP4", &mp4, "file")] {
            let joins = joins_of(&app, guid).await;
            assert!(
                joins.len() >= 2,
                "the {output} was chunked: joins {joins:?}"
            );
            watch(c, &app.base, guid).await;
            let shown = js(
                c,
                "return document.querySelector('#player').dataset.engine || '';",
            )
            .await;
            assert_eq!(shown, json!(engine), "the {output}'s player");
            for join in joins {
                let report = crosses_join(c, output, join).await;
                eprintln!("{output} across {join} s: {report}");
            }
        }
    })
    .await;
    eprintln!("took {:?}", started.elapsed());
    browser.client.close().await.expect("close the session");
    app.stop().await;
}
