//! Cold start: `videoshare serve` spawned → first 200 on `/healthz` (the
//! encoder answers, the database takes a write, the disk has room). Fresh
//! data folder (database created, migrations run) and an existing one.

use std::time::{Duration, Instant};

use crate::support::{BIN, Row, median};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Milliseconds from spawn to the first 200 on `/healthz`.
async fn once(data: &std::path::Path) -> f64 {
    let (http, carbon) = (free_port(), free_port());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{http}/healthz");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--carbon", &format!("127.0.0.1:{carbon}")])
        .args(["--carbon-coder", "127.0.0.1:0"])
        .env("RUST_LOG", "videoshare=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    let took = loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == 200
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no 200 on /healthz"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap_or(0).to_string()])
        .status();
    let _ = child.wait().await;
    took.as_secs_f64() * 1000.0
}

pub async fn run(runs: usize) -> Row {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    // Not counted: the very first start after a build reads the binary
    // from disk.
    let first_ever = once(&work.path().join("warm-up")).await;
    let mut fresh = Vec::new();
    let mut warm = Vec::new();
    for run in 0..runs {
        let data = work.path().join(format!("data-{run}"));
        fresh.push(once(&data).await);
        warm.push(once(&data).await);
    }
    let (fresh_med, warm_med) = (median(&fresh), median(&warm));
    let worst = fresh.iter().chain(&warm).copied().fold(0.0, f64::max);
    println!(
        "cold start (ms): fresh data folder {fresh:.1?}, existing {warm:.1?} (first start after the build, not counted: {first_ever:.1})"
    );
    Row {
        measurement: "cold start",
        result: format!(
            "median {fresh_med:.0} ms fresh, {warm_med:.0} ms existing data; worst {worst:.0} ms"
        ),
        target: "< 200 ms",
        met: Some(worst < 200.0),
        details: serde_json::json!({"fresh_ms": fresh, "existing_ms": warm, "uncounted_first_ms": first_ever}),
    }
}
