//! The web portal: upload page, uploads, live progress over WebSocket, the
//! library of encoded videos and their playback.
//!
//! Owns the axum router, the upload path (streamed to disk, checked, then
//! submitted as a Carbon `JobQueue`), the one poller that asks the encoder
//! about every unfinished job and the hub that pushes changes to browsers.
//! It must not know how encoding works (no ffmpeg arguments, no encoder
//! tables): it talks to the encoder only through [`crate::carbon::Client`].

pub mod error;
pub mod health;
pub mod jobs;
pub mod library;
pub mod pages;
pub mod poller;
pub mod presets;
pub mod upload;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use sqlx::SqlitePool;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::carbon::{Client, Guid};
use crate::store::UploadStore;
use library::Library;
use ws::HubEvent;

/// How long an upload body may go without a byte before the request ends.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the page may load: only its own scripts, styles, images, media and
/// WebSocket; no inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(
    axum::extract::State(portal): axum::extract::State<Portal>,
) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        portal.config().metrics.render(),
    )
}

/// A header every response carries (unless the handler set it).
fn always(name: header::HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
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
    /// `uploaded_dir` as the encoder names it (the same path when the
    /// encoder runs on this machine).
    pub encoder_uploaded: String,
    /// `streams_dir` as the encoder names it.
    pub encoder_streams: String,
    /// A client must send its request headers within this long.
    pub header_timeout: Duration,
    /// Where uploads and WebSocket clients are counted; `/metrics` shows it.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The preset new uploads are encoded with.
    pub preset: Guid,
}

/// Shared portal state, cheap to clone.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    config: PortalConfig,
    client: Client,
    uploads: UploadStore,
    library: Library,
    hub: broadcast::Sender<HubEvent>,
    /// Wakes the poller when a job was just submitted.
    poke: Notify,
    publishing: tokio::sync::Mutex<()>,
    presets: presets::PresetCache,
    sockets: ws::SocketCounts,
    shutdown: CancellationToken,
}

impl Portal {
    /// Prepares the portal: clears uploads a crash interrupted.
    pub async fn new(
        config: PortalConfig,
        pool: SqlitePool,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Portal> {
        let stale = crate::fsutil::reset_dir(&config.tmp_dir)?;
        if stale > 0 {
            tracing::info!(stale, "removed interrupted uploads");
        }
        let (hub, _) = broadcast::channel(1024);
        Ok(Portal {
            inner: Arc::new(Inner {
                client: Client::new(config.encoder_addr.clone()),
                library: Library::new(config.streams_dir.clone()),
                uploads: UploadStore::new(pool),
                hub,
                poke: Notify::new(),
                publishing: tokio::sync::Mutex::new(()),
                presets: presets::PresetCache::default(),
                sockets: ws::SocketCounts::default(),
                shutdown,
                config,
            }),
        })
    }

    pub fn config(&self) -> &PortalConfig {
        &self.inner.config
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        // Read-only files; a folder gives 404, never a listing.
        let streams = ServeDir::new(&self.inner.config.streams_dir);
        Router::new()
            .route("/", get(pages::index))
            .route("/static/app.js", get(pages::app_js))
            .route("/static/style.css", get(pages::style_css))
            .route(
                "/upload",
                // The upload handler streams and enforces its own limit.
                post(upload::upload).layer(DefaultBodyLimit::disable()),
            )
            .route("/ws", get(ws::handler))
            .route("/api/videos", get(pages::api_videos))
            .route("/api/jobs/{guid}", get(pages::api_job))
            .route("/healthz", get(health::healthz))
            .route("/metrics", get(metrics))
            // Pages and JSON are compressed; videos (added below) are not:
            // they are compressed already and served by byte ranges.
            .layer(CompressionLayer::new())
            .nest_service("/streams", streams)
            // A body that stops arriving (a stalled or hostile client) ends
            // the request instead of holding it open forever.
            .layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT))
            .layer(always(
                header::CONTENT_SECURITY_POLICY,
                CONTENT_SECURITY_POLICY,
            ))
            .layer(always(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(always(header::REFERRER_POLICY, "no-referrer"))
            .layer(always(header::X_FRAME_OPTIONS, "DENY"))
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
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }

    /// Pushes the current library to every browser. One at a time, so a
    /// newer listing is never overtaken by an older one.
    async fn publish_library(&self) {
        let _in_order = self.inner.publishing.lock().await;
        let cards = pages::video_cards(&self.inner.library.list().await);
        let _ = self.inner.hub.send(HubEvent::Videos(Arc::new(cards)));
    }
}
