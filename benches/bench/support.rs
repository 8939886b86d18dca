//! What every measurement shares: a `videoshare serve` (or `encoder`) child
//! process on free ports whose log is read for its addresses and for the
//! encoder's progress events, `/proc` readings of its memory and CPU,
//! percentiles, and the results table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_videoshare");

/// When ffmpeg reported each percent of each job: (GUID text, percent) →
/// unix microseconds, from the server's `videoshare::progress` log events.
pub type ProgressTimes = Arc<Mutex<HashMap<(String, u64), u128>>>;

/// A videoshare process under measurement.
pub struct Server {
    pub child: Child,
    pub pid: u32,
    pub http: Option<SocketAddr>,
    pub carbon: SocketAddr,
    /// The one-request-per-connection listener.
    pub carbon_coder: SocketAddr,
    pub progress: ProgressTimes,
}

pub fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// The value of the last `key=` field on a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.rfind(&format!(" {key}="))? + key.len() + 2;
    line[start..].split_whitespace().next()
}

impl Server {
    /// Starts `videoshare ROLE --data DATA --carbon 127.0.0.1:0 [--http
    /// 127.0.0.1:0] EXTRA…` and waits for its addresses.
    pub async fn start(role: &str, data: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command.arg(role).arg("--data").arg(data).args([
            "--carbon",
            "127.0.0.1:0",
            "--carbon-coder",
            "127.0.0.1:0",
        ]);
        if role == "serve" {
            command.args(["--http", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .env(
                "RUST_LOG",
                "videoshare=warn,videoshare::app=info,videoshare::progress=debug",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start videoshare");
        let pid = child.id().expect("pid");
        let progress: ProgressTimes = Arc::default();
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (mut http, mut carbon, mut carbon_coder) = (None, None, None);
        let wants_http = role == "serve";
        while carbon.is_none() || carbon_coder.is_none() || (wants_http && http.is_none()) {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("videoshare starts within a minute")
                .expect("read log")
                .expect("videoshare exited while starting");
            if let Some((_, addr)) = line.split_once("Carbon encoder listening on ") {
                carbon = addr.trim().parse().ok();
            }
            if let Some((_, addr)) = line.split_once("(one request per connection) on ") {
                carbon_coder = addr.trim().parse().ok();
            }
            if let Some((_, addr)) = line.split_once("portal listening on http://") {
                http = addr.trim().parse().ok();
            }
        }
        let times = progress.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.contains("ffmpeg progress") {
                    continue;
                }
                let parsed = (|| {
                    let guid = field(&line, "guid")?.to_owned();
                    let percent = field(&line, "percent")?.parse().ok()?;
                    let at = field(&line, "at_us")?.parse().ok()?;
                    Some(((guid, percent), at))
                })();
                if let Some((key, at)) = parsed
                    && let Ok(mut map) = times.lock()
                {
                    map.insert(key, at);
                }
            }
        });
        Server {
            child,
            pid,
            http,
            carbon: carbon.expect("carbon address"),
            carbon_coder: carbon_coder.expect("carbon coder address"),
            progress,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.http.expect("a portal"))
    }

    /// `VmRSS` or `VmHWM` (peak) of the process, in KiB.
    pub fn memory_kib(&self, key: &str) -> u64 {
        proc_status(self.pid, key)
    }

    /// CPU seconds the process itself (not ffmpeg) has used.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(self.pid)
    }

    /// Resets the peak RSS (`VmHWM`) to the current RSS.
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    pub async fn stop(mut self) {
        let _ = nix_term(self.pid);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn nix_term(pid: u32) -> std::io::Result<()> {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|_| ())
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid` in seconds (clock ticks at the usual 100 Hz).
pub fn cpu_secs(pid: u32) -> f64 {
    stat_secs(pid, 11, 12)
}

/// cutime + cstime of this process in seconds: the CPU of every child
/// (and their children) it has waited for, such as ffmpeg runs.
pub fn children_cpu_secs() -> f64 {
    stat_secs(std::process::id(), 13, 14)
}

/// cutime + cstime of process `pid` in seconds: the CPU of the children
/// it has waited for (a node's ffmpeg and ffprobe runs).
pub fn children_cpu_secs_of(pid: u32) -> f64 {
    stat_secs(pid, 13, 14)
}

/// The sum of two clock-tick fields of `/proc/PID/stat` (counted from the
/// field after the command name), in seconds.
fn stat_secs(pid: u32, first: usize, second: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(first) + ticks(second)) / 100.0
}

/// The `q`-th percentile (0–100) of `values` (nearest rank).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// One line of the summary table.
pub struct Row {
    pub measurement: &'static str,
    pub result: String,
    pub target: &'static str,
    pub met: Option<bool>,
    pub details: serde_json::Value,
}

/// Where benchmark inputs and outputs go (inside `target/`, on the same
/// disk as the build: a 2 GiB input needs room).
pub fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// Writes a synthetic `secs`-second clip of `width`×`height` into `dir`.
pub fn make_clip(dir: &Path, secs: u32, width: u32, height: u32) -> PathBuf {
    let clip = dir.join("clip.mp4");
    videoshare::media::synthetic::write_clip(
        &clip,
        videoshare::media::synthetic::ClipSpec::new(secs, width, height),
    )
    .expect("clip");
    clip
}

/// Makes a session (cookie) and returns a client that keeps it.
pub async fn session(base: &str) -> (reqwest::Client, String) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .expect("client");
    client
        .get(format!("{base}/api/jobs"))
        .send()
        .await
        .expect("session");
    use reqwest::cookie::CookieStore;
    let cookie = jar
        .cookies(&base.parse().expect("url"))
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .expect("a session cookie");
    (client, cookie)
}

/// Uploads `path` (streamed from disk, never read whole) as a multipart
/// `POST /upload` of `client`'s session with the default preset; returns
/// the job GUID.
pub async fn upload_file(client: &reqwest::Client, base: &str, path: &Path) -> String {
    upload_with_preset(client, base, path, None).await
}

/// [`upload_file`] with a chosen preset (its GUID).
pub async fn upload_with_preset(
    client: &reqwest::Client,
    base: &str,
    path: &Path,
    preset: Option<&str>,
) -> String {
    let file = tokio::fs::File::open(path).await.expect("open input");
    let length = file.metadata().await.expect("meta").len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
            .file_name(name);
    let response = client
        .post(format!("{base}/upload"))
        .header("Accept", "application/json")
        .multipart(match preset {
            Some(guid) => reqwest::multipart::Form::new()
                .text("preset", guid.to_owned())
                .part("file", part),
            None => reqwest::multipart::Form::new().part("file", part),
        })
        .send()
        .await
        .expect("upload");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(status, 202, "upload accepted: {body}");
    body["guid"].as_str().expect("guid").to_owned()
}
