//! Startup wiring: binds both servers, opens the store and starts every task.
//! `main` only parses arguments and calls [`App::build`]; tests do the same
//! on port 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

mod farmfiles;
pub use farmfiles::node_token;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::carbon::client::ConnectionHabit;
use crate::config::file::Settings;
use crate::config::{
    DatabaseArgs, EncoderArgs, EncoderOptions, PortalArgs, PortalOptions, ServeArgs,
};
use crate::encoder::paths::PathPolicy;
use crate::encoder::preset::{Presets, SEED_PRESET};
use crate::encoder::server::{self, Habit, Limits};
use crate::encoder::{Encoder, EncoderConfig};
use crate::metrics::Metrics;
use crate::portal::session::SessionKeys;
use crate::portal::{Portal, PortalConfig};
use crate::store::{DatabaseUrl, Db};

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
        Ok(dirs)
    }

    /// Takes the data folder for `role` (`encoder` or `portal`): one of each
    /// may share a folder, never two of the same (they would both repair
    /// and clean up after the other's live work). Then removes the staging
    /// copies a crash of that role left in `public`, the folder it writes.
    fn claim(&self, role: &str, public: &Path) -> anyhow::Result<std::fs::File> {
        let path = self.root.join(format!("{role}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another videoshare {role} is already using the data folder {} (it holds {}); \
                 give each {role} its own --data",
                self.root.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        crate::fsutil::remove_staging_leftovers(public)
            .with_context(|| format!("cannot clean {}", public.display()))?;
        Ok(file)
    }
}

/// A running videoshare: portal, encoder or both, and their tasks.
pub struct App {
    http_addr: Option<SocketAddr>,
    carbon_addr: Option<SocketAddr>,
    carbon_coder_addr: Option<SocketAddr>,
    dirs: DataDirs,
    /// Held while running: see [`DataDirs::claim`].
    _locks: Vec<std::fs::File>,
    /// What the parts count, served at the portal's `/metrics`.
    metrics: Arc<Metrics>,
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

/// How long the embedded encoder may take to answer the portal.
const ENCODER_TIMEOUT: Duration = Duration::from_secs(10);

/// How the portal reaches its encoder and names its folders to it.
struct EncoderLink {
    addr: String,
    habit: ConnectionHabit,
    /// How long the encoder may take to answer one request.
    timeout: Duration,
    uploaded: String,
    streams: String,
}

impl App {
    /// Portal and encoder in one process: the portal talks to the encoder
    /// over the Carbon socket on loopback, as it would to any Carbon server:
    /// through the Carbon Coder-style listener, one connection per request,
    /// exactly as it would to a real Carbon Coder (through `--carbon`, one
    /// kept connection, when that listener is off).
    pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
        let mut app = App::open(&args.data.data).await?;
        let pool = app.db(&args.database).await?;
        let carbon_addr = app.start_encoder(&args.encoder, pool.clone()).await?;
        let (addr, habit) = match app.carbon_coder_addr {
            Some(coder) => (coder, ConnectionHabit::OnePerRequest),
            None => (carbon_addr, ConnectionHabit::KeepOpen),
        };
        let link = EncoderLink {
            habit,
            timeout: ENCODER_TIMEOUT,
            addr: reachable(addr).to_string(),
            uploaded: app.dirs.uploaded.to_string_lossy().into_owned(),
            streams: app.dirs.streams.to_string_lossy().into_owned(),
        };
        app.start_portal(&args.portal, link, pool).await?;
        Ok(app)
    }

    /// The Carbon encoder alone.
    pub async fn build_encoder(args: &EncoderArgs) -> anyhow::Result<App> {
        let mut app = App::open(&args.data.data).await?;
        let pool = app.db(&args.database).await?;
        app.start_encoder(&args.encoder, pool).await?;
        Ok(app)
    }

    /// The web portal alone, against the Carbon server `args.connect.encoder`.
    pub async fn build_portal(args: &PortalArgs) -> anyhow::Result<App> {
        let mut app = App::open(&args.data.data).await?;
        let pool = app.db(&args.database).await?;
        let local = |dir: &Path| dir.to_string_lossy().into_owned();
        let link = EncoderLink {
            addr: args.connect.encoder.clone(),
            habit: args.encoder_connection.into(),
            timeout: Duration::from_secs(args.connect.timeout_secs),
            uploaded: args
                .encoder_uploaded
                .clone()
                .unwrap_or_else(|| local(&app.dirs.uploaded)),
            streams: args
                .encoder_streams
                .clone()
                .unwrap_or_else(|| local(&app.dirs.streams)),
        };
        let encoder = link.addr.clone();
        app.start_portal(&args.portal, link, pool).await?;
        // Not fatal (the encoder may start later), but say so now rather
        // than at the first upload.
        let probe =
            crate::carbon::Client::with_habit(encoder.clone(), args.encoder_connection.into())
                .with_timeout(Duration::from_secs(3));
        match probe.version().await {
            Ok(v) => {
                tracing::info!(%encoder, product = %v.product, version = %v.version, "Carbon server found")
            }
            Err(e) => {
                tracing::warn!(%encoder, error = %e, "the Carbon server does not answer yet; uploads fail until it does")
            }
        }
        Ok(app)
    }

    async fn open(data: &Path) -> anyhow::Result<App> {
        Ok(App {
            http_addr: None,
            carbon_addr: None,
            carbon_coder_addr: None,
            dirs: DataDirs::create(data)?,
            _locks: Vec::new(),
            metrics: Arc::default(),
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        })
    }

    /// Opens the database `--database` names (`sqlite:`: the data folder's).
    async fn db(&self, args: &DatabaseArgs) -> anyhow::Result<Db> {
        let url = DatabaseUrl::parse(&args.database, &self.dirs.database)?;
        crate::store::open_url(&url)
            .await
            .with_context(|| format!("cannot open the database {}", url.redacted()))
    }

    /// Binds the Carbon socket, recovers interrupted jobs and starts the
    /// scheduler and the socket server.
    async fn start_encoder(
        &mut self,
        options: &EncoderOptions,
        pool: Db,
    ) -> anyhow::Result<SocketAddr> {
        let lock = self.dirs.claim("encoder", &self.dirs.streams)?;
        self._locks.push(lock);
        let dirs = &self.dirs;
        let (listener, carbon_addr) = bind_carbon(&options.carbon, options, "--carbon").await?;
        let coder = if options.carbon_coder.trim().eq_ignore_ascii_case("off") {
            None
        } else {
            Some(bind_carbon(&options.carbon_coder, options, "--carbon-coder").await?)
        };
        let settings = match &options.config {
            Some(file) => Settings::load(file, &self.dirs.streams)?,
            None => Settings::defaults(),
        };
        let presets = Presets::load(settings.presets_dir.as_deref())?;
        let reserved = [
            (self.dirs.uploaded.as_path(), "uploaded/"),
            (self.dirs.streams.as_path(), "streams/"),
        ];
        let checked = settings
            .check_presets(&presets)
            .and_then(|()| settings.check_reserved(&reserved));
        if let Err(reason) = checked {
            let file = options.config.as_deref().unwrap_or(Path::new("-"));
            anyhow::bail!("config file {}: {reason}", file.display());
        }
        let mut roots = vec![dirs.uploaded.clone(), dirs.streams.clone()];
        roots.extend(options.roots.iter().cloned());
        roots.extend(settings.all_roots());
        let mut mappings = settings.mappings.clone();
        if settings.seed_mappings {
            mappings.extend(PathPolicy::seed_mappings(&dirs.uploaded, &dirs.streams));
        }
        let node = match &options.node {
            Some(name) => crate::encoder::farm::check_node_name(name)?,
            None => crate::encoder::farm::default_node_name(),
        };
        let encoder = Encoder::new(
            &EncoderConfig {
                tmp_dir: dirs.tmp_encodes.clone(),
                roots,
                default_dest: dirs.streams.clone(),
                mappings,
                slots: usize::from(options.encode_slots),
                ffmpeg_threads: options.ffmpeg_threads,
                agent_ip: reachable(carbon_addr).ip().to_string(),
                node: node.clone(),
                address: reachable(carbon_addr).to_string(),
                presets,
                stall: Duration::from_secs(options.stall_secs),
                metrics: self.metrics.clone(),
                fetch: farmfiles::fetch_config(&options.files, &node, &dirs.root)?,
                chunking: crate::encoder::chunks::ChunkSettings {
                    threshold: (options.chunk_threshold_secs > 0)
                        .then(|| Duration::from_secs(options.chunk_threshold_secs)),
                    length: Duration::from_secs(options.chunk_secs),
                },
            },
            pool.clone(),
        )
        .await?;
        self.start_file_service(&options.files, &pool).await?;
        let limits = Limits {
            max_frame: usize::try_from(options.carbon_max_frame).unwrap_or(usize::MAX),
            idle_timeout: Duration::from_secs(options.carbon_idle_secs),
            frame_timeout: Duration::from_secs(options.carbon_frame_secs),
            write_timeout: Duration::from_secs(options.carbon_write_secs),
            max_connections: usize::try_from(options.carbon_max_connections).unwrap_or(usize::MAX),
            allow: options.carbon_allow.clone(),
        };
        self.tasks
            .push(encoder.spawn_scheduler(self.shutdown.clone()));
        self.tasks
            .push(encoder.spawn_metrics(self.shutdown.clone()));
        self.tasks.push(encoder.spawn_farm(self.shutdown.clone()));
        self.tasks.extend(crate::ingest::spawn_all(
            &encoder,
            &settings,
            &self.shutdown,
        ));
        if let Some((coder_listener, coder_addr)) = coder {
            self.tasks.push(tokio::spawn(server::serve(
                coder_listener,
                encoder.clone(),
                limits.clone(),
                Habit::OnePerConnection,
                self.shutdown.clone(),
            )));
            tracing::info!(
                "Carbon Coder-style listener (one request per connection) on {coder_addr}"
            );
            self.carbon_coder_addr = Some(coder_addr);
        }
        self.tasks.push(tokio::spawn(server::serve(
            listener,
            encoder,
            limits,
            Habit::KeepOpen,
            self.shutdown.clone(),
        )));
        tracing::info!("Carbon encoder listening on {carbon_addr}");
        tracing::info!(data = %self.dirs.root.display(), "data folder");
        self.carbon_addr = Some(carbon_addr);
        Ok(carbon_addr)
    }

    /// Binds HTTP and starts the portal and its poller.
    async fn start_portal(
        &mut self,
        options: &PortalOptions,
        link: EncoderLink,
        pool: Db,
    ) -> anyhow::Result<SocketAddr> {
        let lock = self.dirs.claim("portal", &self.dirs.uploaded)?;
        self._locks.push(lock);
        let dirs = &self.dirs;
        let session_lifetime =
            Duration::from_secs(options.security.session_days.saturating_mul(86_400));
        let portal = Portal::new(
            PortalConfig {
                uploaded_dir: dirs.uploaded.clone(),
                streams_dir: dirs.streams.clone(),
                tmp_dir: dirs.tmp_uploads.clone(),
                max_upload: options.max_upload,
                poll_interval: Duration::from_millis(options.poll_ms),
                header_timeout: Duration::from_secs(options.http_header_secs),
                body_timeout: Duration::from_secs(options.http_body_secs),
                encoder_addr: link.addr,
                encoder_habit: link.habit,
                encoder_timeout: link.timeout,
                encoder_uploaded: link.uploaded,
                encoder_streams: link.streams,
                metrics: self.metrics.clone(),
                preset: SEED_PRESET,
                session_keys: SessionKeys::load(&dirs.root, session_lifetime)?,
                session_lifetime,
                secure_cookies: options.security.secure_cookies,
                limits: options.security.limits(),
                accounts: options.accounts,
                private_library: options.private_library,
                thumbs_dir: dirs.root.join("thumbs"),
                tus_dir: dirs.root.join("tus"),
                ws_per_client: usize::try_from(options.ws_per_client).unwrap_or(usize::MAX),
            },
            pool,
            self.shutdown.clone(),
        )
        .await?;
        let http_listener = tokio::net::TcpListener::bind(&options.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", options.http))?;
        let http_addr = http_listener.local_addr()?;
        let serving = portal.clone();
        let stop = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = serving.serve(http_listener, stop).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
        self.tasks.push(portal.spawn_poller(self.shutdown.clone()));
        self.tasks
            .push(portal.spawn_housekeeping(self.shutdown.clone()));
        tracing::info!("portal listening on http://{http_addr}");
        self.http_addr = Some(http_addr);
        Ok(http_addr)
    }

    /// The portal's address, when this app runs the portal.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The Carbon socket's address (connections kept open), when this app
    /// runs the encoder.
    pub fn carbon_addr(&self) -> Option<SocketAddr> {
        self.carbon_addr
    }

    /// The Carbon Coder-style socket's address (one request per
    /// connection), when this app runs the encoder and it is not `off`.
    pub fn carbon_coder_addr(&self) -> Option<SocketAddr> {
        self.carbon_coder_addr
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

/// Binds one Carbon listener; one that is not on loopback needs
/// `--carbon-allow`.
async fn bind_carbon(
    addr: &str,
    options: &EncoderOptions,
    flag: &str,
) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let (listener, bound) = server::bind(addr).await.with_context(|| {
        format!(
            "cannot listen for Carbon clients on {addr} ({flag}): is another Carbon server \
                 (or videoshare) using it? Give {flag} another address, or `{flag} off` \
                 for the Carbon Coder-style listener"
        )
    })?;
    if !bound.ip().is_loopback() && options.carbon_allow.is_empty() {
        anyhow::bail!(
            "the Carbon socket on {bound} ({flag}) would take jobs from anyone who can reach it: \
             say who may connect with --carbon-allow CIDR,... (e.g. 10.0.0.0/8), or listen \
             on 127.0.0.1"
        );
    }
    Ok((listener, bound))
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
