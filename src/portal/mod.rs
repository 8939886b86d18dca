//! The web portal: upload page, uploads (multipart and resumable tus), each
//! browser's private queue with live progress and controls over WebSocket,
//! the library of encoded videos and their playback, optional accounts.
//!
//! Owns the axum router, the upload paths (streamed to disk, checked, then
//! submitted as a Carbon `JobQueue`), sessions, the one poller that asks the
//! encoder about every unfinished job and the hub that pushes changes to
//! browsers.
//! It must not know how encoding works (no ffmpeg arguments, no encoder
//! tables): it talks to the encoder only through [`crate::carbon::Client`].

pub mod accounts;
pub mod api;
pub mod error;
pub mod farm;
pub mod health;
pub mod jobs;
pub mod library;
pub mod limits;
pub mod live_ladder;
pub mod moves;
pub mod origin;
pub mod pages;
pub mod poller;
pub mod presets;
pub mod session;
pub mod tus;
pub mod tus_recovery;
pub mod upload;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::store::Db;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::carbon::{Client, PresetId};
use crate::store::{AccountStore, SessionStore, TusStore, UploadStore};
use library::Library;
use session::{SessionKeys, Sessions};
use ws::HubEvent;

/// How long a request body may go without a byte before the request ends,
/// unless configured (`--http-body-secs`).
pub const BODY_IDLE_SECS: u64 = 30;

/// How often [`Portal::spawn_housekeeping`] runs.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// What the page may load: only its own scripts, styles, images, media and
/// WebSocket; no inline script, no framing. Media may also be a `blob:`
/// URL: hls.js plays a ladder through a MediaSource, which is one.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /metrics`: Prometheus text exposition, with the encoder farm as
/// last seen (left out when the encoder cannot say).
async fn metrics(
    axum::extract::State(portal): axum::extract::State<Portal>,
) -> impl axum::response::IntoResponse {
    match portal.farm().await {
        Ok(view) => view.record(&portal.config().metrics.farm),
        Err(e) => tracing::debug!(error = %e, "cannot see the encoder farm for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        portal.config().metrics.render(),
    )
}

/// A layer that sets header `name` to `value` on every response whose
/// handler did not set it already.
fn set_if_missing(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// What the portal needs to run.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Where finished uploads are placed (and what the encoder reads).
    pub uploaded_dir: PathBuf,
    /// Where the encoder writes finished videos (served under `/streams/`).
    pub streams_dir: PathBuf,
    /// Where uploads are received before they are checked.
    pub tmp_dir: PathBuf,
    /// Largest accepted upload, in bytes.
    pub max_upload: u64,
    /// How often the poller asks the encoder about unfinished jobs.
    pub poll_interval: Duration,
    /// The Carbon server's `host:port`.
    pub encoder_addr: String,
    /// One connection per request (any Carbon server) or one kept open.
    pub encoder_habit: crate::carbon::client::ConnectionHabit,
    /// How long the encoder may take to answer one request.
    pub encoder_timeout: Duration,
    /// `uploaded_dir` as the encoder names it (the same path when the
    /// encoder runs on this machine).
    pub encoder_uploaded: String,
    /// `streams_dir` as the encoder names it.
    pub encoder_streams: String,
    /// A client must send its request headers within this long.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is cut off.
    pub body_timeout: Duration,
    /// Where uploads and WebSocket clients are counted; `/metrics` shows it.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The preset new uploads are encoded with.
    pub preset: PresetId,
    /// Sign session cookies.
    pub session_keys: SessionKeys,
    /// An unused session ends after this long.
    pub session_lifetime: Duration,
    /// `Secure` on every cookie (it is set anyway behind https).
    pub secure_cookies: bool,
    /// What one client may hold and send.
    pub limits: limits::PortalLimits,
    /// Whether people may register and sign in (otherwise every browser
    /// is its own anonymous user).
    pub accounts: bool,
    /// Whether each user sees only the videos of their own uploads.
    pub private_library: bool,
    /// Where thumbnails are kept.
    pub thumbs_dir: PathBuf,
    /// Where resumable uploads collect their bytes (kept across restarts).
    pub tus_dir: PathBuf,
    /// WebSockets one client address may hold at once.
    pub ws_per_client: usize,
}

/// Shared portal state, cheap to clone.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    config: PortalConfig,
    /// Page requests' connection to the encoder (uploads, controls, presets).
    client: Client,
    /// The poller's own connection: a slow poll never holds up a page.
    poll_client: Client,
    uploads: UploadStore,
    accounts: AccountStore,
    sessions: Sessions,
    tus: TusStore,
    tus_writers: tus::PatchWriters,
    library: Library,
    /// The jobs the poller follows and what it last showed of each.
    following: poller::Following,
    live_ladders: live_ladder::LiveLadders,
    hub: broadcast::Sender<HubEvent>,
    /// Wakes the poller when a job was just submitted.
    poke: Notify,
    /// Held while a library listing is read and sent to browsers, so
    /// listings go out in the order they were read (never an older one
    /// after a newer one).
    library_publish_order: tokio::sync::Mutex<()>,
    presets: presets::PresetCache,
    /// WebSockets per client address.
    sockets: limits::ConnectionCounts,
    /// HTTP connections per client address and in all.
    connections: limits::ConnectionCounts,
    sign_in: limits::SignInLimits,
    /// Anonymous identities that signed in, for uploads still arriving.
    moves: moves::OwnerMoves,
    /// The encoder farm, as last asked (for /metrics and /healthz).
    farm: farm::FarmCache,
    shutdown: CancellationToken,
}

impl Portal {
    /// Prepares the portal: clears uploads a crash interrupted.
    pub async fn new(
        config: PortalConfig,
        pool: Db,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Portal> {
        let stale = crate::fsutil::reset_dir(&config.tmp_dir)?;
        if stale > 0 {
            tracing::info!(stale, "removed interrupted uploads");
        }
        std::fs::create_dir_all(&config.tus_dir)?;
        std::fs::create_dir_all(&config.thumbs_dir)?;
        let (hub, _) = broadcast::channel(1024);
        let portal = Portal {
            inner: Arc::new(Inner {
                client: Client::with_habit(config.encoder_addr.clone(), config.encoder_habit)
                    .with_timeout(config.encoder_timeout),
                poll_client: Client::with_habit(config.encoder_addr.clone(), config.encoder_habit)
                    .with_timeout(config.encoder_timeout),
                library: Library::new(
                    config.streams_dir.clone(),
                    config.thumbs_dir.clone(),
                    config.metrics.clone(),
                ),
                uploads: UploadStore::new(pool.clone()),
                accounts: AccountStore::new(pool.clone()),
                sessions: Sessions::new(
                    config.session_keys.clone(),
                    SessionStore::new(pool.clone()),
                    config.session_lifetime,
                    config.secure_cookies,
                ),
                tus: TusStore::new(pool),
                tus_writers: tus::PatchWriters::default(),
                following: poller::Following::default(),
                live_ladders: live_ladder::LiveLadders::default(),
                hub,
                poke: Notify::new(),
                library_publish_order: tokio::sync::Mutex::new(()),
                presets: presets::PresetCache::default(),
                sockets: limits::ConnectionCounts::default(),
                connections: limits::ConnectionCounts::default(),
                sign_in: limits::SignInLimits::new(config.limits.sign_in_per_minute),
                moves: moves::OwnerMoves::default(),
                farm: farm::FarmCache::default(),
                shutdown,
                config,
            }),
        };
        // Resumable uploads survive restarts; only expired ones go.
        portal.sweep_tus().await;
        portal.recover_tus().await;
        Ok(portal)
    }

    pub fn config(&self) -> &PortalConfig {
        &self.inner.config
    }

    /// Every minute: expired resumable uploads, ended sessions and stale
    /// rate-limit entries go.
    pub fn spawn_housekeeping(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let portal = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HOUSEKEEPING);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                portal.sweep_tus().await;
                portal.inner.sessions.sweep().await;
                portal.inner.sign_in.forget_quiet();
                portal.inner.moves.forget_old();
            }
        })
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        // Read-only files; a folder gives 404, never a listing. In a private
        // library each file is checked against its owner first.
        let streams = Router::new()
            .fallback_service(ServeDir::new(&self.inner.config.streams_dir))
            // Hidden names are never served; playlists and fMP4 segments
            // get the types players expect.
            .layer(axum::middleware::from_fn(library::ladder::streams_rules))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                library::visibility::library_guard,
            ));
        let thumbs = Router::new()
            .fallback_service(ServeDir::new(&self.inner.config.thumbs_dir))
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400, immutable"),
            ));
        Router::new()
            .route("/", get(pages::index))
            .route("/library", get(pages::library))
            .route("/watch/{name}", get(pages::watch))
            .route("/static/app.js", get(pages::app_js))
            .route("/static/tus.js", get(pages::tus_js))
            .route("/static/watch.js", get(pages::watch_js))
            .route("/static/hls.min.js", get(pages::hls_js))
            .route("/static/style.css", get(pages::style_css))
            .route(
                "/upload",
                // The upload handler streams and enforces its own limit.
                post(upload::upload).layer(DefaultBodyLimit::disable()),
            )
            .merge(tus::routes())
            .route("/ws", get(ws::handler))
            .route("/api/videos", get(pages::api_videos))
            .route("/api/jobs", get(api::my_jobs))
            .route("/api/jobs/{guid}", get(api::my_job))
            .route("/api/jobs/{guid}/{action}", post(api::control))
            .route("/account", get(accounts::page))
            .route("/account/register", post(accounts::register))
            .route("/account/login", post(accounts::login))
            .route("/account/logout", post(accounts::logout))
            .route(
                "/account/logout-everywhere",
                post(accounts::logout_everywhere),
            )
            .route("/account/password", post(accounts::change_password))
            .route("/healthz", get(health::healthz))
            .route("/metrics", get(metrics))
            // Pages and JSON are compressed; videos (added below) are not:
            // they are compressed already and served by byte ranges.
            .layer(CompressionLayer::new())
            .nest_service("/streams", streams)
            .nest_service("/thumbs", thumbs)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                session::identify,
            ))
            // Before the session is read: a foreign page's POST gets 403
            // and never a cookie.
            .layer(axum::middleware::from_fn(origin::guard))
            // A body that stops arriving (a stalled or hostile client) ends
            // the request instead of holding it open forever.
            .layer(RequestBodyTimeoutLayer::new(self.inner.config.body_timeout))
            // ... and so does one that trickles in.
            .layer(axum::middleware::from_fn_with_state(
                self.inner.config.limits,
                limits::enforce_min_rate,
            ))
            .layer(set_if_missing(
                header::CONTENT_SECURITY_POLICY,
                CONTENT_SECURITY_POLICY,
            ))
            .layer(set_if_missing(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(set_if_missing(header::REFERRER_POLICY, "no-referrer"))
            .layer(set_if_missing(header::X_FRAME_OPTIONS, "DENY"))
            .layer(TraceLayer::new_for_http())
            .with_state(self.clone())
    }

    /// Serves the portal on `listener` until `shutdown`, then lets open
    /// requests finish. Each request knows its client's address (to cap
    /// WebSockets per client), and a client that does not finish sending
    /// its request headers within `header_timeout` is disconnected (hyper's
    /// own timer; `axum::serve` sets none).
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use tower::ServiceExt;
        let router = self.router();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.inner.config.header_timeout);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!(error = %e, "HTTP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            let limits = &self.inner.config.limits;
            let held = match self.inner.connections.take(
                peer.ip(),
                limits.http_per_client,
                limits.http_connections,
            ) {
                Ok(held) => held,
                Err(full) => {
                    tokio::spawn(refuse_connection(stream, full));
                    continue;
                }
            };
            let service = router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
                .map_request(|req: axum::http::Request<hyper::body::Incoming>| {
                    req.map(axum::body::Body::new)
                });
            let hyper_service = hyper_util::service::TowerToHyperService::new(service);
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                drop(held);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// Answers a connection over the limits with a short 429 (this address
/// holds too many) or 503 (the server does) and closes it.
async fn refuse_connection(mut stream: tokio::net::TcpStream, full: limits::Full) {
    use tokio::io::AsyncWriteExt;
    let (status, code, message) = match full {
        limits::Full::Address => (
            "429 Too Many Requests",
            "too_many_connections",
            "This address holds too many connections to the server; close some and retry.",
        ),
        limits::Full::Server => (
            "503 Service Unavailable",
            "server_busy",
            "The server holds as many connections as it may; retry in a few seconds.",
        ),
    };
    tracing::warn!(code, "refused an HTTP connection");
    let body = format!(r#"{{"code":"{code}","message":"{message}"}}"#);
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 5\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
