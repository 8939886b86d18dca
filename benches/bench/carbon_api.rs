//! Carbon API: `JobStatusList` by GUID against an encoder whose store holds
//! `jobs` jobs, from `connections` clients at once for `secs` seconds, in
//! two runs: as fast as the clients can go (the most the server gives), and
//! paced at a fixed total rate (the latency at that load). Latency is
//! measured at the client up to the reply parsed, from when the request was
//! sent or, if a slow reply held the send up, from when it was due (so
//! waiting on the server is never forgiven).
//!
//! Why two runs: with 32 connections each waiting for its reply before the
//! next request, the mean latency is 32 / throughput (Little's law) —
//! 3.2 ms at 10,000 req/s — so a saturated run cannot show the latency a
//! client sees at a given load.

use std::time::{Duration, Instant};

use videoshare::carbon::client::ConnectionHabit;
use videoshare::carbon::{Client, Guid};

use crate::support::{Row, Server, percentile};

/// Fills a new data folder's database with `count` finished jobs.
async fn fill(data: &std::path::Path, count: usize) -> Vec<Guid> {
    std::fs::create_dir_all(data).expect("data");
    let pool = videoshare::store::open(&data.join("videoshare.db"))
        .await
        .expect("database");
    let mut guids = Vec::with_capacity(count);
    let mut tx = pool.pool().begin().await.expect("tx");
    for n in 0..count {
        let guid: Guid = format!("{{{}}}", uuid::Uuid::new_v4())
            .to_uppercase()
            .parse()
            .expect("guid");
        let now = 1_700_000_000_000i64 + n as i64;
        sqlx::query(
            "INSERT INTO jobs (guid, name, \"user\", status, progress, priority, source_path, \
             check_in_time, start_time, completed_time, queued_at) \
             VALUES ($1, $2, 'bench', 'COMPLETED', 100, 100, $3, $4, $5, $6, $7)",
        )
        .bind(guid.to_string())
        .bind(format!("clip-{n}.mp4"))
        .bind(format!("/srv/uploaded/clip-{n}.mp4"))
        .bind(now)
        .bind(now + 1000)
        .bind(now + 60_000)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("insert job");
        sqlx::query(
            "INSERT INTO destinations (job_guid, idx, preset_guid, dest_dir, base_name, output_path) \
             VALUES ($1, 0, '{85DCCE70-0B4F-4328-86D1-5FC7756D9777}', '/srv/streams', $2, $3)",
        )
        .bind(guid.to_string())
        .bind(format!("clip-{n}"))
        .bind(format!("/srv/streams/clip-{n}.mp4"))
        .execute(&mut *tx)
        .await
        .expect("insert destination");
        guids.push(guid);
    }
    tx.commit().await.expect("commit");
    pool.close().await;
    guids
}

/// Sends requests for `secs` over `clients`; `rate` (total per second)
/// paces them, `None` goes flat out. Returns the latencies in ms.
async fn load(
    clients: &[std::sync::Arc<Client>],
    guids: &std::sync::Arc<Vec<Guid>>,
    secs: f64,
    rate: Option<f64>,
) -> Vec<f64> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let interval = rate.map(|r| Duration::from_secs_f64(clients.len() as f64 / r));
    let mut tasks = Vec::new();
    let clients_len = clients.len();
    for (i, client) in clients.iter().cloned().enumerate() {
        let guids = guids.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut pick = i.wrapping_mul(7919) + 1;
            // Paced connections are spread over one interval.
            let spread = interval.map(|d| d.mul_f64(i as f64 / clients_len as f64));
            let mut next = started + spread.unwrap_or_default();
            let mut last_reply = started;
            loop {
                let due = match interval {
                    Some(every) => {
                        tokio::time::sleep_until(next.into()).await;
                        next += every;
                        let due = next - every;
                        // A send held up by a slow reply counts from when it
                        // was due; the timer's own lateness (1 ms ticks) does not.
                        if last_reply > due {
                            due
                        } else {
                            Instant::now()
                        }
                    }
                    None => Instant::now(),
                };
                if due >= deadline {
                    break;
                }
                pick = pick.wrapping_mul(1_103_515_245).wrapping_add(12_345) % guids.len();
                let guid = guids[pick];
                let reply = client.statuses(&[guid]).await.expect("status");
                last_reply = Instant::now();
                latencies.push((last_reply - due).as_secs_f64() * 1000.0);
                assert!(
                    reply[0].1.as_ref().is_some_and(|e| e.guid == guid),
                    "the right job"
                );
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    latencies
}

/// What one listener gave: flat out and paced.
struct Figures {
    most: f64,
    sat_p50: f64,
    sat_p99: f64,
    server_cpu: f64,
    achieved: f64,
    p50: f64,
    p99: f64,
    requests: (usize, usize),
}

/// Both runs against one listener, each client with `habit`.
async fn measure(
    server: &Server,
    addr: std::net::SocketAddr,
    habit: ConnectionHabit,
    label: &str,
    guids: &std::sync::Arc<Vec<Guid>>,
    (connections, secs, paced_rate): (usize, f64, f64),
) -> Figures {
    let clients: Vec<std::sync::Arc<Client>> = (0..connections)
        .map(|_| std::sync::Arc::new(Client::with_habit(addr.to_string(), habit)))
        .collect();
    for client in &clients {
        client.statuses(&guids[..1]).await.expect("warm up");
    }
    let cpu_before = server.cpu_secs();
    let started = Instant::now();
    let flat_out = load(&clients, guids, secs, None).await;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = (server.cpu_secs() - cpu_before) / wall * 100.0;
    let most = flat_out.len() as f64 / wall;
    let (sat_p50, sat_p99) = (percentile(&flat_out, 50.0), percentile(&flat_out, 99.0));
    println!(
        "carbon {label} flat out: {} requests in {wall:.1} s over {connections} clients: {most:.0} req/s, p50 {sat_p50:.2} ms, p99 {sat_p99:.2} ms, server CPU {server_cpu:.0} %",
        flat_out.len()
    );
    let started = Instant::now();
    let paced = load(&clients, guids, secs, Some(paced_rate)).await;
    let achieved = paced.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = (percentile(&paced, 50.0), percentile(&paced, 99.0));
    println!(
        "carbon {label} paced at {paced_rate:.0} req/s: achieved {achieved:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    Figures {
        most,
        sat_p50,
        sat_p99,
        server_cpu,
        achieved,
        p50,
        p99,
        requests: (flat_out.len(), paced.len()),
    }
}

fn figures_json(f: &Figures, paced_rate: f64) -> serde_json::Value {
    serde_json::json!({
        "flat_out": {"requests": f.requests.0, "per_second": f.most, "p50_ms": f.sat_p50, "p99_ms": f.sat_p99, "server_cpu_percent": f.server_cpu},
        "paced": {"offered_per_second": paced_rate, "achieved_per_second": f.achieved, "requests": f.requests.1, "p50_ms": f.p50, "p99_ms": f.p99},
    })
}

/// `JobStatusList` by GUID on both listeners: `--carbon` over kept
/// connections (pipelined clients), `--carbon-coder` with a new connection
/// for every request (as Carbon Coder's clients do), side by side.
pub async fn run(jobs: usize, connections: usize, secs: f64, paced_rate: f64) -> Row {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let data = work.path().join("data");
    let filling = Instant::now();
    let guids = std::sync::Arc::new(fill(&data, jobs).await);
    eprintln!(
        "carbon: {jobs} jobs stored in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let server = Server::start(
        "encoder",
        &data,
        // A connection per request: closed ones still count while they close.
        &["--carbon-max-connections", &(connections * 8).to_string()],
    )
    .await;
    let plan = (connections, secs, paced_rate);
    let kept = measure(
        &server,
        server.carbon,
        ConnectionHabit::KeepOpen,
        "--carbon (kept connections)",
        &guids,
        plan,
    )
    .await;
    let coder = measure(
        &server,
        server.carbon_coder,
        ConnectionHabit::OnePerRequest,
        "--carbon-coder (a connection per request)",
        &guids,
        plan,
    )
    .await;
    server.stop().await;
    Row {
        measurement: "Carbon API",
        result: format!(
            "--carbon at {:.0} req/s: p50 {:.2} ms, p99 {:.2} ms; flat out {:.0} req/s (p99 {:.2} ms, server CPU {:.0} %). \
             --carbon-coder (connect per request) at {:.0} req/s: p50 {:.2} ms, p99 {:.2} ms; flat out {:.0} req/s (p99 {:.2} ms, server CPU {:.0} %); {jobs} jobs, {connections} clients",
            kept.achieved,
            kept.p50,
            kept.p99,
            kept.most,
            kept.sat_p99,
            kept.server_cpu,
            coder.achieved,
            coder.p50,
            coder.p99,
            coder.most,
            coder.sat_p99,
            coder.server_cpu,
        ),
        target: "--carbon: p99 < 2 ms, ≥ 10,000 req/s",
        met: Some(kept.p99 < 2.0 && kept.most >= 10_000.0 && kept.achieved >= 0.98 * paced_rate),
        details: serde_json::json!({
            "jobs": jobs, "connections": connections, "seconds": secs,
            "carbon": figures_json(&kept, paced_rate),
            "carbon_coder": figures_json(&coder, paced_rate),
        }),
    }
}
