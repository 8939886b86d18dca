//! The Carbon socket server: accept loop with a connection cap, one task per
//! connection, one reply frame per request frame, deadlines for idle clients,
//! for frames that stop arriving halfway and for replies the client does not
//! read.
//!
//! Two connection habits, one listener each: [`Habit::KeepOpen`] serves
//! many requests on a connection, as the seed's Flash Media Encoding Server
//! did (`--carbon`); [`Habit::OnePerConnection`] answers one request and
//! closes, as Carbon Coder does and as clients written for it expect: they
//! read until the server closes (`--carbon-coder`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Encoder;
use crate::carbon::frame::{CarbonCodec, DEFAULT_MAX_FRAME, FrameError};

/// How a listener treats a connection after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Habit {
    /// Keep reading requests (the seed's FMES).
    KeepOpen,
    /// Close after the first reply (Carbon Coder).
    OnePerConnection,
}

/// How long a one-request connection may go on sending after its reply
/// before it is closed: its leftover bytes (a trailing newline) are read
/// and dropped, since closing with unread input would reset the connection
/// and could destroy the reply before the client has read it.
const LINGER: Duration = Duration::from_secs(2);

/// How long a frame whose count may be of characters waits for the rest.
const HOLD: Duration = Duration::from_millis(500);

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted frame payload.
    pub max_frame: usize,
    /// A connection with no frame in progress is closed after this long.
    pub idle_timeout: Duration,
    /// A frame must arrive completely within this long of its first byte.
    pub frame_timeout: Duration,
    /// A reply must be taken by the client within this long: one that
    /// sends requests but never reads its replies is disconnected, which
    /// frees its slot.
    pub write_timeout: Duration,
    /// Connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// Networks clients may connect from, besides loopback.
    pub allow: Vec<ipnet::IpNet>,
}

impl Limits {
    /// Whether a client at `ip` may use the socket: loopback always, others
    /// only inside an allowed network.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        allowed(&self.allow, ip)
    }
}

/// Whether a client at `ip` may connect: loopback always, others only
/// inside one of the `allow` networks (the rule of `--carbon-allow`, also
/// used by the farm's file service).
pub fn allowed(allow: &[ipnet::IpNet], ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        // An IPv4 client on a dual-stack socket.
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || allow.iter().any(|net| net.contains(&ip))
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 256,
            allow: Vec::new(),
        }
    }
}

/// Serves Carbon clients on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    encoder: Encoder,
    limits: Limits,
    habit: Habit,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        stream.set_nodelay(true).ok();
        if !limits.allows(peer.ip()) {
            tracing::warn!(%peer, "refused a Carbon connection from outside --carbon-allow");
            let why = Refusal::NotAllowed(peer.ip());
            tokio::spawn(refuse(stream, why, limits.write_timeout));
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let why = Refusal::Busy(limits.max_connections);
            tokio::spawn(refuse(stream, why, limits.write_timeout));
            continue;
        };
        let (encoder, limits, shutdown) = (encoder.clone(), limits.clone(), shutdown.clone());
        tokio::spawn(
            async move {
                Connection::new(stream, &limits, habit)
                    .serve(&encoder, habit, &shutdown)
                    .await;
                drop(permit);
            }
            .instrument(tracing::debug_span!("carbon", %peer)),
        );
    }
}

/// Tells a client why it is not served (if it takes the reply within
/// `write_timeout`), then hangs up.
async fn refuse(mut stream: TcpStream, why: Refusal, write_timeout: Duration) {
    let reply = super::tasks::failed(&why);
    let frame = crate::carbon::frame::frame_bytes(&reply.to_payload());
    if tokio::time::timeout(write_timeout, stream.write_all(&frame))
        .await
        .is_ok()
    {
        linger(stream).await;
    }
}

/// Ends a connection whose reply is written: FIN after the reply, then
/// whatever the client still sends is read and dropped until it closes
/// too or [`LINGER`] passes. Closing with unread input would reset the
/// connection and could destroy the reply before the client read it.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// One client connection: a socket, its read buffer and the codec.
struct Connection<'a> {
    stream: TcpStream,
    buffer: BytesMut,
    codec: CarbonCodec,
    limits: &'a Limits,
    /// How long it may wait for a request to start.
    idle_timeout: Duration,
}

/// What reading the next frame produced.
enum Next {
    Frame(Bytes),
    /// Clean close, idle timeout or shutdown: just hang up.
    Hangup,
    /// The client broke the protocol: tell it why, then hang up.
    Refuse(Refusal),
}

/// Why a connection is closed with an error reply instead of being served.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("connections from {0} are not allowed")]
    NotAllowed(std::net::IpAddr),
    #[error("server busy: it already serves {0} connections; try again later")]
    Busy(usize),
    #[error(transparent)]
    Frame(FrameError),
    #[error("frame incomplete after {0} s; closing")]
    FrameIncomplete(u64),
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, limits: &'a Limits, habit: Habit) -> Self {
        // A client of the one-request listener connects to send its request:
        // it gets no longer to start than a frame gets to finish.
        let idle_timeout = match habit {
            Habit::KeepOpen => limits.idle_timeout,
            Habit::OnePerConnection => limits.frame_timeout.min(limits.idle_timeout),
        };
        Connection {
            stream,
            buffer: BytesMut::with_capacity(4096),
            codec: CarbonCodec::new(limits.max_frame),
            limits,
            idle_timeout,
        }
    }

    async fn serve(mut self, encoder: &Encoder, habit: Habit, shutdown: &CancellationToken) {
        loop {
            let reply = match self.read_frame(shutdown).await {
                Next::Frame(payload) => encoder.handle_payload(&payload).await,
                Next::Hangup => break,
                Next::Refuse(reason) => {
                    tracing::info!(%reason, "closing a Carbon connection");
                    let refusal = super::tasks::failed(&reason).to_payload();
                    if self.write(refusal).await.is_ok() {
                        linger(self.stream).await;
                    }
                    return;
                }
            };
            if self.write(reply).await.is_err() {
                break;
            }
            if habit == Habit::OnePerConnection {
                return linger(self.stream).await;
            }
        }
        let _ = self.stream.shutdown().await;
    }

    /// Reads until a whole frame is buffered, enforcing the idle deadline
    /// before a frame starts and the frame deadline once it has.
    async fn read_frame(&mut self, shutdown: &CancellationToken) -> Next {
        let mut frame_started: Option<Instant> = None;
        loop {
            match self.codec.decode(&mut self.buffer) {
                Ok(Some(payload)) => return Next::Frame(payload),
                Ok(None) => {}
                Err(e @ FrameError::Io(_)) => {
                    tracing::debug!(error = %e, "read failed");
                    return Next::Hangup;
                }
                Err(e) => return Next::Refuse(Refusal::Frame(e)),
            }
            if !self.buffer.is_empty() && frame_started.is_none() {
                frame_started = Some(Instant::now());
            }
            let deadline = match frame_started {
                Some(start) => start + self.limits.frame_timeout,
                None => Instant::now() + self.idle_timeout,
            };
            // A frame held back in case its count was of characters waits
            // only briefly for more: its XML is then simply bad.
            let holding = self.codec.is_holding();
            let wait_until = if holding {
                deadline.min(Instant::now() + HOLD)
            } else {
                deadline
            };
            let read = tokio::select! {
                read = tokio::time::timeout_at(wait_until, self.stream.read_buf(&mut self.buffer)) => read,
                _ = shutdown.cancelled() => return Next::Hangup,
            };
            match read {
                Err(_) if holding => {
                    return match self.codec.take_as_declared(&mut self.buffer) {
                        Ok(Some(payload)) => Next::Frame(payload),
                        Ok(None) => Next::Hangup,
                        Err(e) => Next::Refuse(Refusal::Frame(e)),
                    };
                }
                Err(_) if frame_started.is_some() => {
                    return Next::Refuse(Refusal::FrameIncomplete(
                        self.limits.frame_timeout.as_secs(),
                    ));
                }
                Err(_) => return Next::Hangup,
                // The client closed its side (some do right after sending):
                // a frame it finished still gets its reply.
                Ok(Ok(0)) => {
                    return match self.codec.decode_eof(&mut self.buffer) {
                        Ok(Some(payload)) => Next::Frame(payload),
                        _ => Next::Hangup,
                    };
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    return Next::Hangup;
                }
            }
        }
    }

    /// Writes one whole frame with a single write call, so clients that parse
    /// whatever one read returns (the seed's) see it complete. A client that
    /// does not take it within the write deadline is given up on.
    async fn write(&mut self, payload: Vec<u8>) -> std::io::Result<()> {
        let mut frame = BytesMut::with_capacity(payload.len() + 24);
        self.codec
            .encode(Bytes::from(payload), &mut frame)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let deadline = self.limits.write_timeout;
        match tokio::time::timeout(deadline, self.stream.write_all(&frame)).await {
            Ok(written) => written,
            Err(_) => {
                tracing::info!(
                    secs = deadline.as_secs_f64(),
                    "closing a Carbon connection that does not read its replies"
                );
                Err(std::io::ErrorKind::TimedOut.into())
            }
        }
    }
}

/// Binds the Carbon listener, logging the address actually bound.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_and_others_only_when_allowed() {
        let limits = Limits {
            allow: vec![
                crate::config::parse_network("10.0.0.0/8").expect("net"),
                crate::config::parse_network("2001:db8::/32").expect("net"),
            ],
            ..Limits::default()
        };
        let allowed = |ip: &str| limits.allows(ip.parse().expect("ip"));
        assert!(allowed("127.0.0.1") && allowed("::1"));
        assert!(
            allowed("10.1.2.3") && allowed("::ffff:10.1.2.3"),
            "IPv4-mapped too"
        );
        assert!(allowed("2001:db8::5"));
        assert!(!allowed("192.168.1.20") && !allowed("::ffff:192.168.1.20"));
        assert!(!Limits::default().allows("10.1.2.3".parse().expect("ip")));
    }
}
