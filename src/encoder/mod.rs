//! The Carbon-compatible encoder: accepts jobs over the Carbon socket, keeps
//! them in a durable queue and runs ffmpeg on them.
//!
//! Owns the job state machine ([`job`]), the scheduler ([`scheduler`]), job
//! control ([`control`], which owns the registry of running jobs the
//! scheduler asks), why jobs fail ([`failure`]), the ffmpeg runner
//! ([`ffmpeg`]), a long job's chunks' command lines and joins ([`chunks`]),
//! an HLS ladder's folder while it encodes ([`live_folder`]),
//! this process as a node of a farm: its leases and sweeps ([`farm`]), presets
//! ([`preset`]), path mapping and allowed roots ([`paths`]), one handler
//! per Carbon task type ([`tasks`]) and the socket server ([`server`]).
//! Every ingest path ends in [`Encoder::submit`].
//! Long jobs are encoded in chunks across the farm ([`chunks`]).
//! It must not know about HTTP or HTML: the portal reaches it only through
//! the Carbon protocol, and a `--fetch` node's transfers go through the
//! typed client of [`crate::farmfiles`].

pub mod chunks;
pub mod control;
pub mod failure;
pub mod farm;
pub mod ffmpeg;
pub mod job;
pub mod live_folder;
mod outcome;
pub mod paths;
pub mod preset;
pub mod scheduler;
pub mod server;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::Db;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::carbon::guid::InvalidGuid;
use crate::carbon::{Guid, JobStatus, PresetId};
use crate::metrics::Metrics;
use crate::store::jobs::Repair;
use crate::store::{Backend, ChunkRepair, ChunkStore, JobStore, NodeInfo, NodeStore, StoreError};
use paths::{PathError, PathMapping, PathPolicy};
use preset::Presets;

/// Priority of a job that does not ask for one.
pub const DEFAULT_PRIORITY: u32 = 100;

/// The highest priority Carbon allows.
pub const MAX_PRIORITY: u32 = 255;

/// What the encoder needs to run.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    /// Where encodes are written before being moved into place.
    pub tmp_dir: PathBuf,
    /// Folders jobs may read from and write to.
    pub roots: Vec<PathBuf>,
    /// Where a destination without `CML_P_Path` writes (the presets' own
    /// folder: the data folder's `streams/`).
    pub default_dest: PathBuf,
    /// Client path prefixes and the local folders they mean.
    pub mappings: Vec<PathMapping>,
    /// How many encodes run at once.
    pub slots: usize,
    /// Threads each encode's ffmpeg may use (`None`: ffmpeg chooses).
    pub ffmpeg_threads: Option<u32>,
    /// Written as `AgentIP` for jobs this node runs.
    pub agent_ip: String,
    /// This node's name in the farm (checked: [`farm::check_node_name`]).
    pub node: String,
    /// Where this node's Carbon listener is, for the other nodes.
    pub address: String,
    /// The presets jobs may name.
    pub presets: Presets,
    /// An encode whose output time does not move for this long is killed.
    pub stall: std::time::Duration,
    /// Where requests, queue waits and encode times are counted.
    pub metrics: Arc<Metrics>,
    /// Which jobs are encoded in chunks across the farm.
    pub chunking: chunks::ChunkSettings,
    /// Set on a node that does not see the shared folder: it takes only
    /// chunks, fetching their sources over the farm's file service.
    pub fetch: Option<chunks::FetchConfig>,
}

/// Why a request could not be carried out; its text becomes the reply's
/// `Error` in one place, [`Encoder::handle`].
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("the job has no source: add <Sources><Module_0 Filename=\"...\"/></Sources>")]
    NoSource,
    #[error(
        "the job has {0} sources; several sources (Stitching) are not supported: send one job per source"
    )]
    SeveralSources(usize),
    #[error(
        "the MultiSource has no video track (StreamType_0.DWD=\"1\"); videoshare needs a picture"
    )]
    MultiSourceWithoutVideo,
    #[error("source Module_0: {0}")]
    InSource(Box<EncoderError>),
    #[error("FileCopy_{index}: {error}")]
    FileCopyFolder { index: usize, error: PathError },
    #[error("FileCopy_{index}: TargetFile {name:?} must be a plain file name (no folders)")]
    FileCopyName { index: usize, name: String },
    #[error("FileCopy on an HLS ladder destination is not supported yet (its output is a folder)")]
    LadderCopy,
    #[error(
        "an HLS ladder's folder cannot have '%' in its path ({0}): ffmpeg reads it as a pattern; choose a DestinationBaseName (and folder) without it"
    )]
    LadderPercent(String),
    #[error(
        "no node with IP or name {0:?} in this farm: NodeList gives each node's IP (IP:PORT when several share one)"
    )]
    NoSuchNode(String),
    #[error("Priority.DWD of another node is set on that node's own Carbon socket")]
    RemotePriority,
    #[error(
        "Slots.DWD cannot change while the encoder runs ({0} slots): restart it with --encode-slots N"
    )]
    SlotsFixed(usize),
    #[error("the job has no destination: add <Destinations><Module_0 PresetGUID=\"{{...}}\">...")]
    NoDestination,
    #[error("destination Module_{index}: {error}")]
    InDestination {
        index: usize,
        error: Box<EncoderError>,
    },
    #[error("the destination names no preset: set PresetGUID (or ModuleGUID)")]
    NoPreset,
    #[error("PresetGUID: {0}")]
    BadPresetGuid(InvalidGuid),
    #[error("unknown preset {0}; this encoder has: {1}")]
    UnknownPreset(PresetId, String),
    #[error("the destination has no folder: set ModuleData CML_P_Path")]
    NoDestinationPath,
    #[error("source: {0}")]
    Source(PathError),
    #[error("destination folder (CML_P_Path): {0}")]
    Destination(PathError),
    #[error(
        "CML_P_BaseFileName {0:?} must be a plain file name (no folders, no control characters)"
    )]
    BadBaseName(String),
    #[error("Priority.DWD {0} is out of range 0-{MAX_PRIORITY}")]
    BadPriority(u32),
    #[error("no job with GUID {0}")]
    NoSuchJob(Guid),
    #[error("cannot {command} job: it is {status} ({command} applies to {accepts} jobs)")]
    CannotCommand {
        command: &'static str,
        status: JobStatus,
        accepts: &'static str,
    },
    #[error("job {0} is being handed to or from an encode slot; send the command again")]
    InTransit(Guid),
    #[error("job {0} kept changing status; try the command again")]
    Busy(Guid),
    #[error("JobEvaluate has no source: add <Sources><Module_0 Filename=\"...\"/></Sources>")]
    NothingToEvaluate,
    #[error("cannot evaluate {file}: {error}")]
    EvaluatePath { file: String, error: PathError },
    #[error("cannot evaluate {file}: {error}")]
    EvaluateProbe {
        file: String,
        error: crate::media::ProbeError,
    },
    #[error("filter: {0}")]
    Filter(#[from] job::FilterError),
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

/// Checks a requested priority is one Carbon allows.
pub(crate) fn check_priority(priority: u32) -> Result<u32, EncoderError> {
    if priority > MAX_PRIORITY {
        Err(EncoderError::BadPriority(priority))
    } else {
        Ok(priority)
    }
}

/// The encoder service. Cheap to clone.
#[derive(Clone)]
pub struct Encoder {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: JobStore,
    nodes: NodeStore,
    node_id: farm::NodeId,
    presets: Presets,
    paths: PathPolicy,
    tmp_dir: PathBuf,
    default_dest: PathBuf,
    /// Whether this node takes jobs (`NodeCommand SetNodeStatus`).
    node: tasks::NodeState,
    agent_ip: String,
    slots: usize,
    ffmpeg_threads: Option<u32>,
    stall: std::time::Duration,
    metrics: Arc<Metrics>,
    /// The jobs this node's workers are running.
    running: control::Running,
    /// The chunks of jobs (any node's) this node's slots are encoding.
    chunk_workers: control::Running<(Guid, u32)>,
    chunks: ChunkStore,
    chunking: chunks::ChunkSettings,
    fetch: Option<chunks::FetchConfig>,
    /// Woken when a chunk of any job is done or failed (conductors look).
    chunk_done: Notify,
    /// Woken whenever a job may have become runnable.
    wake: Notify,
    /// What this node's row says to operators now (see `set_note`).
    note: parking_lot::Mutex<String>,
    /// Every node's Carbon identity by name (a job's `AgentIP`).
    agents: parking_lot::RwLock<std::collections::HashMap<String, String>>,
}

impl Encoder {
    /// Prepares the encoder on `pool`: clears temp files a crash left behind,
    /// registers this node, and repairs jobs it left mid-flight (see
    /// [`JobStore::repair`]).
    pub async fn new(config: &EncoderConfig, pool: Db) -> anyhow::Result<Encoder> {
        let stale = crate::fsutil::reset_dir(&config.tmp_dir)?;
        let paths = PathPolicy::new(&config.roots, &config.mappings)?;
        let exclusive = pool.backend() == Backend::Sqlite;
        let jobs = JobStore::new(pool.clone());
        let chunk_store = ChunkStore::new(pool.clone());
        let nodes = NodeStore::new(pool);
        let node_id = farm::NodeId::new(config.node.clone());
        let info = NodeInfo {
            name: node_id.name.clone(),
            instance: node_id.instance.clone(),
            address: config.address.clone(),
            slots: u32::try_from(config.slots.max(1)).unwrap_or(u32::MAX),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            encoders: installed_encoders(),
        };
        farm::register(&nodes, &info, exclusive).await?;
        // Before the jobs are requeued: a ladder folder a crash left
        // mid-encode is found through its job's recorded output.
        let mine = Repair::HeldBy(&node_id.name);
        let ladders = live_folder::clean_interrupted(&jobs, mine).await?;
        let recovered = jobs
            .repair(mine, control::STOPPED_BY_COMMAND, job::allowed_from)
            .await?
            .len();
        chunk_store
            .repair(ChunkRepair::HeldBy(&node_id.name))
            .await?;
        if recovered > 0 || stale > 0 || ladders > 0 {
            tracing::info!(
                recovered,
                ladder_folders_removed = ladders,
                stale_temp_files = stale,
                "recovered from an interrupted run"
            );
        }
        tracing::info!(node = %node_id.name, "encoder node registered");
        let encoder = Encoder {
            inner: Arc::new(Inner {
                jobs,
                nodes,
                node_id,
                presets: config.presets.clone(),
                paths,
                tmp_dir: config.tmp_dir.clone(),
                default_dest: config.default_dest.clone(),
                node: tasks::NodeState::default(),
                agent_ip: config.agent_ip.clone(),
                slots: config.slots.max(1),
                ffmpeg_threads: config.ffmpeg_threads,
                stall: config.stall,
                metrics: config.metrics.clone(),
                running: control::Running::default(),
                chunk_workers: control::Running::default(),
                chunks: chunk_store,
                chunking: config.chunking,
                fetch: config.fetch.clone(),
                chunk_done: Notify::new(),
                wake: Notify::new(),
                note: parking_lot::Mutex::default(),
                agents: parking_lot::RwLock::default(),
            }),
        };
        // Disabled by `NodeCommand SetNodeStatus` before a restart: still.
        encoder.refresh_enabled().await;
        if !encoder.inner.node.is_enabled() {
            tracing::warn!(
                "this node is disabled: it takes no job until enabled (NodeCommand SetNodeStatus Enabled.DWD=\"1\", or `videoshare nodes enable`)"
            );
        }
        Ok(encoder)
    }

    /// This node's name in the farm.
    pub fn node_name(&self) -> &str {
        &self.inner.node_id.name
    }

    pub fn presets(&self) -> &Presets {
        &self.inner.presets
    }

    /// Keeps the jobs-by-status gauges current (every 2 s) until `shutdown`.
    pub fn spawn_metrics(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let encoder = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = tick.tick() => encoder.refresh_job_gauges().await,
                    _ = shutdown.cancelled() => return,
                }
            }
        })
    }

    async fn refresh_job_gauges(&self) {
        let counts = match self.inner.jobs.counts_by_status().await {
            Ok(counts) => counts,
            Err(e) => return tracing::warn!(error = %e, "cannot count jobs for metrics"),
        };
        for status in JobStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            let labels = crate::metrics::StatusLabels {
                status: status.as_str(),
            };
            self.inner
                .metrics
                .jobs
                .get_or_create(&labels)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A job's status and why it failed, if the job exists.
    pub async fn job_state(&self, guid: Guid) -> Result<Option<(JobStatus, String)>, StoreError> {
        Ok(self
            .inner
            .jobs
            .get(guid)
            .await?
            .map(|job| (job.status, job.failure)))
    }
}

/// The ffmpeg encoders this machine has, sorted (empty when ffmpeg cannot
/// be asked).
fn installed_encoders() -> Vec<String> {
    let mut names: Vec<String> = preset::ffmpeg_encoders()
        .unwrap_or_default()
        .into_iter()
        .collect();
    names.sort();
    names
}
