//! Watching an HLS ladder while it still encodes: the poller learns each
//! active ladder job's folder from the encoder (the job's target file is
//! named as soon as the encoder claims the folder), records it as the
//! upload's output at once (so a private library lets its owner, and only
//! them, fetch its segments), and says the job is watchable once the
//! folder's master playlist exists: the encoder writes it only when every
//! rung has a whole segment.
//!
//! Knows the folder layout ([`super::library::ladder`]) and the encoder's
//! answers; nothing of how the page shows it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Portal;
use super::library::ladder;
use crate::carbon::{Guid, JobStatus};
use crate::store::Upload;

/// What is known of the active ladder jobs followed.
#[derive(Debug, Default)]
pub struct LiveLadders {
    jobs: Mutex<HashMap<Guid, LiveLadder>>,
}

/// How long the poller waits before asking the encoder again for a
/// ladder job's folder (a server that names it only at the end, as a real
/// Carbon server would, is not asked on every poll).
const ASK_AGAIN: Duration = Duration::from_secs(2);

/// One active ladder job.
#[derive(Debug, Clone, Default)]
struct LiveLadder {
    /// Its folder in the streams folder, once the encoder named it.
    folder: Option<String>,
    /// Whether its master playlist was seen (the library then lists it).
    playable: bool,
    /// When the encoder was last asked for the folder.
    asked: Option<Instant>,
}

impl Portal {
    /// The library item (the ladder's folder) of `upload`'s job if it can
    /// be watched while it still encodes; `None` for any other job, or
    /// before its first segment of every rung exists. A job that ended
    /// is forgotten; if it had been listed the library is published
    /// again (a stopped ladder's folder is gone, a finished one changed).
    pub(super) async fn watchable_ladder(
        &self,
        upload: &Upload,
        status: JobStatus,
    ) -> Option<String> {
        let live = &self.inner.live_ladders;
        if status.is_terminal() {
            let was = live.jobs.lock().remove(&upload.guid);
            if status != JobStatus::Completed
                && let Some(was) = was.filter(|l| l.folder.is_some())
            {
                self.forget_stopped_ladder(upload, was.playable).await;
            }
            return None;
        }
        if !encodes_now(status) || !self.is_ladder_preset(&upload.preset_name) {
            return None;
        }
        let known = live.jobs.lock().entry(upload.guid).or_default().clone();
        let folder = match known.folder {
            Some(folder) => folder,
            None if known.asked.is_some_and(|at| at.elapsed() < ASK_AGAIN) => return None,
            None => self.learn_folder(upload).await?,
        };
        if known.playable {
            return Some(folder);
        }
        let master = self.config().streams_dir.join(&folder).join(ladder::MASTER);
        if !tokio::fs::metadata(&master)
            .await
            .is_ok_and(|m| m.is_file())
        {
            return None;
        }
        if let Some(job) = live.jobs.lock().get_mut(&upload.guid) {
            job.playable = true;
        }
        tracing::info!(guid = %upload.guid, folder, "ladder playable while encoding");
        self.publish_library().await;
        Some(folder)
    }

    /// A ladder job that stopped or failed: the encoder removed its folder,
    /// so it is no longer the upload's output (a later job may take the
    /// name, and must not look like this uploader's), and the library
    /// drops it if it was listed. Completion publishes the library itself.
    async fn forget_stopped_ladder(&self, upload: &Upload, was_listed: bool) {
        if let Err(e) = self.inner.uploads.record_outputs(upload.guid, &[]).await {
            tracing::error!(guid = %upload.guid, error = %e, "cannot forget a stopped ladder's folder");
        }
        if was_listed {
            self.publish_library().await;
        }
    }

    /// Asks the encoder which folder the job writes; once it names one,
    /// records it as the upload's output and remembers it.
    async fn learn_folder(&self, upload: &Upload) -> Option<String> {
        if let Some(job) = self.inner.live_ladders.jobs.lock().get_mut(&upload.guid) {
            job.asked = Some(Instant::now());
        }
        let outputs = match self.fetch_outputs(upload).await {
            Ok(outputs) => outputs,
            Err(e) => {
                tracing::debug!(guid = %upload.guid, error = %e, "cannot ask for a ladder's folder yet");
                return None;
            }
        };
        let ladders: Vec<_> = outputs
            .into_iter()
            .filter(|(name, _)| ladder::item_name(name) != name)
            .collect();
        let folder = ladder::item_name(&ladders.first()?.0).to_owned();
        if let Err(e) = self
            .inner
            .uploads
            .record_outputs(upload.guid, &ladders)
            .await
        {
            tracing::error!(guid = %upload.guid, error = %e, "cannot record a ladder's folder");
            return None;
        }
        if let Some(job) = self.inner.live_ladders.jobs.lock().get_mut(&upload.guid) {
            job.folder = Some(folder.clone());
        }
        Some(folder)
    }
}

/// Whether a job in `status` has started encoding (and not ended): only
/// then may its ladder folder exist.
fn encodes_now(status: JobStatus) -> bool {
    use JobStatus::*;
    matches!(status, Preparing | Started | Pausing | Paused | Resuming)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_started_job_can_have_a_folder() {
        for status in [
            JobStatus::Queued,
            JobStatus::Starting,
            JobStatus::Completed,
            JobStatus::Error,
            JobStatus::Stopped,
            JobStatus::Invalid,
        ] {
            assert!(!encodes_now(status), "{status:?}");
        }
        for status in [JobStatus::Started, JobStatus::Paused, JobStatus::Preparing] {
            assert!(encodes_now(status), "{status:?}");
        }
    }
}
