//! Progress latency and WebSocket fan-out: `watchers` sockets of one
//! session follow a job while it encodes in a `videoshare serve` process.
//! For every percent a socket receives, latency is the time from the
//! encoder logging ffmpeg's report of that percent (its `at_us` field) to
//! the message arriving here: wall clocks on both ends, one machine.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Row, Server, percentile, session, unix_micros, upload_file};

/// One job message as a socket saw it: status, percent, arrival time.
pub type Seen = Vec<(String, u64, u128)>;

pub async fn watch(addr: std::net::SocketAddr, cookie: String) -> tokio::task::JoinHandle<Seen> {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("cookie"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    // The queue snapshot first: from here on the socket is subscribed.
    let first = socket.next().await.expect("open").expect("message");
    assert!(first.to_text().unwrap_or_default().contains("\"queue\""));
    tokio::spawn(async move {
        let mut seen = Seen::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(300), socket.next()).await
        {
            let at = unix_micros();
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if value["type"] != "job" {
                continue;
            }
            let job = &value["job"];
            let status = job["status"].as_str().unwrap_or_default().to_owned();
            seen.push((status, job["progress"].as_u64().unwrap_or(0), at));
            if job["done"] == true {
                break;
            }
        }
        seen
    })
}

/// For each percent a socket saw: the time from ffmpeg reporting it (the
/// encoder's log) to its first arrival at the socket (later messages
/// repeat it with new fps or ETA), in milliseconds.
pub fn percent_latencies(
    seen: &Seen,
    reported: &std::collections::HashMap<(String, u64), u128>,
    guid: &str,
) -> Vec<f64> {
    let mut latencies_ms = Vec::new();
    let mut last_percent = None;
    for (status, percent, at) in seen {
        if status != "STARTED" || last_percent == Some(*percent) {
            continue;
        }
        last_percent = Some(*percent);
        if let Some(reported_at) = reported.get(&(guid.to_owned(), *percent)) {
            latencies_ms.push((*at as f64 - *reported_at as f64) / 1000.0);
        }
    }
    latencies_ms
}

pub struct Measured {
    pub latencies_ms: Vec<f64>,
    pub watchers: usize,
    pub complete_sockets: usize,
    pub messages: usize,
    pub server_cpu_percent: f64,
    pub encode_secs: f64,
}

pub async fn measure(watchers: usize, clip_secs: u32, width: u32, height: u32) -> Measured {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let clip = crate::support::make_clip(work.path(), clip_secs, width, height);
    let cap = (watchers + 16).to_string();
    let server = Server::start(
        "serve",
        &work.path().join("data"),
        // Every watcher comes from this one address.
        &["--ws-per-client", &cap, "--http-per-client", &cap],
    )
    .await;
    let base = server.base();
    let (client, cookie) = session(&base).await;
    let addr = server.http.expect("portal");
    let mut sockets = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        sockets.push(watch(addr, cookie.clone()).await);
    }

    let cpu_before = server.cpu_secs();
    let started = std::time::Instant::now();
    let guid = upload_file(&client, &base, &clip).await;

    let mut all = Vec::with_capacity(watchers);
    for socket in sockets {
        all.push(socket.await.expect("watcher"));
    }
    let wall = started.elapsed().as_secs_f64();
    let server_cpu_percent = (server.cpu_secs() - cpu_before) / wall * 100.0;
    let reported = server.progress.lock().expect("progress").clone();
    server.stop().await;

    // Every socket should have seen what the first one saw, in order, and
    // the end.
    let reference: Vec<(String, u64)> = all[0].iter().map(|(s, p, _)| (s.clone(), *p)).collect();
    let complete_sockets = all
        .iter()
        .filter(|seen| {
            seen.iter()
                .map(|(s, p, _)| (s.clone(), *p))
                .collect::<Vec<_>>()
                == reference
                && seen.last().is_some_and(|(s, _, _)| s == "COMPLETED")
        })
        .count();
    let latencies_ms = all
        .iter()
        .flat_map(|seen| percent_latencies(seen, &reported, &guid))
        .collect();
    Measured {
        latencies_ms,
        watchers,
        complete_sockets,
        messages: all.iter().map(Vec::len).sum(),
        server_cpu_percent,
        encode_secs: wall,
    }
}

fn summary(m: &Measured) -> (f64, f64, f64) {
    (
        percentile(&m.latencies_ms, 50.0),
        percentile(&m.latencies_ms, 95.0),
        m.latencies_ms.iter().copied().fold(0.0, f64::max),
    )
}

fn details(m: &Measured) -> serde_json::Value {
    let (p50, p95, max) = summary(m);
    serde_json::json!({
        "watchers": m.watchers, "samples": m.latencies_ms.len(), "p50_ms": p50,
        "p95_ms": p95, "max_ms": max, "sockets_with_every_update": m.complete_sockets,
        "messages": m.messages, "server_cpu_percent": m.server_cpu_percent,
        "encode_wall_s": m.encode_secs,
    })
}

pub async fn progress(clip_secs: u32, width: u32, height: u32) -> Row {
    let m = measure(1, clip_secs, width, height).await;
    let (p50, p95, max) = summary(&m);
    println!(
        "progress latency: {} percents, p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms",
        m.latencies_ms.len()
    );
    Row {
        measurement: "progress latency",
        result: format!(
            "p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms ({} percents)",
            m.latencies_ms.len()
        ),
        target: "p95 < 300 ms",
        met: Some(p95 < 300.0),
        details: details(&m),
    }
}

pub async fn fan_out(watchers: usize, clip_secs: u32, width: u32, height: u32) -> Row {
    let m = measure(watchers, clip_secs, width, height).await;
    let (p50, p95, max) = summary(&m);
    println!(
        "fan-out: {watchers} watchers, {} of them got every update, {} messages, p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms, server CPU {:.0} %",
        m.complete_sockets, m.messages, m.server_cpu_percent
    );
    Row {
        measurement: "WebSocket fan-out",
        result: format!(
            "{watchers} watchers: {}/{watchers} got every update ({} messages), p95 {p95:.0} ms; server CPU {:.0} % during the encode",
            m.complete_sockets, m.messages, m.server_cpu_percent
        ),
        target: "every update delivered, p95 < 300 ms",
        met: Some(m.complete_sockets == watchers && p95 < 300.0),
        details: details(&m),
    }
}
