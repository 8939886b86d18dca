//! videoshare's benchmarks: each measurement side by side in one run, as
//! ratios and percentiles, never as pass/fail timings.
//!
//! `make bench` (`cargo bench --bench bench`) runs the full set with the
//! sizes of docs/benchmarks.md; `cargo test --bench bench` (part of
//! `make test`) runs a tiny smoke version that only proves the harness
//! works. `BENCH_ONLY=carbon,upload` picks measurements (`pipeline`,
//! `progress`, `upload`, `carbon`, `fanout`, `cold`, `abuse`, `hls`,
//! `playable`, `farm`, `chunks`). `carbon`, `farm` and `chunks` need the test PostgreSQL
//! (`scripts/ensure-postgres.sh`; the Makefile passes its URL). The table is printed
//! and written, with every figure, to `target/bench/results.json`.

mod abuse;
#[path = "../../tests/common/attacker.rs"]
mod attacker;
#[path = "../../tests/common/browser.rs"]
mod browser_kit;
mod carbon_api;
mod chunks;
mod cold_start;
mod farm;
mod first_playable;
mod hls;
mod latency;
mod pipeline;
mod support;
mod upload;

use support::Row;

/// Sizes for one run of the harness.
struct Plan {
    pipeline: (usize, u32, u32, u32),
    progress_clip: (u32, u32, u32),
    upload: (u64, usize),
    carbon: (usize, usize, f64, f64),
    fanout: usize,
    cold_runs: usize,
    abuse: ((u32, u32, u32), attacker::AttackSize),
    /// Runs, seconds, width, height of the HLS ladder comparison.
    hls: (usize, u32, u32, u32),
    playable: (u32, u32, u32),
    farm: farm::FarmPlan,
    chunks: chunks::ChunkPlan,
}

const FULL: Plan = Plan {
    pipeline: (7, 60, 1280, 720),
    progress_clip: (60, 640, 480),
    upload: (2 << 30, 3),
    carbon: (100_000, 32, 10.0, 10_000.0),
    fanout: 1000,
    cold_runs: 5,
    abuse: ((20, 640, 480), attacker::AttackSize::FULL),
    hls: (2, 60, 1920, 1080),
    playable: (60, 1920, 1080),
    farm: farm::FarmPlan {
        jobs: 24,
        clip: (4, 640, 360),
        latency_jobs: 30,
        kills: 5,
        kill_clip: (10, 640, 360),
    },
    // 300 s, not 600 s: five encodes of it at one thread fit in ~10 min.
    chunks: chunks::ChunkPlan {
        source: (300, 1280, 720),
        chunk_secs: 30,
        threshold_secs: 120,
        preset: (chunks::H264_720P, "H.264 720p"),
    },
};

const SMOKE: Plan = Plan {
    pipeline: (1, 1, 160, 120),
    progress_clip: (2, 160, 120),
    upload: (4 << 20, 1),
    carbon: (500, 4, 0.5, 200.0),
    fanout: 5,
    cold_runs: 1,
    abuse: (
        (2, 160, 120),
        attacker::AttackSize {
            slow_headers: 5,
            slow_bodies: 5,
            websocket_attempts: 20,
            sign_ins: 20,
            junk_uploads: 3,
        },
    ),
    hls: (1, 2, 320, 240),
    playable: (2, 320, 240),
    farm: farm::FarmPlan {
        jobs: 3,
        clip: (1, 160, 120),
        latency_jobs: 3,
        kills: 1,
        kill_clip: (3, 320, 240),
    },
    // 360p, not 720p: the five encodes fit in well under a minute.
    chunks: chunks::ChunkPlan {
        source: (30, 320, 240),
        chunk_secs: 10,
        threshold_secs: 20,
        preset: (farm::H264_360P, "H.264 360p"),
    },
};

fn wanted(name: &str) -> bool {
    match std::env::var("BENCH_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|n| n.trim() == name),
        _ => true,
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full { FULL } else { SMOKE };
    println!(
        "videoshare benchmarks ({})",
        if full { "full" } else { "smoke" }
    );
    let mut rows: Vec<Row> = Vec::new();
    if wanted("cold") {
        rows.push(cold_start::run(plan.cold_runs).await);
    }
    if wanted("carbon") {
        let (jobs, connections, secs, rate) = plan.carbon;
        rows.extend(carbon_api::run(jobs, connections, secs, rate).await);
    }
    if wanted("progress") {
        let (secs, w, h) = plan.progress_clip;
        rows.push(latency::progress(secs, w, h).await);
    }
    if wanted("fanout") {
        let (secs, w, h) = plan.progress_clip;
        rows.push(latency::fan_out(plan.fanout, secs, w, h).await);
    }
    if wanted("upload") {
        let (bytes, runs) = plan.upload;
        rows.push(upload::run(bytes, runs).await);
    }
    if wanted("abuse") {
        let ((secs, w, h), size) = plan.abuse;
        rows.push(abuse::run(secs, w, h, size).await);
    }
    if wanted("pipeline") {
        let (runs, secs, w, h) = plan.pipeline;
        rows.push(pipeline::run(runs, secs, w, h).await);
    }
    if wanted("playable") {
        let (secs, w, h) = plan.playable;
        rows.push(first_playable::run(secs, w, h).await);
    }
    if wanted("hls") {
        let (runs, secs, w, h) = plan.hls;
        for camera_like in [false, true] {
            rows.push(hls::run(runs, secs, w, h, camera_like).await);
        }
    }
    if wanted("farm") {
        rows.extend(farm::run(plan.farm).await);
    }
    if wanted("chunks") {
        rows.extend(chunks::run(plan.chunks).await);
    }

    println!();
    println!("| measurement | result | target | met |");
    println!("|---|---|---|---|");
    for row in &rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        };
        println!(
            "| {} | {} | {} | {met} |",
            row.measurement, row.result, row.target
        );
    }
    let json = serde_json::json!({
        "mode": if full { "full" } else { "smoke" },
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "results": rows.iter().map(|r| serde_json::json!({
            "measurement": r.measurement, "result": r.result, "target": r.target,
            "met": r.met, "details": r.details,
        })).collect::<Vec<_>>(),
    });
    let path = support::bench_dir().join(if full { "results.json" } else { "smoke.json" });
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json"))
        .expect("write results");
    println!("\nwritten to {}", path.display());
}
