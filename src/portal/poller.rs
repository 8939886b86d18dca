//! The one poller: asks the encoder (over Carbon, `JobStatusList` per GUID,
//! pipelined on one connection) about every unfinished upload, records what
//! changed and publishes it to the hub. Browsers never poll.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Portal;
use super::jobs::JobView;
use super::ws::HubEvent;
use crate::carbon::{JobEntry, JobStatus};
use crate::store::Upload;

/// Said of a job the encoder no longer knows (its database was reset, or the
/// job was removed there).
const FORGOTTEN: &str = "the encoding server no longer knows this job";

impl Portal {
    /// Starts the poller; it stops when `shutdown` is cancelled.
    pub fn spawn_poller(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let portal = self.clone();
        tokio::spawn(async move { portal.poll_loop(shutdown).await })
    }

    async fn poll_loop(self, shutdown: CancellationToken) {
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
                match self.inner.client.statuses(&guids).await {
                    Ok(statuses) => {
                        if encoder_was_down {
                            tracing::info!("encoding server reachable again");
                            encoder_was_down = false;
                        }
                        for (upload, (_, entry)) in unfinished.iter().zip(statuses) {
                            self.apply(upload, entry.as_ref()).await;
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

    /// Records and publishes a job's new state, if it changed.
    async fn apply(&self, upload: &Upload, entry: Option<&JobEntry>) {
        let (status, progress, description) = match entry {
            Some(e) => (e.status, e.progress.min(100), e.description.as_str()),
            None => (JobStatus::Error, upload.progress, FORGOTTEN),
        };
        // Within one run the bar never moves back, whatever a server reports.
        let progress = if status == upload.status {
            progress.max(upload.progress)
        } else {
            progress
        };
        if (status, progress, description)
            == (upload.status, upload.progress, upload.description.as_str())
        {
            return;
        }
        if let Err(e) = self
            .inner
            .uploads
            .record_state(upload.guid, status, progress, description)
            .await
        {
            tracing::error!(error = %e, "cannot record a job's state");
            return;
        }
        let updated = Upload {
            status,
            progress,
            description: description.to_owned(),
            ..upload.clone()
        };
        let _ = self.inner.hub.send(HubEvent::Job(JobView::from(&updated)));
        if status == JobStatus::Completed {
            // Listing may probe new files: never hold up other jobs' updates.
            let portal = self.clone();
            tokio::spawn(async move { portal.publish_library().await });
        }
    }
}
