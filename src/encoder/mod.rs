//! The Carbon-compatible encoder: accepts jobs over the Carbon socket, keeps
//! them in a durable queue and runs ffmpeg on them.
//!
//! Owns the job state machine ([`job`]), the scheduler ([`scheduler`]), job
//! control by `JobCommand` ([`control`]), the ffmpeg runner ([`ffmpeg`]),
//! presets ([`preset`]), path mapping and allowed roots ([`paths`]) and the
//! socket server ([`server`]). Every ingest path ends in [`Encoder::submit`].
//! It must not know about HTTP or HTML: the portal reaches it only through
//! the Carbon protocol.

pub mod control;
pub mod ffmpeg;
pub mod job;
pub mod paths;
pub mod preset;
pub mod scheduler;
pub mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::carbon::guid::InvalidGuid;
use crate::carbon::message::NodeStatus;
use crate::carbon::message::{
    AudioDescription, Destination, EvaluatedSource, JobQueue, JobStatusList, NodeCommand, Profile,
    PublicDescription, Source, VersionInfo, VideoDescription,
};
use crate::carbon::{Guid, JobEntry, JobStatus, Reply, Request, latin1};
use crate::metrics::Metrics;
use crate::store::jobs::Destination as StoredDestination;
use crate::store::{JobStore, NewJob, StoreError};
use paths::{PathError, PathMapping, PathPolicy};
use preset::{Preset, Presets};

/// Priority of a job that does not ask for one.
pub const DEFAULT_PRIORITY: u32 = 100;

/// The highest priority Carbon allows.
pub const MAX_PRIORITY: u32 = 255;

/// The Carbon API level this encoder implements, reported by `Version`.
pub const API_VERSION: &str = "1.2";

/// What the encoder needs to run.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    /// Where encodes are written before being moved into place.
    pub tmp_dir: PathBuf,
    /// Folders jobs may read from and write to.
    pub roots: Vec<PathBuf>,
    /// Client path prefixes and the local folders they mean.
    pub mappings: Vec<PathMapping>,
    /// How many encodes run at once.
    pub slots: usize,
    /// Written as `AgentIP` for jobs this node runs.
    pub agent_ip: String,
    /// The presets jobs may name.
    pub presets: Presets,
    /// An encode whose output time does not move for this long is killed.
    pub stall: std::time::Duration,
    /// Where requests, queue waits and encode times are counted.
    pub metrics: Arc<Metrics>,
}

/// Why a request could not be carried out; the text becomes the reply's `Error`.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("the job has no source: add <Sources><Module_0 Filename=\"...\"/></Sources>")]
    NoSource,
    #[error("the job has {0} sources; joining several sources is not supported, send one per job")]
    SeveralSources(usize),
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
    UnknownPreset(Guid, String),
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
    #[error("no job has GUID {0}")]
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
    #[error("cannot evaluate {file}: {reason}")]
    Evaluate { file: String, reason: String },
    #[error("filter: {0}")]
    Filter(#[from] job::FilterError),
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

/// Checks a requested priority is one Carbon allows.
fn check_priority(priority: u32) -> Result<u32, EncoderError> {
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
    presets: Presets,
    paths: PathPolicy,
    tmp_dir: PathBuf,
    agent_ip: String,
    slots: usize,
    stall: std::time::Duration,
    metrics: Arc<Metrics>,
    /// The jobs this node's workers are running.
    running: control::Running,
    /// Woken whenever a job may have become runnable.
    wake: Notify,
}

impl Encoder {
    /// Prepares the encoder on `pool`: clears temp files a crash left behind
    /// and repairs jobs it left mid-flight (see [`JobStore::recover_interrupted`]).
    pub async fn new(config: &EncoderConfig, pool: SqlitePool) -> anyhow::Result<Encoder> {
        let stale = crate::fsutil::reset_dir(&config.tmp_dir)?;
        let paths = PathPolicy::new(&config.roots, &config.mappings)?;
        let jobs = JobStore::new(pool);
        let recovered = jobs.recover_interrupted().await?;
        if recovered > 0 || stale > 0 {
            tracing::info!(
                recovered,
                stale_temp_files = stale,
                "recovered from an interrupted run"
            );
        }
        Ok(Encoder {
            inner: Arc::new(Inner {
                jobs,
                presets: config.presets.clone(),
                paths,
                tmp_dir: config.tmp_dir.clone(),
                agent_ip: config.agent_ip.clone(),
                slots: config.slots.max(1),
                stall: config.stall,
                metrics: config.metrics.clone(),
                running: control::Running::default(),
                wake: Notify::new(),
            }),
        })
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

    /// A job's status and description, if the job exists.
    pub async fn job_state(&self, guid: Guid) -> Result<Option<(JobStatus, String)>, StoreError> {
        Ok(self
            .inner
            .jobs
            .get(guid)
            .await?
            .map(|job| (job.status, job.description)))
    }

    /// Answers one request payload with one reply payload.
    pub async fn handle_payload(&self, payload: &[u8]) -> Vec<u8> {
        let reply = match Request::parse(&latin1::decode(payload)) {
            Ok(request) => self.handle(request).await,
            Err(e) => {
                tracing::info!(error = %e, "refused a Carbon request");
                self.inner.metrics.carbon_request("invalid", false);
                Reply::Failed {
                    error: e.to_string(),
                }
            }
        };
        reply.to_payload()
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Reply {
        let task = request.task_type();
        let result = match request {
            Request::JobQueue(job) => self
                .submit(job, Guid::new_random())
                .await
                .map(|guid| Reply::Queued { guid }),
            Request::JobStatusList(list) => self
                .status_list(&list)
                .await
                .map(|jobs| Reply::StatusList { jobs }),
            Request::JobList => self
                .inner
                .jobs
                .guids()
                .await
                .map(|guids| Reply::JobList { guids })
                .map_err(EncoderError::from),
            Request::JobCommand(c) => self.command(c.guid, c.command).await,
            Request::JobEvaluate(e) => self
                .evaluate(&e.sources)
                .await
                .map(|sources| Reply::Evaluated { sources }),
            Request::ProfileList(list) => Ok(Reply::Profiles {
                profiles: self.profiles(list.profile_type.as_deref()),
            }),
            Request::Version => Ok(Reply::Version(VersionInfo {
                product: "videoshare".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                api_version: API_VERSION.to_owned(),
            })),
            Request::NodeCommand(command) => self.node_status().await.map(|node| match command {
                NodeCommand::GetNodeStatus => Reply::Node(node),
                NodeCommand::GetServerNodeStatus => Reply::ServerNodes { nodes: vec![node] },
            }),
        };
        self.inner
            .metrics
            .carbon_request(task.as_str(), result.is_ok());
        result.unwrap_or_else(|e| {
            tracing::info!(error = %e, %task, "Carbon request failed");
            Reply::Failed {
                error: e.to_string(),
            }
        })
    }

    /// Validates a `JobQueue` and stores it as job `guid`; returns once the
    /// job is durable. Every ingest path comes through here: the socket
    /// with a fresh GUID, the job folders with one they recorded first, so a
    /// restart never submits a file twice.
    pub async fn submit(&self, request: JobQueue, guid: Guid) -> Result<Guid, EncoderError> {
        let source = match request.sources.as_slice() {
            [] => return Err(EncoderError::NoSource),
            [one] => one,
            many => return Err(EncoderError::SeveralSources(many.len())),
        };
        if request.destinations.is_empty() {
            return Err(EncoderError::NoDestination);
        }
        let priority = check_priority(request.priority.unwrap_or(DEFAULT_PRIORITY))?;
        let source_path = self
            .inner
            .paths
            .resolve_file(&source.filename)
            .map_err(EncoderError::Source)?
            .into_path_buf();
        let destinations = request
            .destinations
            .iter()
            .enumerate()
            .map(|(index, d)| {
                self.destination(d, &source_path)
                    .map_err(|error| EncoderError::InDestination {
                        index,
                        error: Box::new(error),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let file_name = source_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let job = self
            .inner
            .jobs
            .insert(NewJob {
                guid,
                name: request
                    .job_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(file_name),
                user: request.user.unwrap_or_default(),
                priority,
                source_path,
                destinations,
            })
            .await?;
        tracing::info!(guid = %job.guid, source = %job.source_path.display(), "job queued");
        self.inner.wake.notify_one();
        Ok(job.guid)
    }

    /// Checks one destination: a known preset, an allowed folder and a plain
    /// output base name.
    fn destination(
        &self,
        destination: &Destination,
        source_path: &Path,
    ) -> Result<StoredDestination, EncoderError> {
        let preset_guid: Guid = destination
            .preset()
            .ok_or(EncoderError::NoPreset)?
            .parse()
            .map_err(EncoderError::BadPresetGuid)?;
        let presets = &self.inner.presets;
        if presets.get(preset_guid).is_none() {
            let known: Vec<String> = presets
                .iter()
                .map(|p| format!("{} ({})", p.guid, p.name))
                .collect();
            return Err(EncoderError::UnknownPreset(preset_guid, known.join(", ")));
        }
        let dest_dir = self
            .inner
            .paths
            .resolve_dir(
                destination
                    .module_data
                    .path
                    .as_deref()
                    .ok_or(EncoderError::NoDestinationPath)?,
            )
            .map_err(EncoderError::Destination)?
            .into_path_buf();
        let base_name = output_base_name(
            destination.module_data.base_file_name.as_deref(),
            source_path,
        )?;
        Ok(StoredDestination {
            preset_guid,
            dest_dir,
            base_name,
            output_path: None,
        })
    }

    async fn status_list(&self, list: &JobStatusList) -> Result<Vec<JobEntry>, EncoderError> {
        job::validate(&list.criteria)?;
        let candidates = match job::guid_criterion(&list.criteria)? {
            // The common case (the seed polls one GUID): one indexed lookup.
            Some(guid) => self.inner.jobs.get(guid).await?.into_iter().collect(),
            None => self.inner.jobs.all().await?,
        };
        let positions = if candidates.len() > 1 {
            Some(self.inner.jobs.queue_positions().await?)
        } else {
            None
        };
        let mut entries = Vec::new();
        for job in candidates {
            let mut entry = job::entry(&job, &self.inner.agent_ip);
            self.add_live_facts(&mut entry, positions.as_ref()).await?;
            let mut keep = true;
            for criterion in &list.criteria {
                keep &= job::matches(&job, &entry, criterion)?;
            }
            if keep {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Adds what only this node knows live (videoshare's extensions): the
    /// rate of a running encode, the place of a waiting job. `positions`
    /// holds every place when many jobs are listed at once.
    async fn add_live_facts(
        &self,
        entry: &mut JobEntry,
        positions: Option<&HashMap<Guid, u32>>,
    ) -> Result<(), EncoderError> {
        let two_places = |x: f64| (x * 100.0).round() / 100.0;
        match entry.status {
            JobStatus::Started => {
                // ffmpeg says 0 until it has timed a few frames: not known yet.
                if let Some(rate) = self.inner.running.rate(entry.guid) {
                    entry.fps = (rate.fps > 0.0).then(|| two_places(rate.fps));
                    entry.speed = (rate.speed > 0.0).then(|| two_places(rate.speed));
                }
            }
            JobStatus::Queued => {
                entry.queue_position = match positions {
                    Some(all) => all.get(&entry.guid).copied(),
                    None => self.inner.jobs.queue_position(entry.guid).await?,
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// `JobEvaluate`: probes each source (through the same path policy as a
    /// job's) and describes it; the first one that cannot be read fails the
    /// request, naming it.
    async fn evaluate(&self, sources: &[Source]) -> Result<Vec<EvaluatedSource>, EncoderError> {
        if sources.is_empty() {
            return Err(EncoderError::NothingToEvaluate);
        }
        let mut evaluated = Vec::with_capacity(sources.len());
        for source in sources {
            let failed = |reason: String| EncoderError::Evaluate {
                file: source.filename.clone(),
                reason,
            };
            let path = self
                .inner
                .paths
                .resolve_file(&source.filename)
                .map_err(|e| failed(e.to_string()))?;
            let info = crate::media::probe(path.as_path())
                .await
                .map_err(|e| failed(e.to_string()))?;
            evaluated.push(EvaluatedSource {
                filename: source.filename.clone(),
                format: info.format_name,
                description: PublicDescription {
                    video: info.video.map(|v| VideoDescription {
                        width: v.width,
                        height: v.height,
                        frame_rate: v.frame_rate,
                        duration: info.duration,
                        codec: v.codec,
                    }),
                    audio: info.audio.map(|a| AudioDescription {
                        sample_rate: a.sample_rate,
                        channels: a.channels,
                        codec: a.codec,
                    }),
                },
            });
        }
        Ok(evaluated)
    }

    /// `ProfileList`: every preset is a `Destination` profile; asking for any
    /// other `ProfileType` lists none.
    fn profiles(&self, profile_type: Option<&str>) -> Vec<Profile> {
        let wanted = profile_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .is_none_or(|t| t.eq_ignore_ascii_case(preset::PROFILE_TYPE));
        if !wanted {
            return Vec::new();
        }
        self.inner.presets.iter().map(profile).collect()
    }

    /// `NodeCommand`: this node's slots and load.
    async fn node_status(&self) -> Result<NodeStatus, EncoderError> {
        let running = self.inner.running.len();
        let queued = self.inner.jobs.count(&[JobStatus::Queued]).await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(NodeStatus {
            name: "videoshare".to_owned(),
            ip: self.inner.agent_ip.clone(),
            enabled: 1,
            priority: DEFAULT_PRIORITY,
            slots: count(self.inner.slots),
            free_slots: count(self.inner.slots.saturating_sub(running)),
            running_jobs: count(running),
            queued_jobs: u32::try_from(queued).unwrap_or(u32::MAX),
        })
    }
}

/// A preset as a Carbon profile.
fn profile(p: &Preset) -> Profile {
    Profile {
        guid: p.guid,
        name: p.name.clone(),
        description: p.description.clone(),
        profile_type: preset::PROFILE_TYPE.to_owned(),
        container: p.container.clone(),
        extension: p.extension.clone(),
        video_codec: p.video.as_ref().map(|v| v.codec.clone()),
        video_kbps: p.video.as_ref().map(|v| v.bitrate_kbps),
        width: p.video.as_ref().map(|v| v.width),
        height: p.video.as_ref().map(|v| v.height),
        audio_codec: p.audio.as_ref().map(|a| a.codec.clone()),
        audio_kbps: p.audio.as_ref().map(|a| a.bitrate_kbps),
    }
}

/// `CML_P_BaseFileName` with `%s` replaced by the source's name without its
/// extension; the default is `%s`.
fn output_base_name(template: Option<&str>, source: &Path) -> Result<String, EncoderError> {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let template = template
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("%s");
    let name = template.replace("%s", &stem);
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if plain {
        Ok(name)
    } else {
        Err(EncoderError::BadBaseName(template.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_from_template() {
        let src = Path::new("/data/uploaded/holiday.flv");
        assert_eq!(output_base_name(None, src).ok().as_deref(), Some("holiday"));
        assert_eq!(
            output_base_name(Some("%s"), src).ok().as_deref(),
            Some("holiday")
        );
        assert_eq!(
            output_base_name(Some("web-%s-480p"), src).ok().as_deref(),
            Some("web-holiday-480p")
        );
        for bad in ["../x", "a/b", "a\\b", ".hidden", "a\nb"] {
            assert!(output_base_name(Some(bad), src).is_err(), "{bad:?}");
        }
    }
}
