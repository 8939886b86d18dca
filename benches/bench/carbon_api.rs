//! Carbon API: `JobStatusList` by GUID against an encoder whose store holds
//! `jobs` jobs, from `connections` clients at once for `secs` seconds, in
//! two runs: as fast as the clients can go (the most the server gives), and
//! paced at a fixed total rate (the latency at that load). Latency is
//! measured at the client up to the reply parsed, from when the request was
//! sent or, if a slow reply held the send up, from when it was due (so
//! waiting on the server is never forgiven). The same jobs are then served
//! from PostgreSQL (the farm's store) and measured beside SQLite.
//!
//! Why two runs: with 32 connections each waiting for its reply before the
//! next request, the mean latency is 32 / throughput (Little's law) —
//! 3.2 ms at 10,000 req/s — so a saturated run cannot show the latency a
//! client sees at a given load.

use std::time::{Duration, Instant};

use videoshare::carbon::client::ConnectionHabit;
use videoshare::carbon::{Client, Guid};

use crate::support::{Row, Server, percentile};

/// Rows written by one statement: well under both engines' limits on
/// bound values, and far fewer round trips than a row at a time.
const FILL_BATCH: usize = 500;

/// Writes `count` finished jobs (one destination each) into `db`.
pub async fn fill(db: &videoshare::store::Db, count: usize) -> Vec<Guid> {
    let guids: Vec<Guid> = (0..count)
        .map(|_| {
            format!("{{{}}}", uuid::Uuid::new_v4())
                .to_uppercase()
                .parse()
                .expect("guid")
        })
        .collect();
    let mut tx = db.pool().begin().await.expect("tx");
    for (batch, chunk) in guids.chunks(FILL_BATCH).enumerate() {
        let first = batch * FILL_BATCH;
        let mut jobs = sqlx::query(sqlx::AssertSqlSafe(batch_insert(
            "INSERT INTO jobs (guid, name, \"user\", status, progress, priority, source_path, \
             check_in_time, start_time, completed_time, queued_at) VALUES ",
            "($, $, 'bench', 'COMPLETED', 100, 100, $, $, $, $, $)",
            chunk.len(),
        )));
        let mut destinations = sqlx::query(sqlx::AssertSqlSafe(batch_insert(
            "INSERT INTO destinations (job_guid, idx, preset_guid, dest_dir, base_name, output_path) VALUES ",
            "($, 0, '{85DCCE70-0B4F-4328-86D1-5FC7756D9777}', '/srv/streams', $, $)",
            chunk.len(),
        )));
        for (i, guid) in chunk.iter().enumerate() {
            let n = first + i;
            let now = 1_700_000_000_000i64 + n as i64;
            jobs = jobs
                .bind(guid.to_string())
                .bind(format!("clip-{n}.mp4"))
                .bind(format!("/srv/uploaded/clip-{n}.mp4"))
                .bind(now)
                .bind(now + 1000)
                .bind(now + 60_000)
                .bind(now);
            destinations = destinations
                .bind(guid.to_string())
                .bind(format!("clip-{n}"))
                .bind(format!("/srv/streams/clip-{n}.mp4"));
        }
        jobs.execute(&mut *tx).await.expect("insert jobs");
        destinations
            .execute(&mut *tx)
            .await
            .expect("insert destinations");
    }
    tx.commit().await.expect("commit");
    guids
}

/// `head` then `rows` copies of `row`, each `$` numbered in turn (`$1`…).
fn batch_insert(head: &str, row: &str, rows: usize) -> String {
    let mut sql = String::from(head);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        for c in row.chars() {
            sql.push(c);
            if c == '$' {
                n += 1;
                sql.push_str(&n.to_string());
            }
        }
    }
    sql
}

/// A new data folder whose SQLite database holds `count` finished jobs.
async fn fill_sqlite(data: &std::path::Path, count: usize) -> Vec<Guid> {
    std::fs::create_dir_all(data).expect("data");
    let db = videoshare::store::open(&data.join("videoshare.db"))
        .await
        .expect("database");
    let guids = fill(&db, count).await;
    db.close().await;
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
/// for every request (as Carbon Coder's clients do), side by side; then
/// `--carbon` again with the same jobs on PostgreSQL (the farm's store),
/// beside the SQLite figure.
pub async fn run(jobs: usize, connections: usize, secs: f64, paced_rate: f64) -> Vec<Row> {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let data = work.path().join("data");
    let filling = Instant::now();
    let guids = std::sync::Arc::new(fill_sqlite(&data, jobs).await);
    eprintln!(
        "carbon: {jobs} jobs stored in SQLite in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    // A connection per request: closed ones still count while they close.
    let max_connections = (connections * 8).to_string();
    let server = Server::start(
        "encoder",
        &data,
        &["--carbon-max-connections", &max_connections],
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
    let postgres = on_postgres(&work.path().join("pg-data"), jobs, plan).await;
    let sqlite_row = Row {
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
    };
    let postgres_row = Row {
        measurement: "Carbon API on PostgreSQL",
        result: format!(
            "PostgreSQL at {:.0} req/s: p50 {:.2} ms, p99 {:.2} ms; flat out {:.0} req/s (p99 {:.2} ms, server CPU {:.0} %). \
             SQLite (same run) at {:.0} req/s: p99 {:.2} ms; flat out {:.0} req/s; `--carbon`, {jobs} jobs, {connections} clients",
            postgres.achieved,
            postgres.p50,
            postgres.p99,
            postgres.most,
            postgres.sat_p99,
            postgres.server_cpu,
            kept.achieved,
            kept.p99,
            kept.most,
        ),
        target: "(beside SQLite; server CPU is videoshare's, not PostgreSQL's)",
        met: None,
        details: serde_json::json!({
            "jobs": jobs, "connections": connections, "seconds": secs,
            "postgres": figures_json(&postgres, paced_rate),
            "sqlite": figures_json(&kept, paced_rate),
        }),
    };
    vec![sqlite_row, postgres_row]
}

/// `--carbon` with the same load on an encoder whose store is a fresh
/// PostgreSQL database holding `jobs` jobs.
async fn on_postgres(data: &std::path::Path, jobs: usize, plan: (usize, f64, f64)) -> Figures {
    let test_db = videoshare::store::testing::TestDb::postgres().await;
    let filling = Instant::now();
    let guids = std::sync::Arc::new(fill(&test_db.db(), jobs).await);
    eprintln!(
        "carbon: {jobs} jobs stored in PostgreSQL in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    // Statistics for the planner, as autovacuum would gather soon after.
    sqlx::query("ANALYZE")
        .execute(test_db.db().pool())
        .await
        .expect("analyze");
    let url = test_db.url();
    let server = Server::start("encoder", data, &["--database", &url]).await;
    let figures = measure(
        &server,
        server.carbon,
        ConnectionHabit::KeepOpen,
        "on PostgreSQL --carbon (kept connections)",
        &guids,
        plan,
    )
    .await;
    server.stop().await;
    figures
}
