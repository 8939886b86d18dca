//! One chunk's encode on this node: claimed by a free slot (or by the
//! job's conductor), encoded into a hidden folder in the job's chunk
//! folder, renamed into place and delivered with a fenced write. A chunk
//! follows its job: paused, continued or dropped (and put back in the
//! queue) as the job's row says, whatever node conducts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::FetchConfig;
use super::args::{Window, audio_chunk_args, video_chunk_args};
use super::plan::{ChunkSpec, SpecAudio, piece_name, writes_piece};
use crate::carbon::{Guid, JobStatus};
use crate::encoder::control::Control;
use crate::encoder::{Encoder, farm, ffmpeg};
use crate::farmfiles::{ChunkId, FetchError, SourceKind, trim_cache};
use crate::store::{Chunk, ChunkKind, ChunkLease, ChunkPlan, ChunkRate, ChunkStore};

/// A chunk this node holds, with what it needs to encode it.
pub(in crate::encoder) struct HeldChunk {
    pub chunk: Chunk,
    pub lease: ChunkLease,
    pub plan: ChunkPlan,
    pub spec: ChunkSpec,
}

/// How a chunk's run ended.
#[derive(Debug, PartialEq)]
pub(super) enum ChunkEnd {
    Delivered,
    /// Put back in the queue (a stop or a shutdown): another run takes it.
    Released,
    /// ffmpeg failed on it: the job fails with this reason.
    Failed(String),
    /// The lease was lost: another node may have it; nothing was written.
    Lost,
}

/// Why an encode did not give a piece.
enum NoPiece {
    Lost,
    Failed(String),
    /// A `--fetch` node could not fetch the source or send the piece (the
    /// service is down, or the bytes kept arriving wrong): the chunk is
    /// put back for any node.
    Transfer(String),
}

/// What an encode gave.
enum Piece {
    /// Its folder's name in the job's chunk folder: to be delivered.
    Placed(String),
    /// Sent to the farm's file service, which placed and delivered it.
    Sent,
}

impl From<FetchError> for NoPiece {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Stale(_) => NoPiece::Lost,
            // What the service can never take (a bad request) fails the
            // chunk, saying why, rather than going round for ever.
            FetchError::Invalid(_) | FetchError::Refused { status: 400, .. } => {
                NoPiece::Failed(e.to_string())
            }
            e => NoPiece::Transfer(e.to_string()),
        }
    }
}

/// Puts a chunk back in the queue if its run is dropped midway (the job
/// was stopped or its conductor dropped the encode), so no lease is left
/// to run out and be counted as a node's death.
struct ReleaseOnDrop {
    store: ChunkStore,
    lease: Option<ChunkLease>,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let (Some(lease), Ok(runtime)) = (self.lease.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = self.store.clone();
        runtime.spawn(async move {
            if let Err(e) = store.release(&lease).await {
                tracing::warn!(error = %e, "could not put a dropped chunk back in the queue");
            }
        });
    }
}

/// Removes a chunk's unfinished folder unless it was renamed into place.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The spec of a held chunk with its files fetched into this node's cache
/// (verified by SHA-256): a `--fetch` node reads those.
async fn fetch_sources(held: &HeldChunk, fetch: &FetchConfig) -> Result<ChunkSpec, NoPiece> {
    let mut spec = held.spec.clone();
    let no_digest = || NoPiece::Failed("the chunk plan has no digest of the source".into());
    let source_sha = spec.source_sha256.clone().ok_or_else(no_digest)?;
    let audio_sha = match &spec.audio {
        SpecAudio::File(_) => Some(spec.audio_sha256.clone().ok_or_else(no_digest)?),
        _ => None,
    };
    let (dir, bytes) = (fetch.cache_dir.clone(), fetch.cache_bytes);
    let keep: Vec<String> = std::iter::once(source_sha.clone())
        .chain(audio_sha.clone())
        .collect();
    let trimmed = crate::fsutil::off_runtime(move || {
        std::fs::create_dir_all(&dir)?;
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        trim_cache(&dir, bytes, &keep)
    })
    .await;
    if let Err(e) = trimmed {
        tracing::warn!(error = %e, "cannot trim the fetched sources");
    }
    let (client, cache) = (&fetch.client, &fetch.cache_dir);
    let guid = held.lease.job;
    spec.source = client
        .fetch_source(guid, SourceKind::Video, &source_sha, cache)
        .await?;
    if let Some(sha) = audio_sha {
        let file = client
            .fetch_source(guid, SourceKind::Audio, &sha, cache)
            .await?;
        spec.audio = SpecAudio::File(file);
    }
    Ok(spec)
}

impl Encoder {
    /// Claims a queued chunk whose source this node can see.
    pub(in crate::encoder) async fn claim_chunk(
        &self,
    ) -> Result<Option<HeldChunk>, crate::store::StoreError> {
        let me = &self.inner.node_id.name;
        let fetches = self.inner.fetch.is_some();
        let can_see = |file: &Path| fetches || file.is_file();
        let claimed = self
            .inner
            .chunks
            .claim(me, farm::lease_ms(), None, &can_see)
            .await?;
        Ok(match claimed {
            Some((chunk, lease, _)) => self.hold_chunk(chunk, lease).await,
            None => None,
        })
    }

    /// The plan of a claimed chunk; `None` (and the chunk put back) when
    /// the plan is gone or unreadable.
    pub(in crate::encoder) async fn hold_chunk(
        &self,
        chunk: Chunk,
        lease: ChunkLease,
    ) -> Option<HeldChunk> {
        let store = &self.inner.chunks;
        let plan = match store.plan_of(lease.job).await {
            Ok(Some(plan)) => plan,
            Ok(None) => {
                let _ = store.release(&lease).await;
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a chunk's plan");
                let _ = store.release(&lease).await;
                return None;
            }
        };
        match serde_json::from_str::<ChunkSpec>(&plan.spec) {
            Ok(spec) => Some(HeldChunk {
                chunk,
                lease,
                plan,
                spec,
            }),
            Err(e) => {
                let reason = format!("the chunk plan cannot be read: {e}");
                let _ = store.fail(&lease, &reason).await;
                None
            }
        }
    }

    /// Runs a chunk a free slot claimed: registered so commands to its job
    /// and lease losses reach it.
    pub(in crate::encoder) async fn run_claimed_chunk(
        &self,
        held: HeldChunk,
        shutdown: CancellationToken,
    ) {
        let key = (held.lease.job, held.lease.idx);
        let registration = self.inner.chunk_workers.register(key, held.lease.attempt);
        let control = registration.control.clone();
        let end = self.run_chunk(&held, &control, &shutdown).await;
        tracing::info!(guid = %key.0, chunk = key.1, ?end, "chunk run ended");
        drop(registration);
    }

    /// Encodes and delivers a held chunk; a stop, a shutdown or a lost
    /// lease ends it early.
    pub(super) async fn run_chunk(
        &self,
        held: &HeldChunk,
        control: &Arc<Control>,
        shutdown: &CancellationToken,
    ) -> ChunkEnd {
        let store = &self.inner.chunks;
        let mut release = ReleaseOnDrop {
            store: store.clone(),
            lease: Some(held.lease.clone()),
        };
        let encoded = tokio::select! {
            encoded = self.encode_chunk(held, control) => Some(encoded),
            _ = control.stop.cancelled() => None,
            _ = control.lost.cancelled() => None,
            _ = shutdown.cancelled() => None,
        };
        // Armed until the end is recorded: a Stop also drops the
        // conductor's own chunk while it records, and a release cut short
        // there would leave the chunk RUNNING until its lease ran out (the
        // writes are fenced, so a release after them changes nothing).
        let end = self.record_chunk_end(held, control, encoded).await;
        release.lease = None;
        end
    }

    /// Records how a chunk's encode ended: delivered, failed, or put back.
    async fn record_chunk_end(
        &self,
        held: &HeldChunk,
        control: &Control,
        encoded: Option<Result<Piece, NoPiece>>,
    ) -> ChunkEnd {
        let store = &self.inner.chunks;
        let lease = &held.lease;
        let outcome = match encoded {
            Some(Ok(Piece::Sent)) => return ChunkEnd::Delivered,
            Some(Ok(Piece::Placed(name))) => match store.deliver(lease, &name).await {
                Ok(true) => return ChunkEnd::Delivered,
                Ok(false) => {
                    let dir = held.plan.work_dir.join(&name);
                    let _ = crate::fsutil::off_runtime(move || std::fs::remove_dir_all(dir)).await;
                    return ChunkEnd::Lost;
                }
                Err(e) => Err(e),
            },
            Some(Err(NoPiece::Lost)) => return ChunkEnd::Lost,
            Some(Err(NoPiece::Transfer(reason))) => {
                tracing::warn!(%reason, "the chunk could not be fetched or sent: put back for any node");
                // Not at once again: the service may be down a while.
                tokio::time::sleep(farm::RENEW_EVERY).await;
                store.release(lease).await.map(|_| ChunkEnd::Released)
            }
            Some(Err(NoPiece::Failed(reason))) => match store.fail(lease, &reason).await {
                Ok(_) => return ChunkEnd::Failed(reason),
                Err(e) => Err(e),
            },
            None if control.lost.is_cancelled() => return ChunkEnd::Lost,
            None => store.release(lease).await.map(|_| ChunkEnd::Released),
        };
        outcome.unwrap_or_else(|e| {
            // The lease runs out and the sweeper puts the chunk back.
            tracing::warn!(error = %e, "cannot record a chunk's end");
            ChunkEnd::Lost
        })
    }

    /// Encodes a chunk into `<work dir>/c<idx>-<attempt>` and returns that
    /// name: written under a hidden name, renamed once whole.
    async fn encode_chunk(&self, held: &HeldChunk, control: &Control) -> Result<Piece, NoPiece> {
        let inner = &self.inner;
        let (chunk, lease) = (&held.chunk, &held.lease);
        let planned = &chunk.planned;
        let fetched;
        let spec = match &inner.fetch {
            Some(fetch) => {
                fetched = fetch_sources(held, fetch).await?;
                &fetched
            }
            None => &held.spec,
        };
        let presets = spec.presets(&inner.presets).map_err(NoPiece::Failed)?;
        let name = super::plan::piece_folder(lease.idx, lease.attempt);
        let done = held.plan.work_dir.join(&name);
        let id = ChunkId {
            guid: lease.job,
            idx: lease.idx,
            attempt: lease.attempt,
        };
        // A fetch node encodes in its own data folder, then sends it.
        let temp = match &inner.fetch {
            Some(fetch) => fetch.work_dir.join(id.name()),
            None => held.plan.work_dir.join(format!(".{name}.part")),
        };
        let mut unfinished = Unfinished(Some(temp.clone()));
        let made = temp.clone();
        crate::fsutil::off_runtime(move || {
            let _ = std::fs::remove_dir_all(&made);
            std::fs::create_dir_all(&made)
        })
        .await
        .map_err(|e| NoPiece::Failed(format!("cannot make the chunk's folder: {e}")))?;
        let pieces: Vec<(PathBuf, &crate::encoder::preset::Preset)> = presets
            .iter()
            .enumerate()
            .filter(|(_, p)| writes_piece(planned.kind, p))
            .map(|(n, p)| (temp.join(piece_name(n, planned.kind, p)), *p))
            .collect();
        let outputs: Vec<(&Path, &crate::encoder::preset::Preset)> = pieces
            .iter()
            .map(|(path, p)| (path.as_path(), *p))
            .collect();
        let inputs = spec.inputs();
        let (args, extent) = match planned.kind {
            ChunkKind::Video => {
                let window = Window {
                    start_us: planned.start_us,
                    end_us: planned.end_us,
                    first_segment: u64::try_from(planned.first_segment).unwrap_or(0),
                    frames: planned
                        .frames
                        .and_then(|f| u64::try_from(f).ok())
                        .filter(|f| *f > 0)
                        .ok_or_else(|| {
                            NoPiece::Failed(format!("chunk {} has no frames", chunk.idx))
                        })?,
                };
                let args = video_chunk_args(&inputs, &window, &outputs, inner.ffmpeg_threads);
                (args, ffmpeg::Extent::Frames(window.frames))
            }
            ChunkKind::Audio => {
                let args = audio_chunk_args(&inputs, &outputs, inner.ffmpeg_threads)
                    .ok_or_else(|| NoPiece::Failed("the source has no sound to encode".into()))?;
                (args, ffmpeg::Extent::Seconds(spec.duration_us as f64 / 1e6))
            }
        };
        match inner.chunks.started_run(lease).await {
            Ok(true) => {}
            Ok(false) => return Err(NoPiece::Lost),
            Err(e) => return Err(NoPiece::Failed(format!("cannot record the run: {e}"))),
        }
        let (_known, extent) = tokio::sync::watch::channel(Some(extent));
        let store = inner.chunks.clone();
        ffmpeg::run(
            args,
            extent,
            control.suspension(),
            inner.stall,
            |progress| {
                if let ffmpeg::Progress::Rate(rate) = progress {
                    control.set_rate(rate);
                }
                // Recorded with the progress: any node may be asked the
                // job's rate, the sum of its chunks'.
                let rate = control.rate().map(|r| ChunkRate {
                    fps: r.fps,
                    speed: r.speed,
                });
                let store = store.clone();
                let lease = lease.clone();
                async move {
                    if let ffmpeg::Progress::Percent(percent) = progress
                        && let Err(e) = store.raise_progress(&lease, percent, rate).await
                    {
                        tracing::warn!(error = %e, "could not record a chunk's progress");
                    }
                }
            },
        )
        .await
        .map_err(|e| NoPiece::Failed(format!("chunk {}: {e}", chunk.idx)))?;
        if let Some(fetch) = &inner.fetch {
            fetch.client.upload_chunk(id, &temp).await?;
            return Ok(Piece::Sent);
        }
        let renamed = done.clone();
        crate::fsutil::off_runtime(move || std::fs::rename(&temp, &renamed))
            .await
            .map_err(|e| NoPiece::Failed(format!("cannot place the chunk's pieces: {e}")))?;
        unfinished.0 = None;
        Ok(Piece::Placed(name))
    }

    /// Brings this node's workers of `guid`'s chunks in line with the
    /// job's status (`None`: the job is gone): they pause and continue
    /// with it, and drop their chunk once it is stopping, stopped or
    /// finished. While the job is between conductors (QUEUED, STARTING)
    /// they carry on: finished chunks are kept.
    pub(in crate::encoder) fn reconcile_chunks(&self, guid: Guid, status: Option<JobStatus>) {
        for ((job, idx), control) in self.inner.chunk_workers.all() {
            if job != guid {
                continue;
            }
            match status {
                Some(JobStatus::Paused) => control.want_paused(true),
                Some(JobStatus::Started) => control.want_paused(false),
                Some(JobStatus::Queued | JobStatus::Starting) => {}
                _ if !control.stop.is_cancelled() => {
                    tracing::info!(%guid, chunk = idx, ?status, "the chunk's job ended: dropping it");
                    control.stop.cancel();
                }
                _ => {}
            }
        }
    }

    /// Renews the leases of the chunks this node's slots encode, and tells
    /// each worker what became of its job (a lost notification) or of its
    /// lease.
    pub(in crate::encoder) async fn renew_chunk_leases(
        &self,
    ) -> Result<(), crate::store::StoreError> {
        let inner = &self.inner;
        let held = inner.chunk_workers.all();
        if held.is_empty() {
            return Ok(());
        }
        let keys: Vec<(Guid, u32)> = held.iter().map(|(key, _)| *key).collect();
        let renewed = inner
            .chunks
            .renew(&inner.node_id.name, &keys, farm::lease_ms())
            .await?;
        for ((guid, idx), control) in &held {
            let kept = renewed
                .iter()
                .find(|(l, _)| l.job == *guid && l.idx == *idx && l.attempt == control.attempt);
            match kept {
                Some((_, status)) => self.reconcile_chunks(*guid, *status),
                None if !control.lost.is_cancelled() => {
                    tracing::warn!(%guid, chunk = idx, "this node lost the chunk's lease; dropping it");
                    control.lost.cancel();
                }
                None => {}
            }
        }
        Ok(())
    }
}
