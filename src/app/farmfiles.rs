//! The farm's file service and `--fetch` nodes in an encoder process:
//! starting the service (`--file-service`), a fetch node's settings and
//! token (`--fetch`), and `videoshare node-token`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::App;
use crate::config::{FarmFilesOptions, NodeTokenArgs};
use crate::encoder::chunks::FetchConfig;
use crate::encoder::chunks::files::ChunkFiles;
use crate::farmfiles::{FarmFiles, routes, serve, sweep_incoming};
use crate::store::{DatabaseUrl, Db, NodeTokens};

/// Unfinished uploads older than this are removed.
const INCOMING_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How often they are looked for.
const SWEEP_INCOMING_EVERY: Duration = Duration::from_secs(3600);

/// The environment variable that may hold a fetch node's token.
const TOKEN_ENV: &str = "VIDEOSHARE_FETCH_TOKEN";

/// `videoshare node-token NODE`: makes (or replaces) the node's token and
/// prints it; only its SHA-256 is stored.
pub async fn node_token(args: &NodeTokenArgs) -> anyhow::Result<ExitCode> {
    let node = crate::encoder::farm::check_node_name(&args.node)?;
    let default_file = args.data.data.join("videoshare.db");
    let url = DatabaseUrl::parse(&args.database.database, &default_file)?;
    let db = crate::store::open_url(&url)
        .await
        .with_context(|| format!("cannot open the database {}", url.redacted()))?;
    let token = NodeTokens::new(db).issue(&node).await?;
    println!("{token}");
    eprintln!(
        "This is node {node}'s token for the farm's file service; it is not shown again. \
         Start the node with --fetch URL --fetch-token-file FILE (or {TOKEN_ENV}); \
         running node-token again replaces it."
    );
    Ok(ExitCode::SUCCESS)
}

/// A `--fetch` node's settings, with its token; `None` for a node that
/// sees the shared folder.
pub(super) fn fetch_config(
    files: &FarmFilesOptions,
    node: &str,
    data: &Path,
) -> anyhow::Result<Option<FetchConfig>> {
    if files.fetch.is_empty() {
        return Ok(None);
    }
    let token = match (&files.fetch_token_file, std::env::var(TOKEN_ENV)) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?,
        (None, Ok(token)) => token,
        (None, Err(_)) => anyhow::bail!(
            "a --fetch node needs its token: --fetch-token-file FILE or {TOKEN_ENV} \
             (make one with `videoshare node-token {node}`)"
        ),
    };
    let client = FarmFiles::new(files.fetch.clone(), node, token.trim())?;
    let work_dir = data.join("tmp").join("chunks");
    crate::fsutil::reset_dir(&work_dir)?;
    Ok(Some(FetchConfig {
        client: Arc::new(client),
        cache_dir: data.join("fetch"),
        cache_bytes: files.fetch_cache_gb.saturating_mul(1 << 30),
        work_dir,
    }))
}

impl App {
    /// Starts the farm's file service when `--file-service` is set: it
    /// serves `--fetch` nodes the sources of the chunks they hold and
    /// takes back their outputs.
    pub(super) async fn start_file_service(
        &mut self,
        files: &FarmFilesOptions,
        pool: &Db,
    ) -> anyhow::Result<()> {
        let Some(addr) = &files.file_service else {
            return Ok(());
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for the farm's file service on {addr}"))?;
        let bound = listener.local_addr()?;
        if !bound.ip().is_loopback() && files.file_service_allow.is_empty() {
            anyhow::bail!(
                "the file service on {bound} (--file-service) would serve sources to anyone \
                 holding a token: say who may connect with --file-service-allow CIDR,..., or \
                 listen on 127.0.0.1"
            );
        }
        let incoming = match &files.file_service_incoming {
            Some(dir) => dir.clone(),
            None => self.dirs.streams.join(".farm-incoming"),
        };
        std::fs::create_dir_all(&incoming)
            .with_context(|| format!("cannot create {}", incoming.display()))?;
        let authority = Arc::new(ChunkFiles::new(pool.clone()));
        let router = routes(authority, incoming.clone());
        let (allow, shutdown) = (files.file_service_allow.clone(), self.shutdown.clone());
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = serve(listener, router, allow, shutdown).await {
                tracing::error!(error = %e, "the farm's file service stopped");
            }
        }));
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_INCOMING_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        let removed = sweep_incoming(&incoming, INCOMING_MAX_AGE).await;
                        if removed > 0 {
                            tracing::info!(removed, "unfinished uploads older than a day removed");
                        }
                    }
                    _ = shutdown.cancelled() => return,
                }
            }
        }));
        tracing::info!("farm file service listening on {bound}");
        Ok(())
    }
}
