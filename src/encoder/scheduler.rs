//! Runs queued jobs: N slots, highest priority first, first-in-first-out
//! within a priority (the order is the store's `claim_next`). A job caught by
//! shutdown goes back to QUEUED; a failure becomes ERROR with the reason, and
//! the next job starts either way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::job::allowed_from;
use super::{Encoder, ffmpeg};
use crate::carbon::JobStatus;
use crate::fsutil::TempFile;
use crate::store::Job;
use crate::store::jobs::Change;

impl Encoder {
    /// Starts the scheduler; it runs until `shutdown` is cancelled and then
    /// waits for its workers to requeue what they were doing.
    pub fn spawn_scheduler(
        &self,
        slots: usize,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let encoder = self.clone();
        tokio::spawn(async move { encoder.schedule(slots.max(1), shutdown).await })
    }

    async fn schedule(self, slots: usize, shutdown: CancellationToken) {
        let free = Arc::new(Semaphore::new(slots));
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
            let Some(job) = self.next_job(&shutdown).await else {
                break;
            };
            let encoder = self.clone();
            let stop = shutdown.clone();
            let span = tracing::info_span!("job", guid = %job.guid);
            workers.spawn(
                async move {
                    encoder.run(job, stop).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        while workers.join_next().await.is_some() {}
    }

    /// Waits for a runnable job and claims it; `None` on shutdown.
    async fn next_job(&self, shutdown: &CancellationToken) -> Option<Job> {
        loop {
            match self.inner.jobs.claim_next().await {
                Ok(Some(job)) => return Some(job),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot read the job queue; retrying"),
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                // Also look again now and then, in case a wake-up was missed.
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
    }

    async fn run(&self, job: Job, shutdown: CancellationToken) {
        let guid = job.guid;
        // Only probing and ffmpeg are cancelled by a shutdown. Placing the
        // output and recording it always finish: a job whose output is in
        // place must not go back to the queue and be encoded twice.
        let transcoded = tokio::select! {
            transcoded = self.transcode(&job) => Some(transcoded),
            // Dropping the future kills ffmpeg and removes its temp file.
            _ = shutdown.cancelled() => None,
        };
        let outcome = match transcoded {
            None => None,
            Some(Ok((temp, extension))) => Some(self.place_output(&job, temp, extension).await),
            Some(Err(reason)) => Some(Err(reason)),
        };
        let (to, change) = match outcome {
            None => {
                tracing::info!("interrupted by shutdown; back in the queue");
                (
                    JobStatus::Queued,
                    Change {
                        progress: Some(0),
                        ..Change::default()
                    },
                )
            }
            Some(Ok(output)) => {
                tracing::info!(output = %output.display(), "job completed");
                (
                    JobStatus::Completed,
                    Change {
                        progress: Some(100),
                        output_path: Some(output),
                        ..Change::default()
                    },
                )
            }
            Some(Err(reason)) => {
                tracing::warn!(%reason, "job failed");
                (
                    JobStatus::Error,
                    Change {
                        description: Some(reason),
                        ..Change::default()
                    },
                )
            }
        };
        if let Err(e) = self
            .inner
            .jobs
            .transition(guid, allowed_from(to), to, change)
            .await
        {
            tracing::error!(error = %e, status = %to, "could not record the job's outcome");
        }
    }

    /// Probes the source and encodes it into a temp file; returns the file
    /// and the output extension. The error is the job's `Description`.
    async fn transcode(&self, job: &Job) -> Result<(TempFile, String), String> {
        let inner = &self.inner;
        let preset = inner
            .presets
            .get(job.preset_guid)
            .ok_or_else(|| format!("preset {} no longer exists", job.preset_guid))?;
        if !job.source_path.is_file() {
            return Err(format!(
                "the source {} no longer exists",
                job.source_path.display()
            ));
        }
        let info = crate::media::probe(&job.source_path)
            .await
            .map_err(|e| format!("cannot read the source: {e}"))?;
        info.check_is_video()
            .map_err(|why| format!("the source is not a video: {why}"))?;
        let started = inner
            .jobs
            .transition(
                job.guid,
                allowed_from(JobStatus::Started),
                JobStatus::Started,
                Change::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !started {
            return Err("the job changed status before it could start".to_owned());
        }

        let temp = TempFile::new_in(&inner.tmp_dir, &preset.extension);
        let args = ffmpeg::encode_args(&job.source_path, temp.path(), preset);
        let jobs = inner.jobs.clone();
        ffmpeg::run(args, info.duration, |percent| {
            let jobs = jobs.clone();
            let guid = job.guid;
            async move {
                if let Err(e) = jobs.raise_progress(guid, percent).await {
                    tracing::warn!(error = %e, "could not record progress");
                }
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok((temp, preset.extension.clone()))
    }

    /// Moves a finished encode into the job's destination under a new name.
    async fn place_output(
        &self,
        job: &Job,
        temp: TempFile,
        extension: String,
    ) -> Result<PathBuf, String> {
        let (dest, stem) = (job.dest_dir.clone(), job.base_name.clone());
        tokio::task::spawn_blocking(move || temp.persist_unique(&dest, &stem, &extension))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "could not place the output in {}: {e}",
                    job.dest_dir.display()
                )
            })
    }
}
