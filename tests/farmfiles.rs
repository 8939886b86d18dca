//! The farm's file service and its client, over real sockets: a fetch node
//! downloads a job's source (verified, cached, resumed after a cut, fetched
//! again after a flipped byte) and uploads a chunk's output (placed whole
//! at its target, a corrupt file sent again, a stale chunk leaving nothing),
//! and nodes without a token, a lease or a plain path are refused.
//!
//! The [`Authority`] is an in-memory one here: the encoder's (over its
//! store) is tested with the chunk store.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use videoshare::carbon::Guid;
use videoshare::farmfiles::{
    Authority, ChunkId, FarmFiles, FetchError, SourceKind, routes, serve, sha256_file,
    sweep_incoming,
};

use common::proxy::{Direction, Fault, Proxy};

const NODE: &str = "enc2";
const TOKEN: &str = "vsn_0123456789abcdef0123456789abcdef";
const JOB: Guid = Guid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

/// (node, job, which) → (path, SHA-256): the sources each node may read.
type Sources = HashMap<(String, Guid, SourceKind), (PathBuf, String)>;

/// Leases and tokens in maps: who holds what is set by each test.
#[derive(Default)]
struct Memory {
    tokens: HashMap<String, String>,
    sources: Mutex<Sources>,
    targets: Mutex<HashMap<(String, ChunkId), PathBuf>>,
    /// Each delivery, with the files its folder had when it was recorded.
    delivered: Mutex<Vec<(ChunkId, PathBuf, Vec<String>)>>,
    /// Answer `delivered` with false (the lease was lost meanwhile).
    lost_lease: AtomicBool,
}

impl Authority for Memory {
    async fn verify_token(&self, node: &str, token: &str) -> bool {
        self.tokens.get(node).is_some_and(|t| t == token)
    }

    async fn source(&self, node: &str, guid: Guid, which: SourceKind) -> Option<(PathBuf, String)> {
        self.sources
            .lock()
            .get(&(node.to_owned(), guid, which))
            .cloned()
    }

    async fn upload_target(&self, node: &str, chunk: ChunkId) -> Option<PathBuf> {
        self.targets.lock().get(&(node.to_owned(), chunk)).cloned()
    }

    async fn delivered(&self, _node: &str, chunk: ChunkId, folder: &Path) -> bool {
        if self.lost_lease.load(Ordering::SeqCst) {
            return false;
        }
        let files = files_under(folder).into_keys().collect();
        self.delivered
            .lock()
            .push((chunk, folder.to_owned(), files));
        true
    }
}

/// A request the service answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
    status: u16,
}

/// The real service on a loopback port, with its shared storage in a
/// temp folder and a log of the requests it answered.
struct Service {
    addr: SocketAddr,
    authority: Arc<Memory>,
    seen: Arc<Mutex<Vec<Seen>>>,
    dir: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn record(
    axum::extract::State(seen): axum::extract::State<Arc<Mutex<Vec<Seen>>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let range = request
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    seen.lock().push(Seen {
        method,
        path,
        range,
        status,
    });
    response
}

impl Service {
    async fn start() -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let incoming = dir.path().join("shared/incoming");
        std::fs::create_dir_all(&incoming).expect("incoming");
        let mut memory = Memory::default();
        memory.tokens.insert(NODE.into(), TOKEN.into());
        memory.tokens.insert("enc3".into(), "vsn_enc3".into());
        let authority = Arc::new(memory);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = routes(authority.clone(), incoming)
            .layer(axum::middleware::from_fn_with_state(seen.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, router, stop.clone()));
        Service {
            addr,
            authority,
            seen,
            dir,
            stop,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A source of `size` bytes that `NODE` may read; returns its bytes
    /// and SHA-256.
    fn lease_source(&self, size: usize) -> (Vec<u8>, String) {
        let bytes = noise(size, 7);
        let path = self.path("shared/sources/clip.mp4");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("sources");
        std::fs::write(&path, &bytes).expect("source");
        let sha = sha256_file(&path).expect("hash");
        self.authority
            .sources
            .lock()
            .insert((NODE.into(), JOB, SourceKind::Video), (path, sha.clone()));
        (bytes, sha)
    }

    /// Lets `NODE` upload `chunk` to `shared/work/<folder>`.
    fn lease_chunk(&self, chunk: ChunkId, folder: &str) -> PathBuf {
        let target = self.path(&format!("shared/work/{folder}"));
        self.authority
            .targets
            .lock()
            .insert((NODE.into(), chunk), target.clone());
        target
    }

    fn client_via(&self, addr: SocketAddr) -> FarmFiles {
        FarmFiles::new(vec![format!("http://{addr}")], NODE, TOKEN).expect("client")
    }

    fn client(&self) -> FarmFiles {
        self.client_via(self.addr)
    }

    fn seen(&self, method: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.method == method)
            .cloned()
            .collect()
    }

    /// What is in `incoming/`, sorted.
    fn incoming(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path("shared/incoming"))
            .expect("incoming")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn incoming_is_empty(&self) -> bool {
        self.incoming().is_empty()
    }

    /// Only the record of the placed chunk is left in `incoming/`.
    fn only_placed_record_left(&self) -> bool {
        self.incoming() == [format!("{}.placed.json", CHUNK.name())]
    }

    /// Asks `complete` of `CHUNK` as `NODE`, as a client whose answer was
    /// lost would.
    async fn complete_again(&self) -> u16 {
        let url = format!("http://{}/farm/v1/chunks/{JOB}/3/1/complete", self.addr);
        reqwest::Client::new()
            .post(&url)
            .header("x-videoshare-node", NODE)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16()
    }
}

/// `size` bytes that do not repeat soon (a tiny LCG from `seed`).
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Every file under `root`, by `/`-separated relative path, with its bytes.
fn files_under(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut found = std::collections::BTreeMap::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                let name = relative.to_string_lossy().replace('\\', "/");
                found.insert(name, std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

/// A chunk's output: two segments in a rung folder and an init file.
fn chunk_output(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let files = [
        ("720p/seg00001.m4s", noise(300_000, 1)),
        ("720p/seg00002.m4s", noise(10, 2)),
        ("init.mp4", noise(120_000, 3)),
    ];
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, bytes).expect("write");
    }
    files
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), bytes))
        .collect()
}

const CHUNK: ChunkId = ChunkId {
    guid: JOB,
    idx: 3,
    attempt: 1,
};

#[tokio::test]
async fn a_source_is_downloaded_verified_and_then_served_from_the_cache() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(600_000);
    let cache = service.path("node/fetch");
    let client = service.client();

    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(got, cache.join(&sha));
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    assert!(!cache.join(format!("{sha}.part")).exists());
    assert_eq!(service.seen("GET").len(), 1);

    let again = client
        .fetch_source(JOB, SourceKind::Video, &sha.to_uppercase(), &cache)
        .await
        .expect("cached");
    assert_eq!(again, got);
    assert_eq!(
        service.seen("GET").len(),
        1,
        "the second fetch asked nothing"
    );

    // The answer names the file by its digest and serves ranges.
    let url = format!("http://{}/farm/v1/jobs/{JOB}/source", service.addr);
    let response = reqwest::Client::new()
        .get(&url)
        .header("x-videoshare-node", NODE)
        .bearer_auth(TOKEN)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("range request");
    assert_eq!(response.status(), 206);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("etag"), format!("\"sha256-{sha}\""));
    assert!(
        header("repr-digest").starts_with("sha-256=:"),
        "{}",
        header("repr-digest")
    );
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        &bytes[100..200]
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_download_is_caught_and_fetched_again() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(600_000);
    let flip = Fault::Flip {
        direction: Direction::Download,
        at: 100_000,
    };
    let proxy = Proxy::start(service.addr, flip).await;
    let cache = service.path("node/fetch");

    let client = service.client_via(proxy.addr);
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched after a retry");
    assert!(proxy.fired(), "a byte was flipped");
    assert_eq!(client.retries().downloads, 1);
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let gets = service.seen("GET");
    assert_eq!(gets.len(), 2, "fetched twice: {gets:?}");
    assert!(
        gets.iter().all(|g| g.range.is_none()),
        "both from byte 0: {gets:?}"
    );
}

#[tokio::test]
async fn a_download_cut_midway_resumes_with_a_range_request() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(900_000);
    let cut = Fault::Cut {
        direction: Direction::Download,
        after: 300_000,
    };
    let proxy = Proxy::start(service.addr, cut).await;
    let cache = service.path("node/fetch");

    let got = service
        .client_via(proxy.addr)
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched after a resume");
    assert!(proxy.fired(), "the download was cut");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let gets = service.seen("GET");
    let resumed = gets
        .iter()
        .find(|g| g.range.is_some())
        .expect("a Range request");
    let from: u64 = resumed
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .expect("bytes=N-");
    assert!(from > 0 && from <= 300_000, "resumed from {from}");
    assert_eq!(resumed.status, 206);
}

#[tokio::test]
async fn a_partial_download_left_by_a_crash_is_resumed_and_still_verified() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(200_000);
    let cache = service.path("node/fetch");
    std::fs::create_dir_all(&cache).expect("cache");
    // The crash left 1000 bytes, one of them wrong.
    let mut left = bytes[..1000].to_vec();
    left[10] ^= 0xff;
    std::fs::write(cache.join(format!("{sha}.part")), &left).expect("part");

    let client = service.client();
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let ranges: Vec<Option<String>> = service.seen("GET").into_iter().map(|g| g.range).collect();
    assert_eq!(
        ranges,
        [Some("bytes=1000-".to_owned()), None],
        "resumed, then anew"
    );
    assert_eq!(client.retries().downloads, 1);

    // A whole file left before its rename: one request (416), no download.
    std::fs::remove_file(&got).expect("remove");
    std::fs::write(cache.join(format!("{sha}.part")), &bytes).expect("part");
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let last = service.seen("GET").pop().expect("a request");
    assert_eq!(last.status, 416);
}

#[tokio::test]
async fn an_uploaded_chunk_lands_whole_at_its_target() {
    let service = Service::start().await;
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);

    let client = service.client();
    client.upload_chunk(CHUNK, &output).await.expect("uploaded");
    assert_eq!(files_under(&target), files);
    assert_eq!(client.retries(), Default::default());
    let delivered = service.authority.delivered.lock().clone();
    assert_eq!(delivered.len(), 1);
    let (chunk, folder, present) = &delivered[0];
    assert_eq!((chunk, folder), (&CHUNK, &target));
    assert_eq!(
        present,
        &files.keys().cloned().collect::<Vec<_>>(),
        "every file was in place when the delivery was recorded"
    );
    assert!(
        service.only_placed_record_left(),
        "{:?}",
        service.incoming()
    );
    assert_eq!(
        service.complete_again().await,
        200,
        "a lost answer is given again"
    );
    assert_eq!(
        service.authority.delivered.lock().len(),
        1,
        "delivered once"
    );
    let incoming = service.path("shared/incoming");
    assert_eq!(
        sweep_incoming(&incoming, Duration::from_secs(3600)).await,
        0
    );
    assert_eq!(sweep_incoming(&incoming, Duration::ZERO).await, 1);
    assert!(service.incoming_is_empty());
}

#[tokio::test]
async fn an_upload_cut_midway_resumes_where_the_service_stopped() {
    let service = Service::start().await;
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);
    let cut = Fault::Cut {
        direction: Direction::Upload,
        after: 150_000,
    };
    let proxy = Proxy::start(service.addr, cut).await;

    let client = service.client_via(proxy.addr);
    client
        .upload_chunk(CHUNK, &output)
        .await
        .expect("uploaded after a resume");
    assert!(proxy.fired(), "the upload was cut");
    assert!(
        proxy.sent_after_fault(b"HEAD /farm/v1/chunks/"),
        "asked where to go on"
    );
    assert!(client.retries().uploads >= 1);
    assert_eq!(files_under(&target), files);
    let patches = service.seen("PATCH");
    assert!(
        patches.iter().any(|p| p.status == 400),
        "one PATCH broke off: {patches:?}"
    );
}

#[tokio::test]
async fn a_flipped_byte_in_an_upload_is_refused_and_the_file_sent_again() {
    let service = Service::start().await;
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);
    // Past the manifest and the first PATCH's headers: inside the first
    // file's bytes.
    let flip = Fault::Flip {
        direction: Direction::Upload,
        at: 100_000,
    };
    let proxy = Proxy::start(service.addr, flip).await;

    let client = service.client_via(proxy.addr);
    client
        .upload_chunk(CHUNK, &output)
        .await
        .expect("uploaded after a retry");
    assert!(proxy.fired(), "a byte was flipped");
    assert_eq!(client.retries().uploads, 1);
    let completes: Vec<u16> = service
        .seen("POST")
        .iter()
        .filter(|s| s.path.ends_with("/complete"))
        .map(|s| s.status)
        .collect();
    assert_eq!(completes, [422, 200]);
    assert_eq!(files_under(&target), files);
    assert!(
        service.only_placed_record_left(),
        "{:?}",
        service.incoming()
    );
}

#[tokio::test]
async fn a_stale_chunk_is_told_so_and_leaves_nothing_behind() {
    let service = Service::start().await;
    let output = service.path("node/out");
    chunk_output(&output);
    let client = service.client();

    // Not held at all: refused at the manifest.
    let not_held = client.upload_chunk(CHUNK, &output).await;
    assert!(
        matches!(not_held, Err(FetchError::Stale(_))),
        "{not_held:?}"
    );

    // Held, but lost before the delivery was recorded.
    let target = service.lease_chunk(CHUNK, "v00003.1");
    service.authority.lost_lease.store(true, Ordering::SeqCst);
    let lost = client.upload_chunk(CHUNK, &output).await;
    assert!(matches!(lost, Err(FetchError::Stale(_))), "{lost:?}");
    assert!(!target.exists(), "the placed folder was removed");
    assert!(service.incoming_is_empty(), "nothing left in incoming");
    assert!(service.authority.delivered.lock().is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_401() {
    let service = Service::start().await;
    let (_, sha) = service.lease_source(1000);
    let url = format!("http://{}/farm/v1/jobs/{JOB}/source", service.addr);
    let http = reqwest::Client::new();
    for (node, token) in [(NODE, "vsn_wrong"), ("enc3", TOKEN), ("", TOKEN)] {
        let response = http
            .get(&url)
            .header("x-videoshare-node", node)
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 401, "{node} {token}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized");
    }
    let client = FarmFiles::new(vec![format!("http://{}", service.addr)], NODE, "vsn_wrong")
        .expect("client");
    let refused = client
        .fetch_source(JOB, SourceKind::Video, &sha, &service.path("node/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 401, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_node_without_a_lease_may_not_read_a_source() {
    let service = Service::start().await;
    let (_, sha) = service.lease_source(1000);
    let other = FarmFiles::new(vec![format!("http://{}", service.addr)], "enc3", "vsn_enc3")
        .expect("client");
    let refused = other
        .fetch_source(JOB, SourceKind::Video, &sha, &service.path("enc3/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 403, ref code, .. }) if code == "no_lease"),
        "{refused:?}"
    );
    // Nor the audio, which NODE does not hold either.
    let refused = service
        .client()
        .fetch_source(JOB, SourceKind::Audio, &sha, &service.path("node/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 403, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_manifest_path_that_leaves_the_folder_is_refused_with_400() {
    let service = Service::start().await;
    service.lease_chunk(CHUNK, "v00003.1");
    let url = format!("http://{}/farm/v1/chunks/{JOB}/3/1", service.addr);
    let http = reqwest::Client::new();
    for path in ["../escape.m4s", "/etc/passwd", "720p/.hidden", "a/../../b"] {
        let manifest = serde_json::json!([{"path": path, "size": 1, "sha256": "0".repeat(64)}]);
        let response = http
            .post(&url)
            .header("x-videoshare-node", NODE)
            .bearer_auth(TOKEN)
            .json(&manifest)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "bad_manifest", "{path}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(path)),
            "{body}"
        );
    }
    assert!(service.incoming_is_empty());
    assert!(!service.path("escape.m4s").exists());
}
