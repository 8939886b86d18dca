//! Carbon API: `JobStatusList` by GUID against an encoder whose store holds
//! `jobs` jobs, from `connections` clients at once for `secs` seconds.
//! Latency is measured at the client, request written → reply parsed.

use std::time::{Duration, Instant};

use videoshare::carbon::{Client, Guid};

use crate::support::{Row, Server, percentile};

/// Fills a new data folder's database with `count` finished jobs.
async fn fill(data: &std::path::Path, count: usize) -> Vec<Guid> {
    std::fs::create_dir_all(data).expect("data");
    let pool = videoshare::store::open(&data.join("videoshare.db"))
        .await
        .expect("database");
    let mut guids = Vec::with_capacity(count);
    let mut tx = pool.begin().await.expect("tx");
    for n in 0..count {
        let guid: Guid = format!("{{{}}}", uuid::Uuid::new_v4())
            .to_uppercase()
            .parse()
            .expect("guid");
        let now = 1_700_000_000_000i64 + n as i64;
        sqlx::query(
            "INSERT INTO jobs (guid, name, user, status, progress, priority, source_path, \
             check_in_time, start_time, completed_time, queued_at) \
             VALUES (?, ?, 'bench', 'COMPLETED', 100, 100, ?, ?, ?, ?, ?)",
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
             VALUES (?, 0, '{85DCCE70-0B4F-4328-86D1-5FC7756D9777}', '/srv/streams', ?, ?)",
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

pub async fn run(jobs: usize, connections: usize, secs: f64) -> Row {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let data = work.path().join("data");
    let filling = Instant::now();
    let guids = std::sync::Arc::new(fill(&data, jobs).await);
    eprintln!("carbon: {jobs} jobs stored in {:.1} s", filling.elapsed().as_secs_f64());
    let server = Server::start(
        "encoder",
        &data,
        &["--carbon-max-connections", &(connections + 8).to_string()],
    )
    .await;
    let addr = server.carbon.to_string();

    // Warm up every connection, then measure.
    let clients: Vec<Client> = (0..connections).map(|_| Client::new(addr.clone())).collect();
    for client in &clients {
        client.statuses(&guids[..1]).await.expect("warm up");
    }
    let cpu_before = server.cpu_secs();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let guids = guids.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut pick = i.wrapping_mul(7919) + 1;
            while Instant::now() < deadline {
                pick = pick.wrapping_mul(1_103_515_245).wrapping_add(12_345) % guids.len();
                let guid = guids[pick];
                let sent = Instant::now();
                let reply = client.statuses(&[guid]).await.expect("status");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                assert!(reply[0].1.as_ref().is_some_and(|e| e.guid == guid), "the right job");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = (server.cpu_secs() - cpu_before) / wall * 100.0;
    let rate = latencies.len() as f64 / wall;
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    println!(
        "carbon: {} requests in {wall:.1} s over {connections} connections: {rate:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, server CPU {server_cpu:.0} %",
        latencies.len()
    );
    server.stop().await;
    Row {
        measurement: "Carbon API",
        result: format!(
            "{rate:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms ({jobs} jobs, {connections} connections; server CPU {server_cpu:.0} %)"
        ),
        target: "p99 < 2 ms, ≥ 10,000 req/s",
        met: Some(p99 < 2.0 && rate >= 10_000.0),
        details: serde_json::json!({
            "jobs": jobs, "connections": connections, "seconds": wall,
            "requests": latencies.len(), "per_second": rate, "p50_ms": p50,
            "p99_ms": p99, "server_cpu_percent": server_cpu,
        }),
    }
}
