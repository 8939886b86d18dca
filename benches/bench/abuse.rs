//! The legitimate browser under attack: the same flow (upload a clip,
//! follow it to COMPLETED over the WebSocket, load pages all along, play
//! the result) against a `videoshare serve --accounts` process, once alone
//! and once while one attacker on 127.0.0.2–9 does everything
//! `tests/common/attacker.rs` does. Reported side by side: the browser's
//! p95 page load and progress latency, their ratio attacked / idle, and the
//! server's peak RSS and CPU.

use std::time::{Duration, Instant};

use crate::attacker::{Attack, AttackSize};
use crate::latency::{percent_latencies, watch};
use crate::support::{Row, Server, percentile, session, upload_file};

struct Run {
    page_ms: Vec<f64>,
    progress_ms: Vec<f64>,
    played: bool,
    peak_rss_kib: u64,
    cpu_percent: f64,
    attack: Option<String>,
}

/// Loads `/` every 100 ms until `done`; each load's time in ms.
async fn page_loads(
    client: reqwest::Client,
    base: String,
    done: tokio::sync::watch::Receiver<bool>,
) -> Vec<f64> {
    let mut times = Vec::new();
    while !*done.borrow() {
        let started = Instant::now();
        let loaded = client.get(format!("{base}/")).send().await;
        if let Ok(response) = loaded
            && response.status().is_success()
            && response.bytes().await.is_ok()
        {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    times
}

async fn one_run(clip: &std::path::Path, attack: Option<AttackSize>) -> Run {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let server = Server::start("serve", &work.path().join("data"), &["--accounts"]).await;
    let base = server.base();
    let addr = server.http.expect("portal");
    let attacking = attack.map(|size| Attack::launch(addr, size));
    // Let the attack take hold before the browser arrives.
    if attacking.is_some() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    server.reset_peak();
    let cpu_before = server.cpu_secs();
    let started = Instant::now();

    let (client, cookie) = session(&base).await;
    let watcher = watch(addr, cookie).await;
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let loads = tokio::spawn(page_loads(client.clone(), base.clone(), done_rx));
    let guid = upload_file(&client, &base, clip).await;
    let seen = watcher.await.expect("watcher");
    let _ = done_tx.send(true);
    let page_ms = loads.await.expect("page loads");
    let videos: serde_json::Value = client
        .get(format!("{base}/api/videos"))
        .send()
        .await
        .expect("videos")
        .json()
        .await
        .expect("json");
    let name = videos[0]["name"].as_str().unwrap_or_default().to_owned();
    let played = client
        .get(format!("{base}/streams/{name}"))
        .header("range", "bytes=0-1023")
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::PARTIAL_CONTENT);

    let wall = started.elapsed().as_secs_f64();
    let cpu_percent = (server.cpu_secs() - cpu_before) / wall * 100.0;
    let peak_rss_kib = server.memory_kib("VmHWM");
    let reported = server.progress.lock().expect("progress").clone();
    let attack = match attacking {
        Some(attack) => Some(attack.stop().await.summary()),
        None => None,
    };
    server.stop().await;
    Run {
        page_ms,
        progress_ms: percent_latencies(&seen, &reported, &guid),
        played,
        peak_rss_kib,
        cpu_percent,
        attack,
    }
}

fn p95(values: &[f64]) -> f64 {
    percentile(values, 95.0)
}

pub async fn run(clip_secs: u32, width: u32, height: u32, size: AttackSize) -> Row {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let clip = crate::support::make_clip(work.path(), clip_secs, width, height);
    let idle = one_run(&clip, None).await;
    let attacked = one_run(&clip, Some(size)).await;
    let page = (p95(&idle.page_ms), p95(&attacked.page_ms));
    let progress = (p95(&idle.progress_ms), p95(&attacked.progress_ms));
    let ratio = |(a, b): (f64, f64)| if a > 0.0 { b / a } else { f64::NAN };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let summary = format!(
        "page p95 {:.1} vs {:.1} ms ({:.2}×), progress p95 {:.0} vs {:.0} ms ({:.2}×) idle vs \
         attacked; server peak RSS {:.0} vs {:.0} MiB, CPU {:.0} vs {:.0} %",
        page.0,
        page.1,
        ratio(page),
        progress.0,
        progress.1,
        ratio(progress),
        mib(idle.peak_rss_kib),
        mib(attacked.peak_rss_kib),
        idle.cpu_percent,
        attacked.cpu_percent,
    );
    println!(
        "under attack: {summary}; attacker: {}",
        attacked.attack.as_deref().unwrap_or("")
    );
    // A ratio of tiny figures is noise: within 2× or within 50 ms counts.
    let holds = |(a, b): (f64, f64)| b <= 2.0 * a || b - a <= 50.0;
    Row {
        measurement: "legitimate browser under attack",
        result: summary,
        target: "flow completes; page and progress p95 within 2× of idle",
        met: Some(idle.played && attacked.played && holds(page) && holds(progress)),
        details: serde_json::json!({
            "idle": { "page_p95_ms": page.0, "progress_p95_ms": progress.0,
                      "page_loads": idle.page_ms.len(), "percents": idle.progress_ms.len(),
                      "peak_rss_mib": mib(idle.peak_rss_kib), "cpu_percent": idle.cpu_percent },
            "attacked": { "page_p95_ms": page.1, "progress_p95_ms": progress.1,
                          "page_loads": attacked.page_ms.len(), "percents": attacked.progress_ms.len(),
                          "peak_rss_mib": mib(attacked.peak_rss_kib), "cpu_percent": attacked.cpu_percent,
                          "attack": attacked.attack },
        }),
    }
}
