//! What a finished encode becomes: its outputs moved into place (and the
//! copies `FileCopy_n` asks for), then the job's outcome written: COMPLETED
//! with its outputs, ERROR with the reason, STOPPED. Every write is the
//! lease holder's: once another node may have the job, nothing is placed,
//! and outputs placed meanwhile are removed.

use std::path::{Path, PathBuf};

use super::control::STOPPED_BY_COMMAND;
use super::failure::{FileName, JobFailure, PublicMessage};
use super::job::allowed_from;
use super::live_folder::{self, LiveFolder};
use super::preset::ladder::MASTER_PLAYLIST;
use super::{Encoder, farm};
use crate::carbon::JobStatus;
use crate::fsutil::TempFile;
use crate::store::Job;
use crate::store::StoreError;
use crate::store::jobs::{Change, CopySpec, Destination, Lease, Placed};

impl Encoder {
    /// Writes how a job ended: COMPLETED with its outputs, or ERROR with the
    /// reason (not for a job that was stopped); then, whatever happened, a
    /// job asked to stop (STOPPING) is STOPPED.
    pub(super) async fn record_outcome(
        &self,
        lease: &Lease,
        outcome: &Result<Vec<Placed>, Failed>,
        stopped: bool,
    ) -> Result<(), StoreError> {
        let jobs = &self.inner.jobs;
        match outcome {
            Ok(outputs) => {
                let done = jobs
                    .complete(lease, allowed_from(JobStatus::Completed), outputs)
                    .await?;
                if !done {
                    self.discard_if_lost(lease, outputs).await?;
                }
            }
            Err(failed) => {
                // Outputs already in place (a copy failed after them) are
                // the job's: recorded, so they are reported, not orphaned.
                // A ladder recorded while it encoded, and removed since,
                // is forgotten.
                if !jobs.record_outputs(lease, &failed.placed).await? {
                    return self.discard_if_lost(lease, &failed.placed).await;
                }
                if stopped {
                    return self.mark_stopped(lease).await;
                }
                let change = Change {
                    failure: Some(PublicMessage::from(&failed.reason).into_string()),
                    ..Change::default()
                };
                let to = JobStatus::Error;
                jobs.transition_held(lease, allowed_from(to), to, change)
                    .await?;
            }
        }
        self.mark_stopped(lease).await
    }

    /// A job asked to stop (STOPPING) is STOPPED.
    pub(super) async fn mark_stopped(&self, lease: &Lease) -> Result<(), StoreError> {
        let change = Change {
            failure: Some(STOPPED_BY_COMMAND.to_owned()),
            ..Change::default()
        };
        let (from, to) = ([JobStatus::Stopping], JobStatus::Stopped);
        self.inner
            .jobs
            .transition_held(lease, &from, to, change)
            .await?;
        Ok(())
    }

    /// One last renewal of `lease` (placing outputs of a job another node
    /// took would give it two); a database error counts as lost.
    pub(super) async fn still_held(&self, lease: &Lease) -> bool {
        match self.inner.jobs.renew_one(lease, farm::lease_ms()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the lease before placing outputs");
                false
            }
        }
    }

    /// Removes outputs placed for a job whose lease turned out lost in the
    /// meantime: the node that took it writes its own.
    pub(super) async fn discard_if_lost(
        &self,
        lease: &Lease,
        placed: &[Placed],
    ) -> Result<(), StoreError> {
        let now = self.inner.jobs.get(lease.guid).await?;
        let ours = now.is_some_and(|job| {
            job.node.as_deref() == Some(lease.node.as_str())
                && i64::from(job.attempts) == lease.attempt
        });
        if ours || placed.is_empty() {
            return Ok(());
        }
        tracing::warn!("lease lost while placing outputs: removing them");
        let placed = placed.to_vec();
        crate::fsutil::off_runtime(move || {
            for p in &placed {
                let removed = match live_folder::folder_of(&p.output) {
                    Some(folder) => std::fs::remove_dir_all(folder),
                    None => std::fs::remove_file(&p.output),
                };
                if let Err(e) = removed {
                    tracing::warn!(output = %p.output.display(), error = %e, "could not remove an output");
                }
            }
            Ok(())
        })
        .await
        .map_err(|e: std::io::Error| StoreError::Corrupt {
            table: "destinations",
            reason: e.to_string(),
        })
    }

    /// Moves each finished encode into its destination under a new name,
    /// then makes the copies `FileCopy_n` asked for (of each output, then
    /// of the source). A failure keeps what was placed before it.
    pub(super) async fn place_outputs(
        &self,
        job: &Job,
        temps: Vec<(Staged, Destination, String)>,
    ) -> Result<Vec<Placed>, Failed> {
        let source = job.source_path.clone();
        let source_copies = job.source_copies.clone();
        tokio::task::spawn_blocking(move || {
            let mut placed = Vec::with_capacity(temps.len());
            let fail = |reason: JobFailure, placed: Vec<Placed>| Err(Failed { reason, placed });
            for (temp, d, extension) in temps {
                let output = match temp.place(&d.dest_dir, &d.base_name, &extension) {
                    Ok(output) => output,
                    Err((name, error)) => {
                        return fail(JobFailure::Place { name, error }, placed);
                    }
                };
                placed.push(Placed {
                    output,
                    copies: Vec::new(),
                });
                let last = placed.len() - 1;
                match make_copies(&placed[last].output, &d.copies) {
                    Ok(copies) => placed[last].copies = copies,
                    Err(reason) => return fail(reason, placed),
                }
            }
            match make_copies(&source, &source_copies) {
                Ok(_) => Ok(placed),
                Err(reason) => fail(reason, placed),
            }
        })
        .await
        .unwrap_or_else(|e| Err(Failed::before_output(e.into())))
    }
}

/// An output being encoded: one temp file, or an HLS ladder's folder
/// in its destination (whose master playlist is the job's output).
#[derive(Debug)]
pub(super) enum Staged {
    File(TempFile),
    Ladder(LiveFolder),
}

impl Staged {
    /// What ffmpeg is told to write: the file, or the folder.
    pub(super) fn path(&self) -> &Path {
        match self {
            Staged::File(file) => file.path(),
            Staged::Ladder(folder) => folder.path(),
        }
    }

    /// Puts it in place: a file is linked into `dir` under a free name, a
    /// ladder (already there) is finished. Returns the output (a ladder's
    /// master playlist), or the name it had and why not.
    fn place(
        self,
        dir: &Path,
        stem: &str,
        extension: &str,
    ) -> Result<PathBuf, (String, std::io::Error)> {
        match self {
            Staged::File(file) => file
                .persist_unique(dir, stem, extension)
                .map_err(|e| (format!("{stem}.{extension}"), e)),
            Staged::Ladder(folder) => {
                let name = format!("{}/{MASTER_PLAYLIST}", FileName::of(folder.path()));
                folder.finish().map_err(|e| (name, e))
            }
        }
    }
}

/// Why a job did not complete, and the outputs it had placed by then.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) reason: JobFailure,
    pub(super) placed: Vec<Placed>,
}

impl Failed {
    pub(super) fn before_output(reason: JobFailure) -> Failed {
        Failed {
            reason,
            placed: Vec::new(),
        }
    }
}

/// Copies `file` as each `FileCopy_n` says; the error names the copy.
fn make_copies(file: &Path, copies: &[CopySpec]) -> Result<Vec<PathBuf>, JobFailure> {
    copies
        .iter()
        .enumerate()
        .map(|(index, copy)| {
            let own = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let name = copy.file.clone().unwrap_or(own);
            let target = copy.dir.join(&name);
            crate::fsutil::copy_whole(file, &target, copy.overwrite).map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    JobFailure::CopyExists { index, name }
                } else {
                    JobFailure::Copy { index, name, error }
                }
            })?;
            Ok(target)
        })
        .collect()
}
