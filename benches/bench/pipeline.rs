//! Pipeline overhead: one generated clip through videoshare end to end
//! (Carbon `JobQueue` submit → `COMPLETED` seen over Carbon) against plain
//! ffmpeg run with the identical argument list, alternating, several runs,
//! in one process on one machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use videoshare::app::App;
use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, JobStatus};
use videoshare::config::ServeArgs;
use videoshare::encoder::ffmpeg::{Audio, Inputs, encode_args};
use videoshare::encoder::preset::{Presets, SEED_PRESET};
use videoshare::media::synthetic::{ClipSpec, write_clip};

use crate::support::{Row, cpu_secs, median};

/// How often the benchmark asks for the job's status: a client that
/// watches closely (Carbon has no push; the portal polls every 250 ms).
/// Completion is seen on average half of this late.
const POLL: Duration = Duration::from_millis(50);

fn plain_ffmpeg(source: &Path, output: &Path) -> Duration {
    let presets = Presets::builtin();
    let preset = presets.get(SEED_PRESET).expect("seed preset");
    let started = Instant::now();
    let args = encode_args(
        &Inputs {
            source,
            audio: Audio::Source,
            trim: None,
            picture: None,
        },
        &[(output, preset)],
    );
    let status = Command::new("ffmpeg")
        .args(args.as_slice())
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
    let cpu_before = cpu_secs(std::process::id());
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
                return (started.elapsed(), cpu_secs(std::process::id()) - cpu_before);
            }
            Some(s) if s.is_terminal() => panic!("job ended as {s}"),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

pub async fn run(runs: usize, seconds: u32, width: u32, height: u32) -> Row {
    let size = format!("{width}x{height}");
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
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
    let median_ratio = median(&rows.iter().map(|r| r.2).collect::<Vec<_>>());
    let total_ratio = rows.iter().map(|r| r.1).sum::<f64>() / rows.iter().map(|r| r.0).sum::<f64>();
    let (low, high) = rows.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
        (lo.min(r.2), hi.max(r.2))
    });
    println!(
        "median ratio videoshare / ffmpeg: {median_ratio:.3} (target ≤ 1.03); ratio of the totals {total_ratio:.3}; runs from {low:.3} to {high:.3}"
    );
    app.stop().await;
    Row {
        measurement: "pipeline overhead",
        result: format!(
            "median wall-time ratio {median_ratio:.3} over {runs} runs (totals {total_ratio:.3}; runs {low:.2}–{high:.2}; {seconds} s {size} clip)"
        ),
        target: "≤ 1.03",
        met: Some(median_ratio <= 1.03),
        details: serde_json::json!({
            "clip": { "seconds": seconds, "size": size },
            "runs": rows
                .iter()
                .map(|(p, o, r, c)| serde_json::json!({"ffmpeg_s": p, "videoshare_s": o, "ratio": r, "videoshare_own_cpu_s": c}))
                .collect::<Vec<_>>(),
            "median_ratio": median_ratio,
            "total_ratio": total_ratio,
        }),
    }
}
