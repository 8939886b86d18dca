//! A TCP relay between a test's client and a server that does one thing
//! wrong, once: cuts a connection, or flips one byte, part way through one
//! direction's bytes. Used to show that transfers resume and that
//! corruption is caught (tus uploads in the browser, the farm file service).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (requests, uploads).
    Upload,
    /// Server to client (responses, downloads).
    Download,
}

/// What the proxy does wrong, the first time it can.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Drops both sides of the first connection that carries more than
    /// `after` bytes in `direction` (headers included); the first `after`
    /// bytes get through.
    Cut { direction: Direction, after: usize },
    /// XORs with 0x01 the byte at `at` of `direction`, counted from the
    /// end of that connection's first header block (`\r\n\r\n`).
    Flip { direction: Direction, at: usize },
}

impl Fault {
    fn direction(self) -> Direction {
        match self {
            Fault::Cut { direction, .. } | Fault::Flip { direction, .. } => direction,
        }
    }
}

/// A running proxy; it stops with the test's runtime.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    fault: Fault,
    fired: AtomicBool,
    /// The first bytes of each client read after the fault fired.
    sent_after: Mutex<Vec<Vec<u8>>>,
}

/// How much of each client read after the fault is kept.
const KEPT: usize = 4096;

impl Proxy {
    /// Listens on a free loopback port and relays to `upstream`.
    pub async fn start(upstream: SocketAddr, fault: Fault) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(State {
            fault,
            fired: AtomicBool::new(false),
            sent_after: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Proxy { addr, state }
    }

    /// Whether the fault happened.
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// Whether the client sent `needle` after the fault (within the first
    /// 4 KiB of a read: where a request line is).
    pub fn sent_after_fault(&self, needle: &[u8]) -> bool {
        self.state
            .sent_after
            .lock()
            .iter()
            .any(|read| read.windows(needle.len()).any(|w| w == needle))
    }
}

/// How a pump ended.
#[derive(PartialEq, Eq)]
enum Ended {
    Closed,
    Cut,
}

/// Relays one connection both ways; a cut in either ends both.
async fn relay(client: tokio::net::TcpStream, server: tokio::net::TcpStream, state: Arc<State>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, Direction::Upload, &state);
    let down = pump(server_read, client_write, Direction::Download, &state);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let ended = tokio::select! {
            ended = &mut up, if !up_done => { up_done = true; ended }
            ended = &mut down, if !down_done => { down_done = true; ended }
        };
        if ended == Ended::Cut {
            // Dropping both pumps drops every half of both sockets.
            return;
        }
    }
}

/// Copies `from` to `to`, doing the fault if it is this direction's.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    state: &State,
) -> Ended {
    let mine = state.fault.direction() == direction;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut passed = 0usize;
    let mut headers = HeaderEnd::default();
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        let chunk = &mut buffer[..n];
        if direction == Direction::Upload && state.fired.load(Ordering::SeqCst) {
            let kept = chunk[..n.min(KEPT)].to_vec();
            state.sent_after.lock().push(kept);
        }
        if mine {
            match state.fault {
                Fault::Cut { after, .. } if passed + n > after => {
                    if !state.fired.swap(true, Ordering::SeqCst) {
                        let _ = to.write_all(&chunk[..after.saturating_sub(passed)]).await;
                        return Ended::Cut;
                    }
                }
                Fault::Flip { at, .. } => {
                    if let Some(i) = headers.body_index(chunk, at)
                        && !state.fired.swap(true, Ordering::SeqCst)
                    {
                        chunk[i] ^= 0x01;
                    }
                }
                Fault::Cut { .. } => {}
            }
        }
        passed += n;
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    Ended::Closed
}

/// Finds the end of a stream's first header block, across reads, and
/// counts the bytes after it.
#[derive(Default)]
struct HeaderEnd {
    /// The last bytes seen before the end was found (a `\r\n\r\n` may
    /// span two reads).
    tail: Vec<u8>,
    /// Body bytes seen before this read, once the end is found.
    body_seen: Option<usize>,
}

impl HeaderEnd {
    /// The index in `chunk` of body byte `at`, if this read carries it.
    fn body_index(&mut self, chunk: &[u8], at: usize) -> Option<usize> {
        let start = match self.body_seen {
            Some(_) => 0,
            None => {
                let carried = self.tail.len();
                self.tail.extend_from_slice(chunk);
                match self.tail.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(p) => {
                        self.body_seen = Some(0);
                        p + 4 - carried
                    }
                    None => {
                        let keep = self.tail.len().saturating_sub(3);
                        self.tail.drain(..keep);
                        return None;
                    }
                }
            }
        };
        let seen = self.body_seen.unwrap_or(0);
        let in_chunk = chunk.len() - start;
        self.body_seen = Some(seen + in_chunk);
        (at >= seen && at < seen + in_chunk).then(|| start + at - seen)
    }
}
