//! Pipeline overhead: one generated clip through videoshare end to end
//! (Carbon `JobQueue` submit → `COMPLETED` seen over Carbon) against plain
//! ffmpeg run with the identical argument list, alternating, several runs,
//! in one process on one machine. Prints a table and writes JSON under
//! `target/bench/`.
//!
//! `cargo bench --bench pipeline` (or `make bench`). Environment:
//! `BENCH_RUNS` (default 3), `BENCH_SECONDS` (default 60),
//! `BENCH_SIZE` (default 1280x720).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use videoshare::app::App;
use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, JobStatus};
use videoshare::config::ServeArgs;
use videoshare::encoder::ffmpeg::encode_args;
use videoshare::encoder::preset::{Presets, SEED_PRESET};
use videoshare::media::synthetic::{ClipSpec, write_clip};

/// How often the benchmark asks for the job's status (the portal's default).
const POLL: Duration = Duration::from_millis(250);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn plain_ffmpeg(source: &Path, output: &Path) -> Duration {
    let presets = Presets::builtin();
    let preset = presets.get(SEED_PRESET).expect("seed preset");
    let started = Instant::now();
    let status = Command::new("ffmpeg")
        .args(encode_args(source, &[(output, preset)]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "plain ffmpeg failed");
    started.elapsed()
}

/// Wall time of one job through videoshare and the CPU time videoshare
/// itself (not ffmpeg) used meanwhile.
async fn through_videoshare(client: &Client, source: &Path, streams: &Path) -> (Duration, f64) {
    let cpu_before = own_cpu_seconds();
    let job = JobQueue::single(
        &source.to_string_lossy(),
        SEED_PRESET,
        &streams.to_string_lossy(),
    );
    let started = Instant::now();
    let guid = client.queue(job).await.expect("job accepted");
    loop {
        let statuses = client.statuses(&[guid]).await.expect("status");
        let status = statuses[0].1.as_ref().map(|e| e.status);
        match status {
            Some(JobStatus::Completed) => {
                return (started.elapsed(), own_cpu_seconds() - cpu_before);
            }
            Some(s) if s.is_terminal() => panic!("job ended as {s}"),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// CPU seconds this process (not its children) has used so far, from
/// /proc/self/stat (Linux; clock ticks at the usual 100 Hz).
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = env_or("BENCH_RUNS", 3);
    let seconds: u32 = env_or("BENCH_SECONDS", 60);
    let size: String = env_or("BENCH_SIZE", "1280x720".to_owned());
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .expect("BENCH_SIZE is WIDTHxHEIGHT");

    let work = tempfile::tempdir().expect("tempdir");
    let app = App::build(&ServeArgs::ephemeral(work.path().join("data")))
        .await
        .expect("videoshare starts");
    let uploaded = app.dirs().uploaded.clone();
    let streams = app.dirs().streams.clone();
    let source = uploaded.join("bench.mp4");
    eprintln!("generating a {seconds} s {size} clip…");
    let spec = ClipSpec {
        frame_rate: 30,
        ..ClipSpec::new(seconds, width, height)
    };
    write_clip(&source, spec).expect("ffmpeg generates the clip");
    let client = Client::new(
        app.carbon_addr()
            .expect("serve runs the encoder")
            .to_string(),
    );
    let plain_out: PathBuf = work.path().join("plain.mp4");

    println!(
        "pipeline overhead: {seconds} s {size} testsrc2 + sine → seed preset (H.264 800k 720x480, AAC, MP4)"
    );
    println!(
        "{:>4}  {:>12}  {:>14}  {:>7}  {:>22}",
        "run", "ffmpeg (s)", "videoshare (s)", "ratio", "videoshare own CPU (s)"
    );
    let mut rows = Vec::new();
    for run in 1..=runs {
        // Alternate which goes first, so drift in machine load hits both.
        let (plain, (ours, own_cpu)) = if run % 2 == 1 {
            let p = plain_ffmpeg(&source, &plain_out);
            (p, through_videoshare(&client, &source, &streams).await)
        } else {
            let o = through_videoshare(&client, &source, &streams).await;
            (plain_ffmpeg(&source, &plain_out), o)
        };
        let ratio = ours.as_secs_f64() / plain.as_secs_f64();
        println!(
            "{run:>4}  {:>12.3}  {:>14.3}  {ratio:>7.3}  {own_cpu:>22.2}",
            plain.as_secs_f64(),
            ours.as_secs_f64()
        );
        rows.push((plain.as_secs_f64(), ours.as_secs_f64(), ratio, own_cpu));
        // Keep the streams folder from growing name suffixes between runs.
        for entry in std::fs::read_dir(&streams).expect("streams").flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let median_ratio = median(rows.iter().map(|r| r.2).collect());
    println!("median ratio videoshare / ffmpeg: {median_ratio:.3} (target ≤ 1.03)");

    let json = serde_json::json!({
        "measurement": "pipeline overhead",
        "clip": { "seconds": seconds, "size": size },
        "runs": rows
            .iter()
            .map(|(p, o, r, c)| serde_json::json!({"ffmpeg_s": p, "videoshare_s": o, "ratio": r, "videoshare_own_cpu_s": c}))
            .collect::<Vec<_>>(),
        "median_ratio": median_ratio,
    });
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench");
    std::fs::create_dir_all(&out_dir).expect("bench dir");
    std::fs::write(
        out_dir.join("pipeline.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write");
    app.stop().await;
}
