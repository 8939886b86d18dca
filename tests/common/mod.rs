//! Helpers shared by the integration tests: start the real app on port 0
//! with a fresh data folder, make tiny clips with ffmpeg's lavfi sources,
//! upload them and follow their jobs over the WebSocket.
#![allow(dead_code)]

pub mod cli;
pub mod db;
pub mod farm;
pub mod media_check;
pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use videoshare::app::App;
use videoshare::carbon::{Client, Guid, JobEntry};
use videoshare::config::ServeArgs;
use videoshare::media::synthetic::{ClipSpec, write_clip};

/// Long enough for a 2 s clip on a loaded 2-core machine, short enough that a
/// hang fails the test instead of the whole suite.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("videoshare=debug"))
            .with_test_writer()
            .try_init();
    }
}

/// Fails with a message saying how to install a missing tool.
pub fn require(tool: &str) {
    let found = Command::new(tool).arg("-version").output().is_ok()
        || Command::new(tool).arg("--version").output().is_ok();
    assert!(
        found,
        "{tool} is not installed: run `make test`, which installs it (apt-get install ffmpeg chromium chromium-driver)"
    );
}

/// A clip of `secs` seconds, `width`×`height`, testsrc2 picture and a sine
/// tone, encoded as H.264 + AAC in MP4.
pub fn make_clip(dir: &Path, name: &str, secs: u32, width: u32, height: u32) -> PathBuf {
    require("ffmpeg");
    let path = dir.join(name);
    write_clip(&path, ClipSpec::new(secs, width, height)).expect("ffmpeg makes the test clip");
    path
}

/// The container's duration in seconds, as ffprobe reports it.
pub fn duration_secs(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(videoshare::media::inputs::media_input_args())
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let shown = String::from_utf8_lossy(&out.stdout);
    shown
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {}: {shown:?}", path.display()))
}

/// What ffprobe says about a file's streams: `(codec_type, codec_name, width, height)`.
pub fn probe_streams(path: &Path) -> Vec<(String, String, u64, u64)> {
    let out = Command::new("ffprobe")
        .args(videoshare::media::inputs::media_input_args())
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    json["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .map(|s| {
                    (
                        s["codec_type"].as_str().unwrap_or_default().to_owned(),
                        s["codec_name"].as_str().unwrap_or_default().to_owned(),
                        s["width"].as_u64().unwrap_or(0),
                        s["height"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Names in a folder, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub struct TestApp {
    pub app: App,
    pub base: String,
    pub http_addr: SocketAddr,
    /// The Carbon socket that keeps connections open (`--carbon`).
    pub carbon: SocketAddr,
    /// The Carbon Coder-style socket: one request per connection.
    pub carbon_coder: SocketAddr,
    pub data: PathBuf,
    /// Carries this test's browser session (its cookie) on every request.
    pub http: reqwest::Client,
    pub cookies: std::sync::Arc<reqwest::cookie::Jar>,
    _dir: Option<tempfile::TempDir>,
}

/// A client with its own cookie jar: one browser session.
pub fn session_client() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .expect("http client");
    (client, jar)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the real app on port 0 in a fresh temp data folder.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = spawn_app_in(dir.path().to_path_buf(), configure).await;
    app._dir = Some(dir);
    app
}

/// Starts the real app on port 0 over an existing data folder (restarts).
pub async fn spawn_app_in(data: PathBuf, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    init_logs();
    require("ffmpeg");
    let mut args = ServeArgs::ephemeral(data.clone());
    args.database.database = db::database_for(&data).await;
    args.portal.poll_ms = 100;
    configure(&mut args);
    let app = App::build(&args).await.expect("app starts");
    let http_addr = app.http_addr().expect("the app runs the portal");
    let (http, cookies) = session_client();
    TestApp {
        cookies,
        base: format!("http://{http_addr}"),
        http_addr,
        carbon: app.carbon_addr().expect("the app runs the encoder"),
        carbon_coder: app
            .carbon_coder_addr()
            .expect("the app runs the Carbon Coder-style listener"),
        data: app.dirs().root.clone(),
        http,
        app,
        _dir: None,
    }
}

impl TestApp {
    pub fn uploaded_dir(&self) -> PathBuf {
        self.app.dirs().uploaded.clone()
    }

    pub fn streams_dir(&self) -> PathBuf {
        self.app.dirs().streams.clone()
    }

    pub fn tmp_uploads_dir(&self) -> PathBuf {
        self.app.dirs().tmp_uploads.clone()
    }

    /// Uploads `bytes` as the multipart field `file` named `name`, asking for JSON.
    pub async fn upload_bytes(&self, bytes: Vec<u8>, name: &str) -> reqwest::Response {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        self.http
            .post(format!("{}/upload", self.base))
            .header("Accept", "application/json")
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    pub async fn upload_file(&self, path: &Path) -> reqwest::Response {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("clip.mp4")
            .to_owned();
        self.upload_bytes(std::fs::read(path).expect("read clip"), &name)
            .await
    }

    /// Uploads a clip and returns the job GUID from the JSON reply.
    pub async fn upload_ok(&self, path: &Path) -> String {
        let response = self.upload_file(path).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json reply");
        assert_eq!(status, 202, "upload refused: {body}");
        body["guid"].as_str().expect("guid in reply").to_owned()
    }

    /// This test's own browser session, as a [`Visitor`].
    pub fn me(&self) -> Visitor {
        Visitor {
            http: self.http.clone(),
            cookies: self.cookies.clone(),
            base: self.base.clone(),
            http_addr: self.http_addr,
        }
    }

    /// Another browser: a session of its own (no cookie yet).
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.base, self.http_addr)
    }

    /// Opens the page's WebSocket as this session (its cookie, no Origin).
    pub async fn websocket(&self) -> WebSocket {
        self.me().websocket().await
    }

    /// Watches `guid` over the WebSocket until its job is done; returns every
    /// message received (the queue, job updates and library updates).
    pub async fn follow_job(&self, guid: &str) -> Vec<Value> {
        let mut socket = self.websocket().await;
        socket
            .send(Message::Text(
                serde_json::json!({"type": "watch", "guid": guid})
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send watch");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut seen: Vec<Value> = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, socket.next()).await;
            let Ok(Some(message)) = next else {
                panic!("job {guid} not done within {DEADLINE:?}; saw {seen:?}");
            };
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            seen.push(serde_json::from_str(&text).expect("json message"));
            let done = seen
                .iter()
                .any(|v| v["type"] == "job" && v["job"]["done"] == true);
            let completed = seen.iter().any(|v| v["job"]["status"] == "COMPLETED");
            let library_after = seen.last().is_some_and(|v| v["type"] == "videos");
            // A completed job is followed by a library update: wait for it too.
            if done && (!completed || library_after) {
                return seen;
            }
        }
    }

    /// The job as the encoder reports it over Carbon.
    pub async fn carbon_status(&self, guid: &str) -> JobEntry {
        let guid: Guid = guid.parse().expect("a GUID");
        let mut statuses = Client::new(self.carbon.to_string())
            .statuses(&[guid])
            .await
            .expect("Carbon status");
        statuses
            .pop()
            .and_then(|(_, entry)| entry)
            .expect("the encoder knows the job")
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One browser session on a running app: its own cookie jar.
#[derive(Clone)]
pub struct Visitor {
    pub http: reqwest::Client,
    pub cookies: std::sync::Arc<reqwest::cookie::Jar>,
    pub base: String,
    pub http_addr: SocketAddr,
}

impl Visitor {
    /// A new browser session (no cookie yet) on the portal at `base`.
    pub fn new(base: &str, http_addr: SocketAddr) -> Visitor {
        let (http, cookies) = session_client();
        Visitor {
            http,
            cookies,
            base: base.to_owned(),
            http_addr,
        }
    }

    /// This session's `Cookie` header, if it has one yet.
    pub fn cookie_header(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = self.base.parse().expect("base url");
        self.cookies
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    /// Opens `/ws` with this session's cookie and the extra `headers`.
    pub async fn websocket_with(
        &self,
        headers: &[(&str, &str)],
    ) -> Result<WebSocket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        if self.cookie_header().is_none() {
            // Like a browser, which has the page (and its cookie) first.
            self.get_json("/api/jobs").await;
        }
        let mut request = format!("ws://{}/ws", self.http_addr)
            .into_client_request()
            .expect("ws request");
        if let Some(cookie) = self.cookie_header() {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().expect("cookie header"));
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(socket, _)| socket)
    }

    pub async fn websocket(&self) -> WebSocket {
        self.websocket_with(&[]).await.expect("websocket")
    }

    /// Uploads a clip as this session; returns the job GUID.
    pub async fn upload_ok(&self, path: &Path) -> String {
        self.upload_with_preset(path, None).await
    }

    /// Uploads a clip as this session with a chosen preset (the default
    /// when `None`); returns the job GUID.
    pub async fn upload_with_preset(
        &self,
        path: &Path,
        preset: Option<videoshare::carbon::PresetId>,
    ) -> String {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("clip.mp4")
            .to_owned();
        let mut form = reqwest::multipart::Form::new();
        if let Some(preset) = preset {
            form = form.text("preset", preset.to_string());
        }
        let form = form.part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(path).expect("read clip"))
                .file_name(name),
        );
        let response = self
            .http
            .post(format!("{}/upload", self.base))
            .header("Accept", "application/json")
            .multipart(form)
            .send()
            .await
            .expect("upload request");
        let status = response.status();
        let body: Value = response.json().await.expect("json reply");
        assert_eq!(status, 202, "upload refused: {body}");
        body["guid"].as_str().expect("guid in reply").to_owned()
    }

    /// `GET path` as this session: status and JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts an HTML form as this session (following the redirect, as a
    /// browser does): the final status and page.
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (reqwest::StatusCode, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("post");
        (response.status(), response.text().await.expect("body"))
    }

    /// `GET path` as this session: the body as text, whatever the status.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {path} body: {e}"))
    }

    /// The account this session is signed in to, as its account page says.
    pub async fn signed_in_as(&self) -> Option<String> {
        let page = self.get_text("/account").await;
        let after = page.split_once("Signed in as <strong>")?.1;
        Some(after.split_once("</strong>")?.0.to_owned())
    }

    /// A tus `PATCH` of `bytes` at `offset` to the upload at `path`.
    pub async fn tus_patch(&self, path: &str, offset: usize, bytes: &[u8]) -> reqwest::Response {
        self.http
            .patch(format!("{}{path}", self.base))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("patch")
    }

    /// `POST /api/jobs/{guid}/{action}`: status and JSON body.
    pub async fn control(&self, guid: &str, action: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/jobs/{guid}/{action}", self.base))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The GUIDs in this session's queue.
    pub async fn queue(&self) -> Vec<String> {
        let (status, body) = self.get_json("/api/jobs").await;
        assert_eq!(status, 200, "{body}");
        body["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["guid"].as_str().expect("guid").to_owned())
            .collect()
    }
}

/// The next JSON text message on a socket, within `DEADLINE`.
pub async fn next_json(socket: &mut WebSocket) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("json message");
        }
    }
}

/// Job updates among WebSocket messages.
pub fn job_updates(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m["type"] == "job")
        .map(|m| &m["job"])
        .collect()
}

/// Polls job `guid` over Carbon (every 20 ms, up to [`DEADLINE`]) until it
/// has finished, whatever the outcome.
pub async fn wait_finished(client: &Client, guid: Guid) -> JobEntry {
    wait_until(client, guid, "finished", |job| job.status.is_terminal()).await
}

/// Polls job `guid` (every 20 ms, up to [`DEADLINE`]) until `done` holds.
pub async fn wait_until(
    client: &Client,
    guid: Guid,
    what: &str,
    done: impl Fn(&JobEntry) -> bool,
) -> JobEntry {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let job = client
            .command(guid, videoshare::carbon::message::Command::QueryInfo)
            .await
            .expect("the job exists");
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: job stuck at {} {}% {}",
            job.status,
            job.progress,
            job.failure()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls (every 50 ms, up to a minute) until `ready` holds; fails with `what`.
pub async fn poll_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether an HLS ladder folder of the test's slow ladder has started:
/// marked as encoding, with a rung's folder: ffmpeg is mid-encode.
pub fn encoding_started(folder: &Path) -> bool {
    folder.join(".encoding").is_file() && folder.join("480p").is_dir()
}

/// Waits for job `guid` to finish and fails unless it COMPLETED.
pub async fn wait_completed(client: &Client, guid: Guid) -> JobEntry {
    let job = wait_finished(client, guid).await;
    assert_eq!(
        job.status,
        videoshare::carbon::JobStatus::Completed,
        "job ended {}: {}",
        job.status,
        job.description
    );
    job
}

/// The ffmpeg processes reading `source`, as `(pid, state)` with the state
/// letter of /proc (`R`, `S`, `T` for stopped...) — other tests' encodes
/// run in this process too.
pub fn ffmpeg_processes(source: &Path) -> Vec<(i32, char)> {
    let needle = source.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_ffmpeg = args.first().is_some_and(|a| a.ends_with("ffmpeg"));
        if !is_ffmpeg || !args.contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // `pid (comm) S ...`: the state follows the last `)`.
        if let Some(state) = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.trim().chars().next())
        {
            found.push((pid, state));
        }
    }
    found
}

/// The states of the ffmpeg processes reading `source`.
pub fn ffmpeg_states(source: &Path) -> Vec<char> {
    ffmpeg_processes(source)
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

impl TestApp {
    /// `GET /`: the page's HTML.
    pub async fn page(&self) -> String {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .expect("GET /")
            .text()
            .await
            .expect("HTML")
    }

    /// `GET /api/videos`: the library as the page gets it.
    pub async fn videos(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/api/videos", self.base))
            .send()
            .await
            .expect("GET /api/videos")
            .json()
            .await
            .expect("a JSON list")
    }
}

/// Uploads the file at `path` (under its own name) to the portal at `base`
/// (`http://host:port`), asking for JSON.
pub async fn upload_to(base: &str, path: &Path) -> reqwest::Response {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(path).expect("read the file"))
            .file_name(name),
    );
    session_client()
        .0
        .post(format!("{base}/upload"))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .expect("upload request")
}

/// A ladder preset slow enough to watch while it encodes: 1 s segments,
/// two rungs (480p, 360p), x264 `veryslow`. A 12 s 854×480 clip takes
/// several times longer to encode than its first segments here.
pub const SLOW_LADDER: videoshare::carbon::PresetId =
    videoshare::carbon::PresetId::from_u128(0x7A1D2C3E_4B5F_4A6B_9C7D_8E9F0A1B2C3D);

/// Writes a presets folder holding [`SLOW_LADDER`] and a config file that
/// loads it, in `dir`; returns the config file.
pub fn slow_ladder_config(dir: &Path) -> PathBuf {
    let presets = dir.join("presets");
    std::fs::create_dir_all(&presets).expect("mkdir presets");
    let preset = format!(
        r#"guid = "{SLOW_LADDER}"
name = "Slow ladder (test)"
description = "HLS 480p/360p, veryslow, 1 s segments"
container = "hls"
extension = "m3u8"

[video]
codec = "libx264"
bitrate_kbps = 1400
width = 854
height = 480
speed = "veryslow"

[audio]
codec = "aac"
bitrate_kbps = 128

[hls]
segment_seconds = 1
rungs = [{{ width = 640, height = 360, bitrate_kbps = 800 }}]
"#
    );
    std::fs::write(presets.join("slow-ladder.toml"), preset).expect("write the preset");
    let config = dir.join("videoshare.toml");
    let toml = format!("presets = '{}'\n", presets.display());
    std::fs::write(&config, toml).expect("write the config");
    config
}

/// Starts `command` (which runs videoshare) and waits until its log says
/// `marker`; returns the child and the rest of that log line.
pub async fn start_command(
    command: tokio::process::Command,
    marker: &str,
) -> (tokio::process::Child, String) {
    start_command_logged(command, marker, None).await
}

/// [`start_command`], also appending every line the child logs to the file
/// `log` (when given), so a failing test can show what a process said.
pub async fn start_command_logged(
    mut command: tokio::process::Command,
    marker: &str,
    log: Option<&Path>,
) -> (tokio::process::Child, String) {
    use std::io::Write;
    use tokio::io::{AsyncBufReadExt, BufReader};
    let shown = format!("{command:?}");
    let mut child = command
        .env("RUST_LOG", "videoshare=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn videoshare");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut sink = log.map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open the log {}: {e}", path.display()))
    });
    let mut keep = move |line: &str| {
        if let Some(file) = sink.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    };
    let found = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            keep(&line);
            if let Some((_, rest)) = line.split_once(marker) {
                return Some(rest.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("{shown} never logged {marker:?}"));
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            keep(&line);
        }
    });
    (child, found)
}
