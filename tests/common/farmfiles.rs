//! The farm file service's test harness: an in-memory [`Authority`], the
//! real service on a loopback port with its shared storage in a temp folder
//! and a log of the requests it answered, and chunk outputs to upload.
//! Used by `tests/farmfiles.rs`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use videoshare::carbon::Guid;
use videoshare::farmfiles::{
    Authority, ChunkId, FarmFiles, SourceKind, routes, serve, sha256_file,
};

pub const NODE: &str = "enc2";
pub const TOKEN: &str = "vsn_0123456789abcdef0123456789abcdef";
pub const JOB: Guid = Guid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

/// (node, job, which) → (path, SHA-256): the sources each node may read.
pub type Sources = HashMap<(String, Guid, SourceKind), (PathBuf, String)>;

/// Leases and tokens in maps: who holds what is set by each test.
#[derive(Default)]
pub struct Memory {
    pub tokens: HashMap<String, String>,
    pub sources: Mutex<Sources>,
    pub targets: Mutex<HashMap<(String, ChunkId), PathBuf>>,
    /// Each delivery, with the files its folder had when it was recorded.
    pub delivered: Mutex<Vec<(ChunkId, PathBuf, Vec<String>)>>,
    /// Answer `delivered` with false (the lease was lost meanwhile).
    pub lost_lease: AtomicBool,
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
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
}

/// The real service on a loopback port, with its shared storage in a
/// temp folder and a log of the requests it answered.
pub struct Service {
    pub addr: SocketAddr,
    pub authority: Arc<Memory>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub dir: tempfile::TempDir,
    /// Where uploads wait until whole.
    pub incoming: PathBuf,
    /// The folder holding `incoming` when it is on another file system.
    _elsewhere: Option<tempfile::TempDir>,
    pub stop: CancellationToken,
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
    pub async fn start() -> Service {
        Service::start_with(None).await
    }

    /// A service whose uploads wait in `/dev/shm` (a tmpfs), on another
    /// file system than their targets.
    pub async fn start_with_incoming_on_tmpfs() -> Service {
        let elsewhere = tempfile::tempdir_in("/dev/shm").expect("a tempdir in /dev/shm");
        Service::start_with(Some(elsewhere)).await
    }

    async fn start_with(elsewhere: Option<tempfile::TempDir>) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let incoming = elsewhere
            .as_ref()
            .map_or(dir.path(), |e| e.path())
            .join("shared/incoming");
        std::fs::create_dir_all(&incoming).expect("incoming");
        let mut memory = Memory::default();
        memory.tokens.insert(NODE.into(), TOKEN.into());
        memory.tokens.insert("enc3".into(), "vsn_enc3".into());
        let authority = Arc::new(memory);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = routes(authority.clone(), incoming.clone())
            .layer(axum::middleware::from_fn_with_state(seen.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, router, Vec::new(), stop.clone()));
        Service {
            addr,
            authority,
            seen,
            dir,
            incoming,
            _elsewhere: elsewhere,
            stop,
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A source of `size` bytes that `NODE` may read; returns its bytes
    /// and SHA-256.
    pub fn lease_source(&self, size: usize) -> (Vec<u8>, String) {
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
    pub fn lease_chunk(&self, chunk: ChunkId, folder: &str) -> PathBuf {
        let target = self.path(&format!("shared/work/{folder}"));
        self.authority
            .targets
            .lock()
            .insert((NODE.into(), chunk), target.clone());
        target
    }

    pub fn client_via(&self, addr: SocketAddr) -> FarmFiles {
        FarmFiles::new(vec![format!("http://{addr}")], NODE, TOKEN).expect("client")
    }

    pub fn client(&self) -> FarmFiles {
        self.client_via(self.addr)
    }

    pub fn seen(&self, method: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.method == method)
            .cloned()
            .collect()
    }

    /// What is in `incoming/`, sorted.
    pub fn incoming(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.incoming)
            .expect("incoming")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn incoming_is_empty(&self) -> bool {
        self.incoming().is_empty()
    }

    /// Only the record of the placed chunk is left in `incoming/`.
    pub fn only_placed_record_left(&self) -> bool {
        self.incoming() == [format!("{}.placed.json", CHUNK.name())]
    }

    /// Asks `complete` of `CHUNK` as `NODE`, as a client whose answer was
    /// lost would.
    pub async fn complete_again(&self) -> u16 {
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
pub fn noise(size: usize, seed: u64) -> Vec<u8> {
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
pub fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
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
pub fn chunk_output(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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

pub const CHUNK: ChunkId = ChunkId {
    guid: JOB,
    idx: 3,
    attempt: 1,
};

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A raw request to the service as `node` (with its token).
pub fn raw(
    service: &Service,
    method: reqwest::Method,
    path: &str,
    node: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("http://{}{path}", service.addr))
        .header("x-videoshare-node", node)
        .bearer_auth(token)
}

/// A request body that sends what `rx` gives, and ends when its sender
/// is dropped (a body that stalls while the sender is held).
pub fn body_of(rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
