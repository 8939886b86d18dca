//! The node that claimed a chunked job conducts it: it plans the chunks
//! (or adopts an earlier run's plan and its finished chunks), encodes
//! chunks itself like any free slot, keeps the job's progress, assembles a
//! ladder as its chunks finish (watchable while it encodes) and joins the
//! pieces once all are done. It holds the job's lease throughout, so a
//! conductor that dies is replaced like any node running a job, and the
//! next one adopts the plan.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::args::Window;
use super::join::{assemble_ladder, join_mp4};
use super::plan::{
    self, ChunkSpec, OWNER_MARKER, chunk_align, piece_name, recipe_key, source_stamp, spec_of,
};
use super::worker::{ChunkEnd, HeldChunk};
use crate::carbon::Guid;
use crate::encoder::control::Control;
use crate::encoder::failure::JobFailure;
use crate::encoder::outcome::Staged;
use crate::encoder::preset::Preset;
use crate::encoder::{Encoder, farm, live_folder};
use crate::media::MediaInfo;
use crate::media::split::{self, Align};
use crate::store::jobs::{Destination, Lease};
use crate::store::{Chunk, ChunkKind, ChunkPlan, ChunkState, Job, NewChunk};

/// How often the conductor looks at its chunks when nothing wakes it.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The sound chunk's weight in the job's progress, as a share of the
/// video's: encoding sound alone is many times faster than the picture.
const SOUND_WEIGHT_PERCENT: i64 = 5;

type OwnChunk<'a> = Pin<Box<dyn Future<Output = ChunkEnd> + Send + 'a>>;

impl Encoder {
    /// How `job` is cut, if this node chunks it (see [`chunk_align`]).
    pub(in crate::encoder) fn chunking(
        &self,
        job: &Job,
        presets: &[&Preset],
        info: &MediaInfo,
    ) -> Option<Align> {
        chunk_align(&self.inner.chunking, job, presets, info)
    }

    /// Conducts a chunked job to its staged outputs (joined MP4 files in
    /// temp files, finished ladder folders), as a one-run encode gives.
    pub(in crate::encoder) async fn conduct(
        &self,
        job: &Job,
        lease: &Lease,
        control: &Arc<Control>,
        info: &MediaInfo,
        align: Align,
        shutdown: &CancellationToken,
    ) -> Result<Vec<(Staged, Destination, String)>, JobFailure> {
        let wanted = self.wanted(job).await?;
        let presets: Vec<&Preset> = wanted.iter().map(|(_, p)| *p).collect();
        let probed = spec_of(job, &presets, info);
        let first_dir = wanted[0].0.dest_dir.clone();
        let plan = self
            .adopt_or_plan(job, &probed, &presets, align, &first_dir)
            .await?;
        let spec: ChunkSpec = serde_json::from_str(&plan.spec)
            .map_err(|e| JobFailure::Chunk(format!("the chunk plan cannot be read: {e}")))?;
        let staged = self.stage(lease, control, wanted).await?;
        let mut ladders: Vec<LiveLadder> = staged
            .iter()
            .enumerate()
            .filter_map(|(n, (s, _, _))| match s {
                Staged::Ladder(folder) => Some(LiveLadder {
                    n,
                    folder: folder.path().to_path_buf(),
                    listed: 0,
                }),
                Staged::File(_) => None,
            })
            .collect();
        let started = Instant::now();
        let job_plan = Conducted {
            plan: &plan,
            spec: &spec,
            presets: &presets,
        };
        let mut own: Option<OwnChunk<'_>> = None;
        let mut own_control: Option<Arc<Control>> = None;
        let mut suspension = control.suspension();
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let store = &self.inner.chunks;
        let chunks = loop {
            let chunks = store.list(job.guid).await?;
            let share = share_done(&chunks);
            if let Err(e) = self.inner.jobs.raise_progress(lease, share).await {
                tracing::warn!(error = %e, "could not record progress");
            }
            if let Some(failed) = chunks.iter().find(|c| c.state == ChunkState::Failed) {
                return Err(JobFailure::Chunk(describe_failure(failed)));
            }
            self.assemble_ladders(&job_plan, &chunks, &mut ladders, false, started)
                .await?;
            if own.is_none() && chunks.iter().all(|c| c.state == ChunkState::Done) {
                break chunks;
            }
            if own.is_none() && chunks.iter().any(|c| c.state == ChunkState::Queued) {
                let me = &self.inner.node_id.name;
                let any = |_: &Path| true;
                if let Some((chunk, chunk_lease, _)) = store
                    .claim(me, farm::lease_ms(), Some(job.guid), &any)
                    .await?
                {
                    // Registered like any chunk worker's: its lease is
                    // renewed, and it follows the job.
                    let key = (chunk_lease.job, chunk_lease.idx);
                    let registration = self.inner.chunk_workers.register(key, chunk_lease.attempt);
                    let chunk_control = registration.control.clone();
                    own_control = Some(chunk_control.clone());
                    let held = HeldChunk {
                        chunk,
                        lease: chunk_lease,
                        plan: plan.clone(),
                        spec: spec.clone(),
                    };
                    own = Some(Box::pin(async move {
                        let end = self.run_chunk(&held, &chunk_control, shutdown).await;
                        drop(registration);
                        end
                    }));
                }
            }
            let own_end = tokio::select! {
                end = async { own.as_mut().expect("guarded").await }, if own.is_some() => Some(end),
                _ = tick.tick() => None,
                _ = self.inner.chunk_done.notified() => None,
                // A Pause or Resume sent to this node: passed to the chunk
                // it encodes, and acknowledged (queued chunks of a paused
                // job are not claimed).
                changed = suspension.wanted.changed() => {
                    if changed.is_ok() {
                        let wanted = *suspension.wanted.borrow_and_update();
                        if let Some(chunk) = &own_control {
                            chunk.want_paused(wanted);
                        }
                        suspension.applied.send_replace(wanted);
                    }
                    None
                }
            };
            if let Some(end) = own_end {
                own = None;
                own_control = None;
                tracing::debug!(?end, "the conductor's own chunk ended");
            }
        };
        self.join_outputs(&job_plan, &chunks, &staged).await?;
        self.assemble_ladders(&job_plan, &chunks, &mut ladders, true, started)
            .await?;
        for ladder in &ladders {
            live_folder::make_extras(job.guid, &ladder.folder).await;
        }
        let nodes: std::collections::BTreeSet<&str> =
            chunks.iter().filter_map(|c| c.node.as_deref()).collect();
        tracing::info!(chunks = chunks.len(), ?nodes, "chunks joined");
        Ok(staged
            .into_iter()
            .map(|(temp, d, p)| (temp, d, p.extension.clone()))
            .collect())
    }

    /// The plan an earlier run left, if the source and the recipe are
    /// unchanged (its finished chunks are kept, its failed ones queued
    /// again); otherwise a new plan, cut at the source's keyframes.
    async fn adopt_or_plan(
        &self,
        job: &Job,
        spec: &ChunkSpec,
        presets: &[&Preset],
        align: Align,
        dest_dir: &Path,
    ) -> Result<ChunkPlan, JobFailure> {
        let store = &self.inner.chunks;
        let chunk_us = i64::try_from(self.inner.chunking.length.as_micros()).unwrap_or(i64::MAX);
        let recipe = recipe_key(spec, presets, chunk_us);
        let source = job.source_path.clone();
        let (size, mtime_ns) = crate::fsutil::off_runtime(move || source_stamp(&source))
            .await
            .map_err(|e| JobFailure::Chunk(format!("cannot read the source: {e}")))?;
        let mut digest = None;
        if let Some(old) = store.plan_of(job.guid).await? {
            // A touched source with the same bytes is the same source.
            let stamped = (old.source_size, old.source_mtime_ns) == (size, mtime_ns);
            let same_source = stamped || {
                let now = sha256_of(&job.source_path).await?;
                let before = serde_json::from_str::<ChunkSpec>(&old.spec)
                    .ok()
                    .and_then(|s| s.source_sha256);
                let same = before.as_deref() == Some(now.as_str());
                digest = Some(now);
                same
            };
            if same_source && old.recipe == recipe {
                let again = store.requeue_failed(job.guid).await?;
                let kept = store
                    .list(job.guid)
                    .await?
                    .iter()
                    .filter(|c| c.state == ChunkState::Done)
                    .count();
                tracing::info!(
                    kept,
                    failed_again = again,
                    "resuming the chunks of an earlier run"
                );
                return Ok(old);
            }
            tracing::info!("the source or the presets changed: the earlier chunks are dropped");
            let (dir, guid) = (old.work_dir.clone(), job.guid);
            crate::fsutil::off_runtime(move || plan::remove_work_dir(&dir, guid))
                .await
                .map_err(JobFailure::Ladder)?;
            store.forget(job.guid).await?;
        }
        let mut spec = spec.clone();
        spec.source_sha256 = Some(match digest {
            Some(digest) => digest,
            None => sha256_of(&job.source_path).await?,
        });
        if let plan::SpecAudio::File(file) = &spec.audio {
            spec.audio_sha256 = Some(sha256_of(file).await?);
        }
        let frames = split::keyframes(&job.source_path)
            .await
            .map_err(|e| JobFailure::Chunk(format!("cannot find the source's keyframes: {e}")))?;
        let spans = split::plan_spans(&frames, chunk_us, align);
        let mut chunks = Vec::with_capacity(spans.len() + 1);
        if spec.sound {
            chunks.push(NewChunk {
                kind: ChunkKind::Audio,
                start_us: 0,
                end_us: frames.duration_us,
                frames: None,
                first_segment: 0,
                weight: (frames.duration_us / 1000 * SOUND_WEIGHT_PERCENT / 100).max(1),
            });
        }
        chunks.extend(spans.iter().map(|span| {
            let window = Window::of_span(span, align);
            NewChunk {
                kind: ChunkKind::Video,
                start_us: window.start_us,
                end_us: window.end_us,
                frames: i64::try_from(window.frames).ok(),
                first_segment: i64::try_from(window.first_segment).unwrap_or(0),
                weight: ((window.end_us - window.start_us) / 1000).max(1),
            }
        }));
        let work_dir = plan::work_dir_in(dest_dir, job.guid);
        let (dir, guid) = (work_dir.clone(), job.guid);
        crate::fsutil::off_runtime(move || {
            plan::remove_work_dir(&dir, guid)?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(OWNER_MARKER), guid.to_string())
        })
        .await
        .map_err(|e| JobFailure::Chunk(format!("cannot make the chunks' folder: {e}")))?;
        let plan = ChunkPlan {
            job: job.guid,
            source_size: size,
            source_mtime_ns: mtime_ns,
            recipe,
            spec: serde_json::to_string(&spec).map_err(|e| JobFailure::Chunk(e.to_string()))?,
            work_dir,
            created_at: crate::store::now_ms(),
        };
        store.plan(&plan, &chunks).await?;
        tracing::info!(chunks = chunks.len(), "the job is encoded in chunks");
        Ok(plan)
    }

    /// Joins each MP4 destination's pieces (and its sound) into its temp file.
    async fn join_outputs(
        &self,
        job: &Conducted<'_>,
        chunks: &[Chunk],
        staged: &[(Staged, Destination, &Preset)],
    ) -> Result<(), JobFailure> {
        for (n, (s, _, _)) in staged.iter().enumerate() {
            let Staged::File(temp) = s else { continue };
            let pieces: Vec<PathBuf> = chunks
                .iter()
                .filter(|c| c.planned.kind == ChunkKind::Video)
                .map(|c| job.piece(c, n))
                .collect();
            let sound = job.sound_piece(chunks, n);
            join_mp4(&pieces, sound.as_deref(), temp.path())
                .await
                .map_err(JobFailure::Join)?;
        }
        Ok(())
    }

    /// Adds each ladder's newly finished chunks (the contiguous run from
    /// the start) to its live folder, and publishes it once playable;
    /// `ended` closes its playlists.
    async fn assemble_ladders(
        &self,
        job: &Conducted<'_>,
        chunks: &[Chunk],
        ladders: &mut [LiveLadder],
        ended: bool,
        started: Instant,
    ) -> Result<(), JobFailure> {
        for ladder in ladders {
            let n = ladder.n;
            let prefix: Vec<PathBuf> = chunks
                .iter()
                .filter(|c| c.planned.kind == ChunkKind::Video)
                .take_while(|c| c.state == ChunkState::Done)
                .map(|c| job.piece(c, n))
                .collect();
            let sound = job.sound_piece(chunks, n);
            let sound_missing = job.spec.sound && job.presets[n].audio.is_some() && sound.is_none();
            if sound_missing || prefix.is_empty() || (prefix.len() == ladder.listed && !ended) {
                continue;
            }
            let folder = ladder.folder.clone();
            let listed = prefix.len();
            crate::fsutil::off_runtime(move || {
                assemble_ladder(&prefix, sound.as_deref(), &folder, ended)
            })
            .await
            .map_err(JobFailure::Ladder)?;
            ladder.listed = listed;
            self.publish_now(job.plan.job, vec![ladder.folder.clone()], started)
                .await?;
        }
        Ok(())
    }

    /// Removes a job's chunk pieces and plan (its chunks' rows stay, as
    /// the job's history, until it is planned again or removed).
    pub(in crate::encoder) async fn forget_chunks(&self, guid: Guid) {
        let store = &self.inner.chunks;
        let plan = match store.plan_of(guid).await {
            Ok(Some(plan)) => plan,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "cannot read the job's chunk plan"),
        };
        let dir = plan.work_dir.clone();
        if let Err(e) = crate::fsutil::off_runtime(move || plan::remove_work_dir(&dir, guid)).await
        {
            tracing::warn!(error = %e, "cannot remove the job's chunk pieces");
        }
        if let Err(e) = store.finish(guid).await {
            tracing::warn!(error = %e, "cannot forget the job's chunk plan");
        }
    }
}

/// A file's SHA-256 (hex), read off the runtime.
async fn sha256_of(file: &Path) -> Result<String, JobFailure> {
    let file = file.to_path_buf();
    crate::fsutil::off_runtime(move || crate::farmfiles::sha256_file(&file))
        .await
        .map_err(|e| JobFailure::Chunk(format!("cannot read the source: {e}")))
}

/// A conducted job's plan, as its conductor reads it.
struct Conducted<'a> {
    plan: &'a ChunkPlan,
    spec: &'a ChunkSpec,
    presets: &'a [&'a Preset],
}

/// A ladder destination being assembled.
struct LiveLadder {
    /// Its destination's index.
    n: usize,
    /// Its live folder in the destination.
    folder: PathBuf,
    /// How many chunks its playlists list.
    listed: usize,
}

impl Conducted<'_> {
    /// Where destination `n`'s piece of a finished chunk is.
    fn piece(&self, chunk: &Chunk, n: usize) -> PathBuf {
        let folder = chunk.output.as_deref().unwrap_or_default();
        self.plan
            .work_dir
            .join(folder)
            .join(piece_name(n, chunk.planned.kind, self.presets[n]))
    }

    /// Destination `n`'s sound piece, once the sound chunk is done.
    fn sound_piece(&self, chunks: &[Chunk], n: usize) -> Option<PathBuf> {
        if !self.spec.sound || self.presets[n].audio.is_none() {
            return None;
        }
        chunks
            .iter()
            .find(|c| c.planned.kind == ChunkKind::Audio && c.state == ChunkState::Done)
            .map(|c| self.piece(c, n))
    }
}

/// The job's progress: the share of all chunks' work done, held below 100
/// until the joined outputs are in place.
fn share_done(chunks: &[Chunk]) -> u32 {
    let weight: i64 = chunks.iter().map(|c| c.planned.weight).sum();
    let worked: i64 = chunks
        .iter()
        .map(|c| c.planned.weight * i64::from(c.progress.min(100)) / 100)
        .sum();
    u32::try_from(worked * 99 / weight.max(1)).unwrap_or(99)
}

/// Why a job failed, from its failed chunk.
fn describe_failure(chunk: &Chunk) -> String {
    let span = |us: i64| {
        let s = us / 1_000_000;
        format!("{}:{:02}", s / 60, s % 60)
    };
    let planned = &chunk.planned;
    let what = match planned.kind {
        ChunkKind::Audio => "the sound".to_owned(),
        ChunkKind::Video => format!(
            "chunk {} ({}–{})",
            chunk.idx,
            span(planned.start_us),
            span(planned.end_us)
        ),
    };
    format!("{what} failed: {}", chunk.failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: ChunkKind, weight: i64, progress: u32) -> Chunk {
        Chunk {
            job: Guid::new_random(),
            idx: 0,
            planned: NewChunk {
                kind,
                start_us: 60_000_000,
                end_us: 125_000_000,
                frames: None,
                first_segment: 0,
                weight,
            },
            state: ChunkState::Running,
            progress,
            node: None,
            attempts: 1,
            lease_losses: 0,
            runs: 1,
            output: None,
            failure: "it broke".into(),
            done_at: None,
        }
    }

    #[test]
    fn progress_is_the_weighted_share_of_chunk_work_below_100() {
        let half = [
            chunk(ChunkKind::Video, 60_000, 100),
            chunk(ChunkKind::Video, 60_000, 0),
        ];
        assert_eq!(share_done(&half), 49);
        let all = [chunk(ChunkKind::Video, 60_000, 100)];
        assert_eq!(share_done(&all), 99);
        let sound = [
            chunk(ChunkKind::Audio, 3_000, 100),
            chunk(ChunkKind::Video, 60_000, 0),
        ];
        assert_eq!(share_done(&sound), 4);
        assert_eq!(share_done(&[]), 0);
    }

    #[test]
    fn a_failed_chunk_is_named_with_its_span() {
        let c = chunk(ChunkKind::Video, 1, 0);
        assert_eq!(describe_failure(&c), "chunk 0 (1:00–2:05) failed: it broke");
    }
}
