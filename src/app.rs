//! Startup wiring: binds both servers, opens the store and starts every task.
//! `main` only parses arguments and calls [`App::build`]; tests do the same
//! on port 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServeArgs;
use crate::encoder::paths::PathPolicy;
use crate::encoder::preset::SEED_PRESET;
use crate::encoder::server::{self, Limits};
use crate::encoder::{Encoder, EncoderConfig};
use crate::portal::{Portal, PortalConfig};

/// The folders under the data folder.
#[derive(Debug, Clone)]
pub struct DataDirs {
    pub root: PathBuf,
    pub uploaded: PathBuf,
    pub streams: PathBuf,
    pub tmp_uploads: PathBuf,
    pub tmp_encodes: PathBuf,
    pub database: PathBuf,
}

impl DataDirs {
    /// Creates the layout under `root` (absolute paths, so jobs name files
    /// unambiguously).
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the data folder {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve the data folder {}", root.display()))?;
        let dirs = DataDirs {
            uploaded: root.join("uploaded"),
            streams: root.join("streams"),
            tmp_uploads: root.join("tmp").join("uploads"),
            tmp_encodes: root.join("tmp").join("encodes"),
            database: root.join("videoshare.db"),
            root,
        };
        for dir in [
            &dirs.uploaded,
            &dirs.streams,
            &dirs.tmp_uploads,
            &dirs.tmp_encodes,
        ] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        for public in [&dirs.uploaded, &dirs.streams] {
            crate::fsutil::remove_staging_leftovers(public)
                .with_context(|| format!("cannot clean {}", public.display()))?;
        }
        Ok(dirs)
    }
}

/// A running videoshare: portal, encoder and their tasks.
pub struct App {
    http_addr: SocketAddr,
    carbon_addr: SocketAddr,
    dirs: DataDirs,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Where a client on this machine reaches a server bound to `addr`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

impl App {
    /// Binds, recovers from any interrupted run and starts everything.
    pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
        let dirs = DataDirs::create(&args.data)?;
        let pool = crate::store::open(&dirs.database)
            .await
            .with_context(|| format!("cannot open the database {}", dirs.database.display()))?;
        let shutdown = CancellationToken::new();

        let (carbon_listener, carbon_addr) = server::bind(&args.carbon)
            .await
            .with_context(|| format!("cannot listen for Carbon clients on {}", args.carbon))?;
        let encoder = Encoder::new(
            &EncoderConfig {
                tmp_dir: dirs.tmp_encodes.clone(),
                roots: vec![dirs.uploaded.clone(), dirs.streams.clone()],
                mappings: PathPolicy::seed_mappings(&dirs.uploaded, &dirs.streams),
                slots: usize::from(args.encode_slots),
                agent_ip: reachable(carbon_addr).ip().to_string(),
            },
            pool.clone(),
        )
        .await?;
        let mut tasks = vec![
            encoder.spawn_scheduler(shutdown.clone()),
            tokio::spawn(server::serve(
                carbon_listener,
                encoder,
                Limits::default(),
                shutdown.clone(),
            )),
        ];

        let portal = Portal::new(
            PortalConfig {
                uploaded_dir: dirs.uploaded.clone(),
                streams_dir: dirs.streams.clone(),
                tmp_dir: dirs.tmp_uploads.clone(),
                max_upload: args.max_upload,
                poll_interval: Duration::from_millis(args.poll_ms),
                encoder_addr: reachable(carbon_addr).to_string(),
                preset: SEED_PRESET,
            },
            pool,
            shutdown.clone(),
        )
        .await?;
        let http_listener = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
        let http_addr = http_listener.local_addr()?;
        let router = portal.router();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(http_listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
        tasks.push(portal.spawn_poller(shutdown.clone()));

        tracing::info!("portal listening on http://{http_addr}");
        tracing::info!("Carbon encoder listening on {carbon_addr}");
        tracing::info!(data = %dirs.root.display(), "data folder");
        Ok(App {
            http_addr,
            carbon_addr,
            dirs,
            shutdown,
            tasks,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn carbon_addr(&self) -> SocketAddr {
        self.carbon_addr
    }

    pub fn dirs(&self) -> &DataDirs {
        &self.dirs
    }

    /// Runs until Ctrl-C or SIGTERM, then stops cleanly.
    pub async fn run_until_stopped(self) {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests, requeueing running encodes");
        self.stop().await;
    }

    /// Stops accepting work, requeues running encodes, closes WebSockets and
    /// waits (a bounded time) for every task to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 10 s");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
