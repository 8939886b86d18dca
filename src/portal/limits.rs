//! Limits per client, so that one client cannot starve the rest: counted
//! connections per address (HTTP and WebSocket), sign-in attempts per
//! address and per account name, password hashing a few at a time, and a
//! minimum rate for request bodies.
//!
//! Knows addresses, names and byte counts; nothing of sessions or jobs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::Stream;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;

/// The portal's per-client limits (`config::security` has their flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalLimits {
    /// HTTP connections held at once, in all.
    pub http_connections: usize,
    /// HTTP connections one address may hold.
    pub http_per_client: usize,
    /// A request body must bring this much in each `upload_window`.
    pub upload_min_bytes: u64,
    pub upload_window: Duration,
    /// Sign-in attempts per minute per address and per name.
    pub sign_in_per_minute: NonZeroU32,
    /// Unfinished resumable uploads per owner.
    pub resumable_per_owner: u32,
    /// Unfinished jobs per owner.
    pub queued_per_owner: u32,
}

impl PortalLimits {
    pub const DEFAULT: PortalLimits = PortalLimits {
        http_connections: 1024,
        // A browser opens about six connections and a WebSocket per tab.
        http_per_client: 64,
        upload_min_bytes: 16 * 1024,
        upload_window: Duration::from_secs(30),
        sign_in_per_minute: NonZeroU32::new(10).expect("ten is not zero"),
        resumable_per_owner: 20,
        queued_per_owner: 100,
    };
}

impl Default for PortalLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Live connections per client address, and in all.
#[derive(Debug, Default, Clone)]
pub struct ConnectionCounts {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Why a connection was not counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This address holds its most.
    Address,
    /// The server holds its most.
    Server,
}

/// One connection counted against its address (a place in
/// [`ConnectionCounts`]); given back on drop.
#[derive(Debug)]
pub struct CountedConnection {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl ConnectionCounts {
    /// Counts a new connection from `ip`, unless the address already holds
    /// `per_address` or the server `total`.
    pub fn take(
        &self,
        ip: IpAddr,
        per_address: usize,
        total: usize,
    ) -> Result<CountedConnection, Full> {
        let mut counts = self.counts.lock();
        if counts.total >= total {
            return Err(Full::Server);
        }
        let count = counts.per_address.entry(ip).or_default();
        if *count >= per_address {
            return Err(Full::Address);
        }
        *count += 1;
        counts.total += 1;
        Ok(CountedConnection {
            counts: self.counts.clone(),
            ip,
        })
    }

    /// Connections held now, in all.
    pub fn total(&self) -> usize {
        self.counts.lock().total
    }
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_address.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.per_address.remove(&self.ip);
            }
        }
    }
}

/// Who a sign-in attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Attempter {
    Address(IpAddr),
    /// An account name, case-folded (names compare without case).
    Name(String),
}

/// Sign-in and register attempts: so many a minute per address and per
/// name (a flood from many addresses against one name is slowed too), and
/// password hashing (19 MiB and tens of milliseconds each) a few at a time.
pub struct SignInLimits {
    attempts: DefaultKeyedRateLimiter<Attempter>,
    hashing: tokio::sync::Semaphore,
}

/// Password hashes computed at once.
const HASHING_AT_ONCE: usize = 2;

impl SignInLimits {
    pub fn new(per_minute: NonZeroU32) -> Self {
        SignInLimits {
            attempts: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        }
    }

    /// Counts an attempt by `ip` on `name`; 429 with `Retry-After` when
    /// either has used up its attempts.
    pub fn attempt(&self, ip: IpAddr, name: &str) -> Result<(), ApiError> {
        let clock = DefaultClock::default();
        let keys = [Attempter::Address(ip), Attempter::Name(name.to_lowercase())];
        for key in keys {
            if let Err(not_until) = self.attempts.check_key(&key) {
                let wait = not_until.wait_time_from(clock.now());
                return Err(too_many_attempts(wait));
            }
        }
        Ok(())
    }

    /// Runs `hash` (argon2) off the async threads, a few at a time.
    pub async fn hash<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn = self.hashing.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(hash)
            .await
            .map_err(ApiError::internal)
    }

    /// Forgets addresses and names that have been quiet for a while.
    pub fn forget_quiet(&self) {
        self.attempts.retain_recent();
        self.attempts.shrink_to_fit();
    }
}

fn too_many_attempts(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("Too many sign-in attempts: try again in {secs} s."),
    )
    .retry_after(secs.max(1))
}

/// A request body that must bring at least `min_bytes` every `window`: a
/// body trickling in (one byte every 29 s keeps an idle timeout happy) is
/// ended with an error.
/// The first window starts when the handler first reads the body.
pub struct MinRate<S> {
    inner: S,
    window: Duration,
    min_bytes: u64,
    seen: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> MinRate<S> {
    pub fn new(inner: S, window: Duration, min_bytes: u64) -> Self {
        MinRate {
            inner,
            window,
            min_bytes,
            seen: 0,
            deadline: None,
        }
    }

    /// At the end of a window: an error if too little came in it, else a
    /// new window (registered with the timer).
    fn end_of_window(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        let window = self.window;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
        while deadline.as_mut().poll(cx).is_ready() {
            if self.seen < self.min_bytes {
                return Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the upload was too slow: {} bytes in {} s, at least {} are needed",
                        self.seen,
                        self.window.as_secs(),
                        self.min_bytes
                    ),
                ));
            }
            self.seen = 0;
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + window);
        }
        None
    }
}

impl<S, E> Stream for MinRate<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<axum::BoxError>,
{
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(too_slow) = this.end_of_window(cx) {
            return Poll::Ready(Some(Err(too_slow.into())));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.seen = this.seen.saturating_add(bytes.len() as u64);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Middleware: every request body (uploads, tus `PATCH`) must keep up
/// the limits' minimum rate.
pub async fn enforce_min_rate(
    axum::extract::State(limits): axum::extract::State<PortalLimits>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limited = MinRate::new(
        body.into_data_stream(),
        limits.upload_window,
        limits.upload_min_bytes,
    );
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from_stream(limited));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn connections_are_counted_per_address_and_in_all() {
        let counts = ConnectionCounts::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = counts.take(a, 2, 3).expect("first");
        let _second = counts.take(a, 2, 3).expect("second");
        assert_eq!(counts.take(a, 2, 3).err(), Some(Full::Address));
        let _third = counts.take(b, 2, 3).expect("another address");
        assert_eq!(counts.take(b, 2, 3).err(), Some(Full::Server));
        drop(first);
        assert_eq!(counts.total(), 2);
        assert!(counts.take(a, 2, 3).is_ok());
    }

    #[tokio::test]
    async fn sign_in_attempts_are_limited_per_address_and_per_name() {
        let limits = SignInLimits::new(NonZeroU32::new(3).expect("nonzero"));
        let attacker: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            limits.attempt(attacker, "ann").expect("within the quota");
        }
        let refused = limits
            .attempt(attacker, "bob")
            .expect_err("address used up");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        // Another address on the same name (in another case) is slowed too.
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(limits.attempt(other, "ANN").is_err());
        assert!(limits.attempt(other, "carl").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_ended_and_a_steady_one_is_not() {
        let window = Duration::from_secs(10);
        // One byte every 9 s: well under 100 bytes a window.
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_secs(9)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), n + 1))
        });
        let mut limited = MinRate::new(Box::pin(trickle), window, 100);
        let mut outcome = None;
        while let Some(item) = limited.next().await {
            if let Err(e) = item {
                outcome = Some(e.to_string());
                break;
            }
        }
        assert!(outcome.expect("ended").contains("too slow"));

        let steady = futures_util::stream::iter(
            (0..50).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1000]))),
        )
        .then(|chunk| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            chunk
        });
        let limited = MinRate::new(Box::pin(steady), window, 100);
        let all: Vec<_> = limited.collect().await;
        assert_eq!(all.len(), 50);
        assert!(all.iter().all(Result::is_ok));
    }
}
