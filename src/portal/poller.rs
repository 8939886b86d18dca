//! The one poller: asks the encoder (over Carbon, `JobStatusList` per GUID,
//! pipelined on one connection, its own: a slow poll never holds up a page)
//! about every unfinished upload, records what changed and publishes it to
//! the hub. Browsers never poll. Every state write is a compare-and-set on
//! the state it replaces, and a completion is recorded only together with
//! the files the job wrote.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use tokio_util::sync::CancellationToken;

use super::Portal;
use super::jobs::{EtaClock, JobView, Live};
use super::ws::HubEvent;
use crate::carbon::{ClientError, Guid, JobEntry, JobStatus};
use crate::store::Upload;

/// Said of a job the encoder no longer knows (its database was reset, or the
/// job was removed there).
const FORGOTTEN: &str = "the encoding server no longer knows this job";

/// How often completed uploads whose outputs are unknown are asked about
/// again while the encoder cannot be reached.
const RELINK_RETRY: Duration = Duration::from_secs(10);

impl Portal {
    /// Starts the poller; it stops when `shutdown` is cancelled.
    pub fn spawn_poller(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let portal = self.clone();
        tokio::spawn(async move { portal.poll_loop(shutdown).await })
    }

    async fn poll_loop(self, shutdown: CancellationToken) {
        let relinking = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { relinking.relink_outputs(stop).await });
        let interval = self.config().poll_interval;
        let mut encoder_was_down = false;
        loop {
            let unfinished = match self.inner.uploads.unfinished().await {
                Ok(list) => list,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read uploads");
                    Vec::new()
                }
            };
            if !unfinished.is_empty() {
                let guids: Vec<_> = unfinished.iter().map(|u| u.guid).collect();
                match self.inner.poll_client.statuses(&guids).await {
                    Ok(statuses) => {
                        if encoder_was_down {
                            tracing::info!("encoding server reachable again");
                            encoder_was_down = false;
                        }
                        for (upload, (_, entry)) in unfinished.iter().zip(statuses) {
                            // Refused when a control wrote meanwhile: the
                            // next poll starts from that.
                            self.record_encoder_state(upload, entry.as_ref()).await;
                        }
                    }
                    Err(e) if !encoder_was_down => {
                        tracing::warn!(error = %e, "cannot reach the encoding server; will keep trying");
                        encoder_was_down = true;
                    }
                    Err(_) => {}
                }
            }
            // With nothing to follow, sleep until an upload pokes us.
            let pause = if unfinished.is_empty() {
                Duration::from_secs(3600)
            } else if encoder_was_down {
                interval.max(Duration::from_secs(1))
            } else {
                interval
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.inner.poke.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Records the encoder's state of a job (`entry`; `None` when the
    /// encoder no longer knows it) on its upload, if it changed, and
    /// publishes its view if anything the page shows changed (live facts
    /// included). `false` when the row had moved on since `upload` was
    /// read, so nothing was written.
    pub(super) async fn record_encoder_state(
        &self,
        upload: &Upload,
        entry: Option<&JobEntry>,
    ) -> bool {
        // What the page shows under a failed job: the encoder's reason.
        let failure = entry.map(JobEntry::failure);
        let (status, progress, description) = match (entry, &failure) {
            (Some(e), Some(failure)) => (e.status, e.progress.min(100), failure.as_str()),
            _ => (JobStatus::Error, upload.progress, FORGOTTEN),
        };
        // Within one run the bar never moves back, whatever a server reports.
        let progress = if status == upload.status {
            progress.max(upload.progress)
        } else {
            progress
        };
        let mut live = match entry {
            Some(e) => self.inner.following.observe(upload, e, progress),
            None => Live::default(),
        };
        live.watch = self.watchable_ladder(upload, status).await;
        let updated = Upload {
            status,
            progress,
            description: description.to_owned(),
            ..upload.clone()
        };
        let finished_now = status == JobStatus::Completed && upload.status != JobStatus::Completed;
        let changed = (status, progress, description)
            != (upload.status, upload.progress, upload.description.as_str());
        let mut outputs = Vec::new();
        // Compare-and-set: a write is refused when the row moved on since
        // `upload` was read (a control pressed meanwhile); the next poll
        // reads it again.
        let recorded = if finished_now {
            // Completion is recorded only with the files the job wrote, so
            // its videos are linked to their owner; until the encoder can
            // name them, the job stays as it was and is asked again.
            match self.fetch_outputs(&updated).await {
                Ok(written) => {
                    let recorded = self
                        .inner
                        .uploads
                        .record_completion(upload, progress, description, &written)
                        .await;
                    outputs = written.into_iter().map(|(name, _)| name).collect();
                    recorded
                }
                Err(e) => {
                    tracing::warn!(guid = %upload.guid, error = %e, "cannot ask which files a finished job wrote; will ask again");
                    return true;
                }
            }
        } else if changed {
            self.inner
                .uploads
                .record_state(upload, status, progress, description)
                .await
        } else {
            Ok(true)
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(guid = %upload.guid, "a newer state was recorded meanwhile; this one is dropped");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record a job's state");
                return true;
            }
        }
        let view = JobView::new(&updated, live, outputs);
        if self.inner.following.changed_since_shown(&view) {
            let _ = self.inner.hub.send(HubEvent::Job(Box::new(view)));
        }
        if finished_now {
            // Listing may probe new files: never hold up other jobs' updates.
            let portal = self.clone();
            tokio::spawn(async move { portal.publish_library().await });
        }
        true
    }

    /// Asks again which files each completed upload without recorded
    /// outputs wrote (completed before completion required them, when the
    /// encoder could not say), until the encoder has answered for each.
    async fn relink_outputs(self, shutdown: CancellationToken) {
        let mut waiting = match self.inner.uploads.completed_without_outputs().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot read completed uploads");
                return;
            }
        };
        let mut relinked = false;
        while !waiting.is_empty() {
            let mut unanswered = Vec::new();
            for upload in waiting {
                match self.fetch_outputs(&upload).await {
                    Ok(outputs) if outputs.is_empty() => {}
                    Ok(outputs) => match self
                        .inner
                        .uploads
                        .record_outputs(upload.guid, &outputs)
                        .await
                    {
                        Ok(()) => relinked = true,
                        Err(e) => tracing::error!(error = %e, "cannot record a job's outputs"),
                    },
                    Err(_) => unanswered.push(upload),
                }
            }
            waiting = unanswered;
            if waiting.is_empty() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(RELINK_RETRY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        if relinked {
            self.publish_library().await;
        }
    }

    /// Asks the encoder which files a finished job wrote: `(file name,
    /// preset name)` of each (names only: the portal serves them from its
    /// streams folder). An error when the encoder could not be reached (ask
    /// again later); an empty list when it answered and named none, or
    /// cannot say (refuses both requests, or answers in a shape we cannot
    /// read: asking again would not help).
    pub(super) async fn fetch_outputs(
        &self,
        upload: &Upload,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let client = &self.inner.poll_client;
        let mut written: Vec<(Option<String>, String)> = match client.info(upload.guid).await {
            Ok(info) => info
                .destinations
                .iter()
                .map(|d| (d.target_files.first().cloned(), d.preset_name.clone()))
                .collect(),
            Err(e) if unreachable(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "no QueryInfo; trying Query");
                Vec::new()
            }
        };
        // A server whose QueryInfo names no files may name them in
        // `Query`'s <Job> (TargetFiles on each destination).
        if written.iter().all(|(file, _)| file.is_none()) {
            match client.query(upload.guid).await {
                Ok(job) => {
                    written.resize(
                        job.destinations.len().max(written.len()),
                        Default::default(),
                    );
                    for (slot, d) in written.iter_mut().zip(&job.destinations) {
                        slot.0 = d.target_files.first().cloned();
                    }
                }
                Err(e) if unreachable(&e) => return Err(e),
                Err(e) => tracing::debug!(error = %e, "no Query either; outputs not known"),
            }
        }
        Ok(written
            .into_iter()
            .filter_map(|(path, preset)| {
                let name = super::library::ladder::recorded_name(&path?)?;
                Some((name, preset))
            })
            .collect())
    }

    /// The page's view of each of `uploads`: live facts of active jobs from
    /// the poller, files of finished ones from the store.
    pub async fn views(&self, uploads: &[Upload]) -> Vec<JobView> {
        let mut written: HashMap<Guid, Vec<String>> = HashMap::new();
        if uploads.iter().any(|u| u.status == JobStatus::Completed) {
            match self.inner.uploads.outputs().await {
                Ok(all) => {
                    for output in all {
                        written
                            .entry(output.guid)
                            .or_default()
                            .push(output.file_name);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read outputs"),
            }
        }
        uploads
            .iter()
            .map(|u| {
                let live = self.inner.following.live(u.guid);
                JobView::new(u, live, written.remove(&u.guid).unwrap_or_default())
            })
            .collect()
    }
}

/// Whether `e` says the encoder could not be reached (worth asking again),
/// rather than that it answered and cannot say.
fn unreachable(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Connect { .. } | ClientError::Timeout { .. } | ClientError::Closed(_)
    ) || matches!(e, ClientError::Frame(f) if !f.is_protocol_error())
}

/// What the poller keeps about the jobs it follows: each one's ETA clock
/// and the view last published, so only changes are pushed.
#[derive(Default)]
pub struct Following {
    jobs: Mutex<HashMap<Guid, (EtaClock, Option<JobView>)>>,
}

impl Following {
    fn observe(&self, upload: &Upload, entry: &JobEntry, progress: u32) -> Live {
        let now = Instant::now();
        let mut jobs = self.jobs.lock();
        let (clock, _) = jobs
            .entry(upload.guid)
            .or_insert_with(|| (EtaClock::start(entry.status, progress, now), None));
        clock.observe(entry, progress, now)
    }

    /// Whether `view` differs from the view last shown of its job (`true`
    /// for a job not shown yet); records `view` as the one shown now. A
    /// finished job is forgotten.
    fn changed_since_shown(&self, view: &JobView) -> bool {
        let mut jobs = self.jobs.lock();
        let changed = match jobs.get(&view.guid) {
            Some((_, Some(last))) => last != view,
            _ => true,
        };
        if view.done {
            jobs.remove(&view.guid);
        } else if let Some((_, last)) = jobs.get_mut(&view.guid) {
            *last = Some(view.clone());
        }
        changed
    }

    /// The live facts last shown for a job.
    fn live(&self, guid: Guid) -> Live {
        self.jobs
            .lock()
            .get(&guid)
            .and_then(|(_, last)| last.as_ref().map(|v| v.live.clone()))
            .unwrap_or_default()
    }
}
