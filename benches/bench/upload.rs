//! Upload throughput: one large file sent as a multipart `POST /upload` over
//! loopback to a `videoshare serve` process, against `cp` of the same file,
//! alternating; and how far the server's resident memory grows meanwhile
//! (the upload must stream to disk, never sit in memory).

use std::path::Path;
use std::time::Instant;

use videoshare::carbon::Client;

use crate::support::{Row, Server, median, session, upload_file};

/// Writes a raw-video NUT file of at least `bytes` (a real video, so the
/// upload is accepted; raw frames, so it is made quickly).
fn make_input(path: &Path, bytes: u64) {
    let (width, height) = if bytes > 64 << 20 {
        (1280, 720)
    } else {
        (320, 240)
    };
    let frame = width * height * 3 / 2;
    let frames = bytes.div_ceil(frame);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=30"))
        .args([
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "nut",
        ])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made the upload input");
}

async fn upload(client: &reqwest::Client, base: &str, path: &Path) -> (f64, String) {
    let started = Instant::now();
    let guid = upload_file(client, base, path).await;
    (started.elapsed().as_secs_f64(), guid)
}

pub async fn run(bytes: u64, runs: usize) -> Row {
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let input = work.path().join("input.nut");
    eprintln!("upload: writing a {} MiB input…", bytes >> 20);
    make_input(&input, bytes);
    let size = std::fs::metadata(&input).expect("input").len();
    let data = work.path().join("data");
    let server = Server::start("serve", &data, &["--max-upload", "64GiB"]).await;
    let base = server.base();
    let (client, _) = session(&base).await;
    let carbon = Client::new(server.carbon.to_string());
    let baseline_kib = server.memory_kib("VmRSS");
    server.reset_peak();

    let (mut cp_secs, mut up_secs) = (Vec::new(), Vec::new());
    let copy = work.path().join("copy.nut");
    println!("{:>4}  {:>10}  {:>14}", "run", "cp (MB/s)", "upload (MB/s)");
    for run in 0..runs {
        let time_cp = || {
            let started = Instant::now();
            std::fs::copy(&input, &copy).expect("cp");
            let took = started.elapsed().as_secs_f64();
            std::fs::remove_file(&copy).expect("rm copy");
            took
        };
        let (c, u) = if run % 2 == 0 {
            let c = time_cp();
            (c, upload(&client, &base, &input).await)
        } else {
            let u = upload(&client, &base, &input).await;
            (time_cp(), u)
        };
        // Not measured: the encode the upload started, and its input.
        let guid = u.1.parse().expect("guid");
        carbon.remove(guid).await.expect("remove the job");
        for entry in std::fs::read_dir(data.join("uploaded"))
            .expect("uploaded")
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
        let mb = size as f64 / 1e6;
        println!("{:>4}  {:>10.0}  {:>14.0}", run + 1, mb / c, mb / u.0);
        cp_secs.push(c);
        up_secs.push(u.0);
    }
    let peak_kib = server.memory_kib("VmHWM");
    let growth_mib = peak_kib.saturating_sub(baseline_kib) as f64 / 1024.0;
    server.stop().await;
    let mb = size as f64 / 1e6;
    let (cp_rate, up_rate) = (mb / median(&cp_secs), mb / median(&up_secs));
    let ratio = up_rate / cp_rate;
    println!(
        "upload: {:.2} GiB, cp {cp_rate:.0} MB/s, upload {up_rate:.0} MB/s, ratio {ratio:.2}; server RSS grew {growth_mib:.1} MiB",
        size as f64 / (1u64 << 30) as f64
    );
    Row {
        measurement: "upload",
        result: format!(
            "{:.2} GiB: upload {up_rate:.0} MB/s vs cp {cp_rate:.0} MB/s = {ratio:.2}×; server RSS +{growth_mib:.1} MiB",
            size as f64 / (1u64 << 30) as f64
        ),
        target: "≥ 0.8 × cp; RSS grows < 64 MiB",
        met: Some(ratio >= 0.8 && growth_mib < 64.0),
        details: serde_json::json!({
            "bytes": size, "cp_seconds": cp_secs, "upload_seconds": up_secs,
            "cp_mb_s": cp_rate, "upload_mb_s": up_rate, "ratio": ratio,
            "rss_baseline_kib": baseline_kib, "rss_peak_kib": peak_kib, "rss_growth_mib": growth_mib,
        }),
    }
}
