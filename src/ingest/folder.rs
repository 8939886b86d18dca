//! The loop of one watched folder: wakes on file-system events or a timer,
//! takes the files that are complete into `processing/`, submits them under
//! their recorded GUID, and moves media files on when their jobs end. Every
//! file-system call runs off the async runtime ([`off_runtime`]): a slow
//! disk or share stalls this folder, never the portal or the Carbon server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::guid::{forget_stale_guids, recorded_guid};
use super::moves::FolderTree;
use super::settle::Settling;
use super::{Contents, events};
use crate::carbon::{Guid, JobStatus};
use crate::encoder::{Encoder, EncoderError};
use crate::fsutil::off_runtime;

/// How often folders with files settling or jobs running are looked at.
const TICK: Duration = Duration::from_millis(250);

/// One watched folder (watch folder or XML job folder).
pub(super) struct WatchedFolder {
    tree: FolderTree,
    /// How long a file's size and time must stay the same.
    settle: Duration,
    contents: Contents,
}

/// The media jobs this folder has running, by their file in `processing/`.
type RunningJobs = HashMap<PathBuf, Guid>;

/// How a submission went.
enum Submission {
    /// Accepted (or refused for good and moved to `failed/`).
    Done,
    /// A passing failure (database busy, disk hiccup): try again next pass.
    TryAgain,
}

impl WatchedFolder {
    pub(super) fn new(folder: &Path, settle: Duration, contents: Contents) -> Self {
        WatchedFolder {
            tree: FolderTree {
                folder: folder.to_owned(),
            },
            settle,
            contents,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.tree.folder
    }

    /// Watches the folder until `shutdown`.
    pub(super) async fn run(self, encoder: Encoder, rescan: Duration, shutdown: CancellationToken) {
        let folder = Arc::new(self);
        let this = folder.clone();
        if let Err((sub, e)) = off_runtime(move || this.tree.create_subfolders()).await {
            tracing::error!(error = %e, "cannot create {sub}/; this folder is not watched");
            return;
        }
        let (wake, mut woken) = mpsc::channel::<()>(1);
        // Events wake the loop early and, on a local file system, say when
        // a file is complete; the timer below and the settle test are what
        // is relied on without them.
        let this = folder.clone();
        let events = off_runtime(move || events::watch(this.path(), wake)).await;
        if let Err(e) = &events {
            tracing::warn!(error = %e, "no file-system events; relying on rescans and the settle time");
        }
        let writes = events.as_ref().ok().and_then(|e| e.writes.clone());
        tracing::info!("watching for {}", folder.contents.describe());
        let mut running = RunningJobs::new();
        let this = folder.clone();
        let left = off_runtime(move || {
            forget_stale_guids(&this.tree.processing());
            this.tree.in_processing()
        })
        .await;
        // Whatever a previous run left half-way goes on from where it was.
        let mut try_again: Vec<PathBuf> = Vec::new();
        for file in left {
            if let Submission::TryAgain = folder.submit(&encoder, &file, &mut running).await {
                try_again.push(file);
            }
        }
        let mut settling = Settling::new(folder.settle);
        let mut last_pass = Instant::now();
        loop {
            let busy = !settling.is_empty() || !running.is_empty() || !try_again.is_empty();
            tokio::select! {
                _ = woken.recv() => {
                    // A burst of events (a fast copy) makes one pass per tick.
                    tokio::time::sleep(TICK.saturating_sub(last_pass.elapsed())).await;
                    while woken.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(if busy { TICK } else { rescan }) => {}
                _ = shutdown.cancelled() => break,
            }
            last_pass = Instant::now();
            for file in std::mem::take(&mut try_again) {
                if let Submission::TryAgain = folder.submit(&encoder, &file, &mut running).await {
                    try_again.push(file);
                }
            }
            let (this, writes) = (folder.clone(), writes.clone());
            let complete;
            (complete, settling) = off_runtime(move || {
                let complete =
                    settling.complete_files(this.path(), &this.contents, writes.as_deref());
                (complete, settling)
            })
            .await;
            for name in complete {
                let this = folder.clone();
                if let Some(file) = off_runtime(move || this.tree.move_to_processing(&name)).await
                    && let Submission::TryAgain = folder.submit(&encoder, &file, &mut running).await
                {
                    try_again.push(file);
                }
            }
            folder.move_ended_jobs(&encoder, &mut running).await;
        }
        drop(events);
    }

    /// Submits a file in `processing/` under its recorded GUID (recording
    /// one first if it has none), unless that job already exists.
    async fn submit(
        self: &Arc<Self>,
        encoder: &Encoder,
        file: &Path,
        running: &mut RunningJobs,
    ) -> Submission {
        let owned = file.to_owned();
        let guid = match off_runtime(move || recorded_guid(&owned)).await {
            Ok(guid) => guid,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot record the job GUID; will retry");
                return Submission::TryAgain;
            }
        };
        let exists = match encoder.job_state(guid).await {
            Ok(state) => state.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job queue; will retry");
                return Submission::TryAgain;
            }
        };
        if !exists {
            let (this, owned) = (self.clone(), file.to_owned());
            let request = off_runtime(move || this.contents.request(&owned)).await;
            let submitted = match request {
                Ok(request) => encoder.submit(request, guid).await.map_err(|e| match e {
                    EncoderError::Store(e) => Err(e),
                    refused => Ok(refused.to_string()),
                }),
                Err(reason) => Err(Ok(reason.to_string())),
            };
            match submitted {
                Ok(_) => tracing::info!(file = %file.display(), %guid, "job queued"),
                Err(Err(e)) => {
                    tracing::warn!(error = %e, "cannot store the job; will retry");
                    return Submission::TryAgain;
                }
                Err(Ok(reason)) => {
                    tracing::info!(file = %file.display(), %reason, "refused");
                    let (this, owned) = (self.clone(), file.to_owned());
                    off_runtime(move || this.tree.move_to_failed(&owned, &reason)).await;
                    return Submission::Done;
                }
            }
        }
        match self.contents {
            Contents::Media(_) => {
                running.insert(file.to_owned(), guid);
            }
            Contents::XmlJobs => {
                let (this, owned) = (self.clone(), file.to_owned());
                off_runtime(move || this.tree.move_to_processed(&owned, Some(guid))).await;
            }
        }
        Submission::Done
    }

    /// Moves the files of media jobs that have ended to `processed/`
    /// (completed) or `failed/` (with the job's end as the reason).
    async fn move_ended_jobs(self: &Arc<Self>, encoder: &Encoder, running: &mut RunningJobs) {
        let mut ended = Vec::new();
        for (file, guid) in running.iter() {
            match encoder.job_state(*guid).await {
                Ok(Some((JobStatus::Completed, _))) => ended.push((file.clone(), None)),
                Ok(Some((status, description))) if status.is_terminal() => {
                    let reason = if description.is_empty() {
                        format!("job {guid} ended {status}")
                    } else {
                        format!("job {guid} ended {status}: {description}")
                    };
                    ended.push((file.clone(), Some(reason)));
                }
                Ok(Some(_)) => {}
                Ok(None) => ended.push((file.clone(), Some(format!("job {guid} was removed")))),
                Err(e) => tracing::warn!(error = %e, "cannot read a job's status"),
            }
        }
        if ended.is_empty() {
            return;
        }
        for (file, _) in &ended {
            running.remove(file);
        }
        let this = self.clone();
        off_runtime(move || {
            for (file, failure) in ended {
                match failure {
                    None => this.tree.move_to_processed(&file, None),
                    Some(reason) => this.tree.move_to_failed(&file, &reason),
                }
            }
        })
        .await;
    }
}
