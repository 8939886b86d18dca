//! One hostile client throwing everything at once at a portal, from eight
//! loopback addresses of its own (127.0.0.2 to 127.0.0.9, as an attacker
//! with a few machines would), apart from the legitimate browser on
//! 127.0.0.1: the per-address limits take a share of the attack, the rest
//! reaches the handlers. Shared by the abuse test and the abuse benchmark
//! (`#[path]`-included there).
//!
//! It holds slow-header and slow-body connections (a byte a second),
//! opens WebSockets and keeps them, floods sign-in with wrong passwords
//! and uploads non-videos, until [`Attack::stop`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How many addresses the attacker uses.
pub const ADDRESSES: usize = 8;

/// The attacker's `n`th address (round robin over [`ADDRESSES`]).
pub fn attacker_address(n: usize) -> IpAddr {
    // At most 2 + 7: always a valid octet.
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % ADDRESSES) as u8))
}

/// Spreads new connections over the addresses.
static NEXT_ADDRESS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How much of each kind of abuse.
#[derive(Debug, Clone, Copy)]
pub struct AttackSize {
    pub slow_headers: usize,
    pub slow_bodies: usize,
    pub websocket_attempts: usize,
    pub sign_ins: usize,
    pub junk_uploads: usize,
}

impl AttackSize {
    /// What the issue asks for: 200 slow connections, 1,000 WebSocket
    /// attempts, floods of sign-ins and of non-video uploads.
    pub const FULL: AttackSize = AttackSize {
        slow_headers: 100,
        slow_bodies: 100,
        websocket_attempts: 1000,
        sign_ins: 300,
        junk_uploads: 100,
    };
}

/// What the attacker got, counted as it went.
#[derive(Debug, Default)]
pub struct Tally {
    /// Slow connections the server closed (timeout, rate, or refused).
    pub slow_ended: AtomicU64,
    pub sockets_opened: AtomicU64,
    pub sockets_refused: AtomicU64,
    pub sign_ins_limited: AtomicU64,
    pub sign_ins_answered: AtomicU64,
    pub uploads_refused: AtomicU64,
    /// Requests or connections answered 429/503 at the door.
    pub connections_refused: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        format!(
            "slow connections ended {}, sockets opened {} / refused {}, sign-ins limited {} of {}, \
             junk uploads refused {}, connections refused at the door {}",
            Self::get(&self.slow_ended),
            Self::get(&self.sockets_opened),
            Self::get(&self.sockets_refused),
            Self::get(&self.sign_ins_limited),
            Self::get(&self.sign_ins_answered),
            Self::get(&self.uploads_refused),
            Self::get(&self.connections_refused),
        )
    }
}

/// A running attack.
pub struct Attack {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    pub tally: Arc<Tally>,
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(attacker_address(n), 0))?;
    socket.connect(addr).await
}

/// One HTTP client per attacker address.
fn http_clients() -> Vec<reqwest::Client> {
    (0..ADDRESSES)
        .map(|n| {
            reqwest::Client::builder()
                .local_address(attacker_address(n))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("attacker client")
        })
        .collect()
}

/// Sends `head`, then one byte of `drip` a second until the server closes
/// the connection or the attack stops.
async fn slow(addr: SocketAddr, head: String, stop: CancellationToken, tally: Arc<Tally>) {
    let Ok(mut stream) = connect(addr).await else {
        Tally::add(&tally.slow_ended);
        return;
    };
    if stream.write_all(head.as_bytes()).await.is_err() {
        Tally::add(&tally.slow_ended);
        return;
    }
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            read = stream.read(&mut buf) => {
                // Any answer (a refusal, a timeout reply) or a close ends it.
                if matches!(read, Ok(n) if n > 0) && buf.starts_with(b"HTTP/1.1 429") {
                    Tally::add(&tally.connections_refused);
                }
                Tally::add(&tally.slow_ended);
                return;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"x").await.is_err() {
                    Tally::add(&tally.slow_ended);
                    return;
                }
            }
        }
    }
}

async fn hold_websocket(
    addr: SocketAddr,
    stop: CancellationToken,
    tally: Arc<Tally>,
) -> Option<tokio::task::JoinHandle<()>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = format!("ws://{addr}/ws").into_client_request().ok()?;
    let Ok(stream) = connect(addr).await else {
        Tally::add(&tally.sockets_refused);
        return None;
    };
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => {
            Tally::add(&tally.sockets_opened);
            // Held open (never read) until the attack stops.
            Some(tokio::spawn(async move {
                stop.cancelled().await;
                drop(socket);
            }))
        }
        Err(_) => {
            Tally::add(&tally.sockets_refused);
            None
        }
    }
}

async fn websockets(addr: SocketAddr, attempts: usize, stop: CancellationToken, tally: Arc<Tally>) {
    let mut held = Vec::new();
    for _ in 0..attempts {
        if stop.is_cancelled() {
            break;
        }
        if let Some(h) = hold_websocket(addr, stop.clone(), tally.clone()).await {
            held.push(h);
        }
    }
    stop.cancelled().await;
    for h in held {
        let _ = h.await;
    }
}

async fn sign_ins(addr: SocketAddr, count: usize, stop: CancellationToken, tally: Arc<Tally>) {
    let clients = http_clients();
    for n in 0..count {
        let http = &clients[n % ADDRESSES];
        if stop.is_cancelled() {
            return;
        }
        let name = if n % 2 == 0 {
            "ann".to_owned()
        } else {
            format!("user{n}")
        };
        let sent = http
            .post(format!("http://{addr}/account/login"))
            .form(&[("name", name.as_str()), ("password", "wrong password")])
            .send()
            .await;
        if let Ok(response) = sent {
            Tally::add(&tally.sign_ins_answered);
            if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Tally::add(&tally.sign_ins_limited);
            }
        }
    }
}

async fn junk_uploads(addr: SocketAddr, count: usize, stop: CancellationToken, tally: Arc<Tally>) {
    let clients = http_clients();
    let junk: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    for n in 0..count {
        let http = &clients[n % ADDRESSES];
        if stop.is_cancelled() {
            return;
        }
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(junk.clone()).file_name("junk.mp4"),
        );
        let sent = http
            .post(format!("http://{addr}/upload"))
            .header("accept", "application/json")
            .multipart(form)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_client_error()) {
            Tally::add(&tally.uploads_refused);
        }
    }
}

impl Attack {
    /// Starts every kind of abuse against the portal at `addr`.
    pub fn launch(addr: SocketAddr, size: AttackSize) -> Attack {
        let stop = CancellationToken::new();
        let tally = Arc::new(Tally::default());
        let mut tasks = JoinSet::new();
        let host = format!("host: {addr}\r\n");
        for _ in 0..size.slow_headers {
            let head = format!("GET / HTTP/1.1\r\n{host}x-slow: ");
            tasks.spawn(slow(addr, head, stop.clone(), tally.clone()));
        }
        for _ in 0..size.slow_bodies {
            let head = format!(
                "POST /upload HTTP/1.1\r\n{host}content-type: multipart/form-data; boundary=b\r\n\
                 content-length: 10000000\r\n\r\n--b\r\ncontent-disposition: form-data; \
                 name=\"file\"; filename=\"slow.mp4\"\r\n\r\n"
            );
            tasks.spawn(slow(addr, head, stop.clone(), tally.clone()));
        }
        tasks.spawn(websockets(
            addr,
            size.websocket_attempts,
            stop.clone(),
            tally.clone(),
        ));
        tasks.spawn(sign_ins(addr, size.sign_ins, stop.clone(), tally.clone()));
        tasks.spawn(junk_uploads(
            addr,
            size.junk_uploads,
            stop.clone(),
            tally.clone(),
        ));
        Attack { stop, tasks, tally }
    }

    /// Stops and waits (a bounded time) for every attacking task.
    pub async fn stop(mut self) -> Arc<Tally> {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        self.tally
    }
}
