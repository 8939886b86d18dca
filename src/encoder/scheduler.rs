//! Runs queued jobs: N slots, highest priority first; within a priority the
//! owners (`User`) take turns, each owner's jobs oldest first (the order is
//! the store's `claim`, under a lease [`super::farm`] renews). A job caught by
//! shutdown goes back to QUEUED; a stopped one becomes STOPPED; a failure
//! becomes ERROR with the reason (a [`JobFailure`], recorded as its
//! [`PublicMessage`]); the next job starts either way.
//!
//! It asks [`super::control`], which owns the registry of running jobs, for
//! each job's live handles; control never calls back into the scheduler.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::chunks::HeldChunk;
use super::control::{Control, STOPPED_BY_COMMAND};
use super::failure::{FileName, JobFailure};
use super::job::allowed_from;
use super::live_folder::{self, LiveFolder};
use super::outcome::{Failed, Staged};
use super::preset::{Preset, SourcePicture, ladder::MASTER_PLAYLIST};
use super::{Encoder, farm, ffmpeg};
use crate::carbon::{Guid, JobStatus};
use crate::fsutil::TempFile;
use crate::media::MediaInfo;
use crate::media::split::Align;
use crate::store::ChunkRepair;
use crate::store::Job;
use crate::store::StoreError;
use crate::store::jobs::{AudioSource, Change, Destination, Lease, Repair};

/// Retries of writing a job's outcome before giving up (the job is then
/// repaired at the next start), the first after this wait, each next one
/// after twice the last.
const OUTCOME_RETRIES: usize = 2;
const OUTCOME_FIRST_WAIT: Duration = Duration::from_millis(200);

impl Encoder {
    /// Starts the scheduler with the configured number of slots; it runs
    /// until `shutdown` is cancelled, then waits for its workers and leaves
    /// the jobs they held as a crash would, repaired by
    /// [`JobStore::repair`](crate::store::JobStore::repair).
    pub fn spawn_scheduler(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let encoder = self.clone();
        tokio::spawn(async move { encoder.schedule(shutdown).await })
    }

    async fn schedule(self, shutdown: CancellationToken) {
        let free = Arc::new(Semaphore::new(self.inner.slots));
        let mut workers = JoinSet::new();
        loop {
            while workers.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = free.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.cancelled() => break,
            };
            let Some(work) = self.next_job(&shutdown).await else {
                break;
            };
            let encoder = self.clone();
            let stop = shutdown.clone();
            match work {
                Work::Job(claimed) => {
                    let (job, lease) = *claimed;
                    let span = tracing::info_span!("job", guid = %job.guid);
                    workers.spawn(
                        async move {
                            encoder.run(job, lease, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Work::Chunk(held) => {
                    let span =
                        tracing::info_span!("chunk", guid = %held.lease.job, idx = held.lease.idx);
                    workers.spawn(
                        async move {
                            encoder.run_claimed_chunk(*held, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
            }
        }
        while workers.join_next().await.is_some() {}
        // Their ladder folders are gone (dropped unfinished): forget them.
        let mine = Repair::HeldBy(&self.inner.node_id.name);
        if let Err(e) = live_folder::clean_interrupted(&self.inner.jobs, mine).await {
            tracing::error!(error = %e, "could not forget interrupted ladder outputs");
        }
        // Jobs caught mid-encode go back to the queue (paused ones stay
        // paused) now rather than at the next start, so a status query in
        // between tells the truth; so do chunks.
        if let Err(e) = self
            .inner
            .chunks
            .repair(ChunkRepair::HeldBy(&self.inner.node_id.name))
            .await
        {
            tracing::error!(error = %e, "could not put interrupted chunks back");
        }
        match self
            .inner
            .jobs
            .repair(mine, STOPPED_BY_COMMAND, allowed_from)
            .await
        {
            Ok(jobs) if !jobs.is_empty() => {
                tracing::info!(jobs = jobs.len(), "interrupted jobs put back")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not put interrupted jobs back"),
        }
        let me = &self.inner.node_id;
        if let Err(e) = self.inner.nodes.leave(&me.name, &me.instance).await {
            tracing::warn!(error = %e, "could not record that this node left");
        }
    }

    /// Waits for runnable work and claims it: a chunk of a job being
    /// encoded in chunks first (the job started earliest), else the next
    /// job; `None` on shutdown. A disabled node (`NodeCommand
    /// SetNodeStatus Enabled.DWD="0"`) claims nothing until it is enabled
    /// again.
    async fn next_job(&self, shutdown: &CancellationToken) -> Option<Work> {
        loop {
            if self.inner.node.is_enabled() {
                match self.claim_chunk().await {
                    Ok(Some(held)) => return Some(Work::Chunk(Box::new(held))),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read the chunk queue; retrying"),
                }
                // A node without the shared folder takes only chunks. A
                // node disabled while it looked for chunks takes no job.
                let claimed = match self.inner.fetch {
                    Some(_) => Ok(None),
                    None if !self.inner.node.is_enabled() => Ok(None),
                    None => self.claim().await,
                };
                match claimed {
                    Ok(Some(claimed)) => return Some(Work::Job(Box::new(claimed))),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read the job queue; retrying"),
                }
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                // Also look again now and then, in case a wake-up was missed
                // (a farm's notifications are lost while disconnected).
                _ = tokio::time::sleep(farm::RENEW_EVERY) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
    }

    /// Claims the next job whose files this node can see, and says in its
    /// node status which it could not. With no other node up to leave them
    /// to, it takes the next job anyway: one whose source is gone fails
    /// saying so, rather than waiting for ever.
    async fn claim(&self) -> Result<Option<(Job, Lease)>, StoreError> {
        let me = &self.inner.node_id.name;
        let jobs = &self.inner.jobs;
        let can_see = |file: &Path| file.is_file();
        let mut claimed = jobs
            .claim_visible(me, farm::lease_ms(), allowed_from, &can_see)
            .await?;
        if claimed.job.is_none() && !claimed.unseen.is_empty() && !self.others_up().await? {
            claimed = jobs
                .claim_visible(me, farm::lease_ms(), allowed_from, &|_: &Path| true)
                .await?;
        }
        let note = match claimed.unseen.first() {
            Some(file) => format!(
                "cannot see the files of {} queued job(s), e.g. {}: left to other nodes",
                claimed.unseen.len(),
                file.display()
            ),
            None => String::new(),
        };
        if *self.inner.note.lock() != note {
            if !note.is_empty() {
                tracing::warn!("{note}");
            }
            self.inner.nodes.set_note(me, &note).await?;
            *self.inner.note.lock() = note;
        }
        Ok(claimed.job)
    }

    async fn run(&self, job: Job, lease: Lease, shutdown: CancellationToken) {
        let guid = job.guid;
        if let Some(started) = job.start_time {
            let waited = (started - job.check_in_time).max(0) as f64 / 1000.0;
            self.inner.metrics.queue_wait_seconds.observe(waited);
        }
        let registration = self.inner.running.register(guid, lease.attempt);
        let control = registration.control.clone();
        // Only probing and ffmpeg are cancelled, by a shutdown or a Stop.
        // Placing the outputs and recording them always finish: a job whose
        // outputs are in place must not be encoded twice.
        let chunked = std::sync::atomic::AtomicBool::new(false);
        let transcoded = tokio::select! {
            transcoded = self.encode_job(&job, &lease, &control, &shutdown, &chunked) => Some(transcoded),
            // Dropping the future kills ffmpeg and removes its temp files.
            _ = control.stop.cancelled() => None,
            _ = shutdown.cancelled() => None,
            _ = control.lost.cancelled() => None,
        };
        // Nothing may be placed or written once another node may have the
        // job: the last renewal, just before placing, makes sure.
        let still_held = match &transcoded {
            Some(Ok(_)) => self.still_held(&lease).await,
            _ => !control.lost.is_cancelled(),
        };
        if !still_held {
            tracing::warn!(
                "lease lost: the encode is dropped, left to the node that takes the job"
            );
            return;
        }
        let outcome = match transcoded {
            Some(Ok(temps)) => self.place_outputs(&job, temps).await,
            Some(Err(reason)) => Err(Failed::before_output(reason)),
            None if control.stop.is_cancelled() => Err(Failed::before_output(JobFailure::Stopped)),
            None => {
                tracing::info!("interrupted by shutdown");
                return; // `schedule` puts it back once every worker is done
            }
        };
        match &outcome {
            Ok(outputs) => tracing::info!(outputs = outputs.len(), "job completed"),
            Err(_) if control.stop.is_cancelled() => tracing::info!("job stopped"),
            Err(failed) => tracing::warn!(reason = %failed.reason, "job failed"),
        }
        let stopped = control.stop.is_cancelled();
        // A momentary database error (busy, I/O) must not leave the job
        // STARTED with no worker until the next restart: retry, since every
        // step only moves a job that is still where it was.
        let recorded = (|| self.record_outcome(&lease, &outcome, stopped))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(OUTCOME_FIRST_WAIT)
                    .with_factor(2.0)
                    .with_max_times(OUTCOME_RETRIES),
            )
            .sleep(tokio::time::sleep)
            .notify(|e, wait| {
                tracing::warn!(error = %e, ?wait, "recording the job's outcome failed; retrying");
            })
            .await;
        match recorded {
            Err(e) => tracing::error!(error = %e, "could not record the job's outcome"),
            // Its pieces are in the outputs now.
            Ok(()) if outcome.is_ok() && chunked.into_inner() => self.forget_chunks(guid).await,
            Ok(()) => {}
        }
        drop(registration);
    }

    /// Encodes a job: in one ffmpeg run, or conducted in chunks across the
    /// farm when it is long (then `chunked` is set).
    async fn encode_job(
        &self,
        job: &Job,
        lease: &Lease,
        control: &Arc<Control>,
        shutdown: &CancellationToken,
        chunked: &std::sync::atomic::AtomicBool,
    ) -> Result<Vec<(Staged, Destination, String)>, JobFailure> {
        match self.transcode(job, lease, control).await? {
            Transcoded::Encoded(outputs) => Ok(outputs),
            Transcoded::Chunked(info, align) => {
                chunked.store(true, std::sync::atomic::Ordering::Relaxed);
                self.conduct(job, lease, control, &info, align, shutdown)
                    .await
            }
        }
    }

    /// Each destination of `job` with its preset.
    pub(in crate::encoder) async fn wanted(
        &self,
        job: &Job,
    ) -> Result<Vec<(Destination, &Preset)>, JobFailure> {
        let inner = &self.inner;
        let destinations = inner.jobs.destinations(job.guid).await?;
        let mut wanted = Vec::with_capacity(destinations.len());
        for d in destinations {
            let preset = inner
                .presets
                .get(d.preset_guid)
                .ok_or(JobFailure::PresetGone(d.preset_guid))?;
            wanted.push((d, preset));
        }
        if wanted.is_empty() {
            return Err(JobFailure::NoDestination);
        }
        Ok(wanted)
    }

    /// Moves a probed job from STARTING to STARTED. A job paused while it
    /// was probed (and maybe resumed since) encodes anyway, suspended if
    /// still paused; any other change means it must not run.
    async fn mark_started(&self, lease: &Lease) -> Result<(), JobFailure> {
        let jobs = &self.inner.jobs;
        let (from, to) = ([JobStatus::Starting], JobStatus::Started);
        let started = jobs
            .transition_held(lease, &from, to, Change::default())
            .await?;
        if started {
            return Ok(());
        }
        let now = jobs.get(lease.guid).await?;
        if now.is_some_and(|j| matches!(j.status, JobStatus::Paused | JobStatus::Started)) {
            Ok(())
        } else {
            Err(JobFailure::ChangedBeforeStart)
        }
    }

    /// Probes the source and encodes it in a single ffmpeg run: into one
    /// temp file per file destination, straight into a claimed
    /// [`LiveFolder`] per HLS ladder (published once playable, while ffmpeg
    /// runs). The error is the job's `Description`.
    async fn transcode(
        &self,
        job: &Job,
        lease: &Lease,
        control: &Arc<Control>,
    ) -> Result<Transcoded, JobFailure> {
        let inner = &self.inner;
        let wanted = self.wanted(job).await?;
        let presets: Vec<&Preset> = wanted.iter().map(|(_, p)| *p).collect();
        let audio_file = match &job.audio {
            AudioSource::File(path) => Some(path.as_path()),
            _ => None,
        };
        for file in std::iter::once(job.source_path.as_path()).chain(audio_file) {
            if !tokio::fs::metadata(file).await.is_ok_and(|m| m.is_file()) {
                return Err(JobFailure::SourceGone(FileName::of(file)));
            }
        }
        let mut inputs = ffmpeg::Inputs {
            source: &job.source_path,
            audio: match audio_file {
                Some(file) => ffmpeg::Audio::File(file),
                None if job.audio == AudioSource::Absent => ffmpeg::Audio::Absent,
                None => ffmpeg::Audio::Source,
            },
            trim: job.trim,
            picture: None,
        };
        let needs_video = wanted.iter().any(|(_, preset)| preset.needs_video());
        // ffmpeg starts at once while the source is probed and checked: the
        // probe then costs no wall time. If the source turns out unusable
        // (or the job is stopped meanwhile), the encode is dropped, which
        // kills ffmpeg and removes its temp files. An HLS ladder's command
        // line depends on the source's height, and its folder is claimed in
        // the destination only for a source known good: it waits for the probe.
        let shaped = wanted.iter().any(|(_, preset)| preset.ladder.is_some());
        let (duration_known, duration) = tokio::sync::watch::channel(None);
        let inputs_now = inputs;
        let prepare = async {
            let info = crate::media::probe(&job.source_path)
                .await
                .map_err(JobFailure::Unreadable)?;
            if needs_video {
                info.check_is_video().map_err(JobFailure::NotVideo)?;
            } else {
                info.check_has_audio().map_err(JobFailure::NoSound)?;
            }
            self.mark_started(lease).await?;
            duration_known.send_replace(
                inputs_now
                    .encoded_duration(info.duration)
                    .map(ffmpeg::Extent::Seconds),
            );
            Ok::<MediaInfo, JobFailure>(info)
        };
        tokio::pin!(prepare);
        let mut prepared = false;
        if shaped {
            let info = (&mut prepare).await?;
            prepared = true;
            if let Some(align) = self.chunking(job, &presets, &info) {
                return Ok(Transcoded::Chunked(info, align));
            }
            // As shown: ffmpeg turns a rotated picture before scaling it.
            inputs.picture = info.video.as_ref().map(|v| SourcePicture {
                width: v.shown_size().0,
                height: v.shown_size().1,
                frame_rate: v.frame_rate,
                has_audio: info.audio.is_some(),
            });
        }
        let plans = self.stage(lease, control, wanted).await?;
        let ladders: Vec<PathBuf> = plans
            .iter()
            .filter_map(|(staged, _, _)| match staged {
                Staged::Ladder(folder) => Some(folder.path().to_path_buf()),
                Staged::File(_) => None,
            })
            .collect();

        let outputs: Vec<_> = plans.iter().map(|(t, _, p)| (t.path(), *p)).collect();
        let args = ffmpeg::encode_args_threaded(&inputs, &outputs, inner.ffmpeg_threads);
        let jobs = inner.jobs.clone();
        let encoding = std::time::Instant::now();
        let suspension = control.suspension();
        let encode = ffmpeg::run(args, duration, suspension, inner.stall, |progress| {
            let jobs = jobs.clone();
            let guid = job.guid;
            let lease = lease.clone();
            if let ffmpeg::Progress::Rate(rate) = progress {
                control.set_rate(rate);
            }
            if let ffmpeg::Progress::Percent(percent) = progress {
                // For measuring how long a percent takes to reach browsers
                // (the benchmark reads this with RUST_LOG=videoshare::progress=debug).
                tracing::debug!(target: "videoshare::progress", %guid, percent, at_us = unix_micros(), "ffmpeg progress");
            }
            async move {
                if let ffmpeg::Progress::Percent(percent) = progress
                    && let Err(e) = jobs.raise_progress(&lease, percent).await
                {
                    tracing::warn!(error = %e, "could not record progress");
                }
            }
        });
        tokio::pin!(encode);
        let publish = live_folder::publish_when_playable(
            ladders.clone(),
            job.guid,
            encoding,
            inner.metrics.clone(),
        );
        tokio::pin!(publish);
        let mut published = ladders.is_empty();
        loop {
            tokio::select! {
                checked = &mut prepare, if !prepared => {
                    let info = checked?;
                    prepared = true;
                    // Long: dropping the one-run encode kills its ffmpeg.
                    if let Some(align) = self.chunking(job, &presets, &info) {
                        return Ok(Transcoded::Chunked(info, align));
                    }
                }
                done = &mut publish, if !published => {
                    done.map_err(JobFailure::Ladder)?;
                    published = true;
                }
                encoded = &mut encode => {
                    // A source ffmpeg could not read: the probe's verdict
                    // says why better than ffmpeg's last words.
                    if !prepared {
                        (&mut prepare).await.map(drop)?;
                    }
                    encoded.map_err(JobFailure::Encode)?;
                    break;
                }
            }
        }
        // Paused time included: it is how long the encode held its slot.
        let took = encoding.elapsed().as_secs_f64();
        inner.metrics.encode_seconds.observe(took);
        if !published {
            // A clip shorter than the watcher's next look: playable now.
            self.publish_now(job.guid, ladders.clone(), encoding)
                .await?;
        }
        for folder in &ladders {
            live_folder::make_extras(job.guid, folder).await;
        }
        Ok(Transcoded::Encoded(
            plans
                .into_iter()
                .map(|(temp, d, p)| (temp, d, p.extension.clone()))
                .collect(),
        ))
    }

    /// Prepares where each destination is written: a temp file, or for a
    /// ladder its folder in the destination, claimed (after removing one
    /// this job left mid-encode before a crash) and recorded at once as
    /// the job's output, so `TargetFiles` name it while it encodes.
    pub(in crate::encoder) async fn stage<'p>(
        &self,
        lease: &Lease,
        control: &Control,
        wanted: Vec<(Destination, &'p Preset)>,
    ) -> Result<Vec<(Staged, Destination, &'p Preset)>, JobFailure> {
        let inner = &self.inner;
        let guid = lease.guid;
        let mut plans = Vec::with_capacity(wanted.len());
        for (index, (d, preset)) in wanted.into_iter().enumerate() {
            if preset.ladder.is_none() {
                let temp = TempFile::new_in(&inner.tmp_dir, &preset.extension);
                plans.push((Staged::File(temp), d, preset));
                continue;
            }
            let left = d.output_path.clone();
            let (dir, stem) = (d.dest_dir.clone(), d.base_name.clone());
            let folder = crate::fsutil::off_runtime(move || {
                if let Some(folder) = left.as_deref().and_then(live_folder::folder_of)
                    && live_folder::remove_if_ours(folder, guid)?
                {
                    tracing::info!(folder = %folder.display(), "removed the folder an interrupted run left");
                }
                LiveFolder::claim(&dir, &stem, guid)
            })
            .await
            .map_err(JobFailure::Ladder)?;
            let recorded = inner
                .jobs
                .record_output(lease, index, &folder.master())
                .await?;
            plans.push((Staged::Ladder(folder), d, preset));
            if !recorded {
                // Dropping the plans removes the folder just claimed.
                control.lost.cancel();
                return Err(JobFailure::ChangedBeforeStart);
            }
        }
        Ok(plans)
    }

    /// Publishes the ladders ffmpeg finished before the watcher saw them
    /// playable.
    pub(in crate::encoder) async fn publish_now(
        &self,
        guid: Guid,
        ladders: Vec<PathBuf>,
        started: std::time::Instant,
    ) -> Result<(), JobFailure> {
        for folder in ladders {
            let looked = folder.clone();
            let now = crate::fsutil::off_runtime(move || {
                if looked.join(MASTER_PLAYLIST).exists() {
                    Ok(false)
                } else {
                    live_folder::publish_if_playable(&looked)
                }
            })
            .await
            .map_err(JobFailure::Ladder)?;
            if now {
                live_folder::announce(guid, &folder, started, &self.inner.metrics);
            }
        }
        Ok(())
    }
}

/// What a claimed slot runs.
enum Work {
    Job(Box<(Job, Lease)>),
    Chunk(Box<HeldChunk>),
}

/// What encoding a job gave: its staged outputs, or the news that it is
/// long enough to be encoded in chunks (its probe, and how to cut it).
enum Transcoded {
    Encoded(Vec<(Staged, Destination, String)>),
    Chunked(MediaInfo, Align),
}

/// Microseconds since the Unix epoch, comparable across processes.
fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}
