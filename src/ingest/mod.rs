//! Jobs that arrive as files: watch folders (media files, encoded with the
//! folder's presets) and XML job folders (`cnpsXML` `JobQueue` documents).
//!
//! Both take a file only once its size and modification time have stopped
//! changing for the folder's settle time, then move it through folders
//! beside it:
//!
//! ```text
//! folder/name ──▶ processing/name ──▶ processed/name  (+ name.guid for XML jobs)
//!                                 └─▶ failed/name + failed/name.error.txt
//! ```
//!
//! The job's GUID is written (hidden, `processing/.name.guid`) *before* the
//! job is submitted, and submitted under that GUID, so a restart at any
//! point neither submits a file twice nor forgets one. The job goes to the
//! encoder through [`Encoder::submit`], the same call the Carbon socket uses.
//! Knows nothing of HTTP or of how the encoder works inside.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod files;

use crate::carbon::message::{Destination, JobQueue, ModuleData, Source};
use crate::carbon::{Guid, JobStatus};
use crate::config::file::{Settings, WatchFolder, XmlFolder};
use crate::encoder::{Encoder, EncoderError};
use crate::fsutil::{self, off_runtime};
use files::{forget_guid, open_for_writing, recorded_guid, short_name, sidecar, xml_job};

/// How often folders with files settling or jobs running are looked at.
const TICK: Duration = Duration::from_millis(250);

/// Longest file name taken (its sidecars add a few bytes; file systems
/// allow 255).
const MAX_NAME: usize = 200;

const PROCESSING: &str = "processing";
const PROCESSED: &str = "processed";
const FAILED: &str = "failed";

/// Starts one task per configured folder; each runs until `shutdown`.
pub fn spawn_all(
    encoder: &Encoder,
    settings: &Settings,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let watch = settings.watch.iter().map(|w| Intake {
        folder: w.folder.clone(),
        settle: w.settle,
        kind: Kind::Media(w.clone()),
    });
    let xml = settings.xml_folders.iter().map(|x: &XmlFolder| Intake {
        folder: x.folder.clone(),
        settle: x.settle,
        kind: Kind::Xml,
    });
    watch
        .chain(xml)
        .map(|intake| {
            let span = tracing::info_span!("intake", folder = %intake.folder.display());
            let (encoder, rescan, stop) = (encoder.clone(), settings.rescan, shutdown.clone());
            tokio::spawn(intake.run(encoder, rescan, stop).instrument(span))
        })
        .collect()
}

/// What a folder's files are.
#[derive(Debug, Clone)]
enum Kind {
    /// Media to encode with the folder's presets; the file is kept in
    /// `processing/` until its job ends.
    Media(WatchFolder),
    /// A `JobQueue` document; done once the job is accepted.
    Xml,
}

/// One watched folder.
struct Intake {
    folder: PathBuf,
    settle: Duration,
    kind: Kind,
}

/// A file seen in the folder, and since when it has looked like this.
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    since: Instant,
}

/// Media jobs running, by file in `processing/`.
type Running = HashMap<PathBuf, Guid>;

/// How a submission went.
enum Submitted {
    /// Accepted (or refused for good and moved to `failed/`).
    Done,
    /// A passing failure (database busy, disk hiccup): try again.
    Later,
}

impl Intake {
    fn sub(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }

    /// Watches the folder until `shutdown`. Every file-system call runs off
    /// the async runtime ([`off_runtime`]): a slow disk or share stalls
    /// this folder, never the portal or the Carbon server.
    async fn run(self, encoder: Encoder, rescan: Duration, shutdown: CancellationToken) {
        let intake = Arc::new(self);
        let this = intake.clone();
        let made = off_runtime(move || {
            for sub in [PROCESSING, PROCESSED, FAILED] {
                std::fs::create_dir_all(this.sub(sub)).map_err(|e| (sub, e))?;
            }
            Ok(())
        })
        .await;
        if let Err((sub, e)) = made {
            tracing::error!(error = %e, "cannot create {sub}/; this folder is not watched");
            return;
        }
        let (tx, mut events) = mpsc::channel::<()>(1);
        // Events only wake the loop early; the timer below is what is relied on.
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        })
        .and_then(|mut w| {
            use notify::Watcher;
            w.watch(&intake.folder, notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        });
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "no file-system events; relying on rescans");
        }
        tracing::info!("watching for {}", intake.kind.describe());
        let mut running = Running::new();
        let this = intake.clone();
        let left = off_runtime(move || {
            this.forget_stale_guids();
            this.in_processing()
        })
        .await;
        // Whatever a previous run left half-way goes on from where it was.
        let mut later: Vec<PathBuf> = Vec::new();
        for file in left {
            if let Submitted::Later = intake.submit(&encoder, &file, &mut running).await {
                later.push(file);
            }
        }
        let mut settling: HashMap<OsString, Seen> = HashMap::new();
        let mut last_pass = Instant::now();
        loop {
            let busy = !settling.is_empty() || !running.is_empty() || !later.is_empty();
            tokio::select! {
                _ = events.recv() => {
                    // A burst of events (a fast copy) makes one pass per tick.
                    tokio::time::sleep(TICK.saturating_sub(last_pass.elapsed())).await;
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(if busy { TICK } else { rescan }) => {}
                _ = shutdown.cancelled() => break,
            }
            last_pass = Instant::now();
            for file in std::mem::take(&mut later) {
                if let Submitted::Later = intake.submit(&encoder, &file, &mut running).await {
                    later.push(file);
                }
            }
            let this = intake.clone();
            let ready;
            (ready, settling) = off_runtime(move || (this.settled(&mut settling), settling)).await;
            for name in ready {
                let this = intake.clone();
                if let Some(file) = off_runtime(move || this.take(&name)).await
                    && let Submitted::Later = intake.submit(&encoder, &file, &mut running).await
                {
                    later.push(file);
                }
            }
            intake.follow(&encoder, &mut running).await;
        }
        drop(watcher);
    }

    /// Lists the folder and returns the files that have not changed for the
    /// settle time (forgetting files that went away).
    fn settled(&self, settling: &mut HashMap<OsString, Seen>) -> Vec<OsString> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut present = HashSet::new();
        let mut ready = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Symlinks and folders (ours included) are not jobs.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if name.as_encoded_bytes().starts_with(b".")
                || !meta.is_file()
                || !self.kind.wants(&name)
            {
                continue;
            }
            present.insert(name.clone());
            let (len, modified) = (meta.len(), meta.modified().ok());
            match settling.get_mut(&name) {
                Some(seen) if seen.len == len && seen.modified == modified => {
                    if now.duration_since(seen.since) < self.settle {
                        continue;
                    }
                    // A copy that pauses keeps its file open: not done yet.
                    if open_for_writing(&entry.path()) {
                        seen.since = now;
                    } else {
                        ready.push(name);
                    }
                }
                Some(seen) => {
                    *seen = Seen {
                        len,
                        modified,
                        since: now,
                    }
                }
                None => {
                    settling.insert(
                        name,
                        Seen {
                            len,
                            modified,
                            since: now,
                        },
                    );
                }
            }
        }
        settling.retain(|name, _| present.contains(name) && !ready.contains(name));
        ready
    }

    /// Moves a settled file into `processing/`; a name the job system cannot
    /// carry goes to `failed/` instead.
    fn take(&self, name: &OsStr) -> Option<PathBuf> {
        let file = self.folder.join(name);
        let empty = file.metadata().is_ok_and(|m| m.len() == 0);
        let unusable = match name.to_str() {
            None => Some("the file name is not valid UTF-8; rename the file".to_owned()),
            Some(text) if text.len() > MAX_NAME => Some(format!(
                "the file name is longer than {MAX_NAME} bytes; rename the file"
            )),
            Some(_) if empty => Some("the file is empty".to_owned()),
            Some(_) => None,
        };
        if let Some(reason) = unusable {
            self.fail(&file, &reason);
            return None;
        }
        let taken =
            fsutil::free_name(&self.sub(PROCESSING), name, fsutil::is_free).and_then(|to| {
                // A GUID left for this name belongs to no file: a new one starts here.
                forget_guid(&to);
                fsutil::move_to(&file, &to).map(|()| to)
            });
        match taken {
            Ok(to) => {
                tracing::info!(file = %to.display(), "taken");
                Some(to)
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot take the file; will retry");
                None
            }
        }
    }

    /// Removes GUIDs recorded for files no longer in `processing/` (a crash
    /// between moving a file on and forgetting its GUID).
    fn forget_stale_guids(&self) {
        let Ok(entries) = std::fs::read_dir(self.sub(PROCESSING)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(file) = name
                .to_str()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".guid"))
            else {
                continue;
            };
            if fsutil::is_free(&self.sub(PROCESSING).join(file)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn in_processing(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.sub(PROCESSING))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Submits a file in `processing/` under its recorded GUID (recording
    /// one first if it has none), unless that job already exists.
    async fn submit(
        self: &Arc<Self>,
        encoder: &Encoder,
        file: &Path,
        running: &mut Running,
    ) -> Submitted {
        let owned = file.to_owned();
        let guid = match off_runtime(move || recorded_guid(&owned)).await {
            Ok(guid) => guid,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot record the job GUID; will retry");
                return Submitted::Later;
            }
        };
        let exists = match encoder.job_state(guid).await {
            Ok(state) => state.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job queue; will retry");
                return Submitted::Later;
            }
        };
        if !exists {
            let (this, owned) = (self.clone(), file.to_owned());
            let request = off_runtime(move || this.kind.request(&owned)).await;
            let submitted = match request {
                Ok(request) => encoder.submit(request, guid).await.map_err(|e| match e {
                    EncoderError::Store(e) => Err(e),
                    refused => Ok(refused.to_string()),
                }),
                Err(reason) => Err(Ok(reason)),
            };
            match submitted {
                Ok(_) => tracing::info!(file = %file.display(), %guid, "job queued"),
                Err(Err(e)) => {
                    tracing::warn!(error = %e, "cannot store the job; will retry");
                    return Submitted::Later;
                }
                Err(Ok(reason)) => {
                    tracing::info!(file = %file.display(), %reason, "refused");
                    let (this, owned) = (self.clone(), file.to_owned());
                    off_runtime(move || this.fail(&owned, &reason)).await;
                    return Submitted::Done;
                }
            }
        }
        match self.kind {
            Kind::Media(_) => {
                running.insert(file.to_owned(), guid);
            }
            Kind::Xml => {
                let (this, owned) = (self.clone(), file.to_owned());
                off_runtime(move || this.finish(&owned, Some(guid))).await;
            }
        }
        Submitted::Done
    }

    /// Moves the files of media jobs that have ended.
    async fn follow(self: &Arc<Self>, encoder: &Encoder, running: &mut Running) {
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
                    None => this.finish(&file, None),
                    Some(reason) => this.fail(&file, &reason),
                }
            }
        })
        .await;
    }

    /// Moves a done file to `processed/`, with its job GUID beside it for
    /// XML jobs.
    fn finish(&self, file: &Path, guid: Option<Guid>) {
        let note = guid.map(|g| ("guid", format!("{g}\n")));
        self.move_out(file, PROCESSED, note);
    }

    /// Moves a file that could not become a finished job to `failed/`, with
    /// the reason in `failed/name.error.txt`.
    fn fail(&self, file: &Path, reason: &str) {
        self.move_out(file, FAILED, Some(("error.txt", format!("{reason}\n"))));
    }

    /// Moves `file` into `sub/` under a name free for it and its note
    /// (`name.suffix`), writes the note, and forgets the file's GUID. No
    /// user file is ever overwritten.
    fn move_out(&self, file: &Path, sub: &str, note: Option<(&str, String)>) {
        let Some(name) = file.file_name().map(short_name) else {
            return;
        };
        let name = name.as_os_str();
        let suffix = note.as_ref().map(|(suffix, _)| *suffix);
        let free = |candidate: &Path| {
            fsutil::is_free(candidate)
                && suffix.is_none_or(|s| fsutil::is_free(&sidecar(candidate, s)))
        };
        let moved = fsutil::free_name(&self.sub(sub), name, free)
            .and_then(|to| fsutil::move_to(file, &to).map(|()| to));
        match moved {
            Ok(to) => {
                if let Some((suffix, text)) = &note {
                    let beside = sidecar(&to, suffix);
                    if let Err(e) = fsutil::write_new(&beside, text.as_bytes()) {
                        tracing::warn!(error = %e, "cannot write {}", beside.display());
                    }
                }
                forget_guid(file);
                tracing::info!(file = %to.display(), "moved to {sub}/");
            }
            Err(e) => tracing::error!(file = %file.display(), error = %e, "cannot move to {sub}/"),
        }
    }
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Media(_) => "media files",
            Kind::Xml => "XML job files",
        }
    }

    fn wants(&self, name: &OsStr) -> bool {
        match self {
            Kind::Media(_) => true,
            Kind::Xml => Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xml")),
        }
    }

    /// The `JobQueue` a file in `processing/` stands for.
    fn request(&self, file: &Path) -> Result<JobQueue, String> {
        match self {
            Kind::Media(watch) => Ok(media_job(watch, file)),
            Kind::Xml => {
                let mut job = xml_job(file)?;
                // Say where it came from when the document does not.
                if job.user.as_deref().is_none_or(|u| u.trim().is_empty()) {
                    let folder = file.parent().and_then(Path::parent).unwrap_or(file);
                    job.user = Some(format!("xml:{}", folder.display()));
                }
                Ok(job)
            }
        }
    }
}

/// A watch folder's job for `file`: one destination per preset.
fn media_job(watch: &WatchFolder, file: &Path) -> JobQueue {
    let text = |p: &Path| p.to_string_lossy().into_owned();
    JobQueue {
        job_name: file.file_name().map(|n| n.to_string_lossy().into_owned()),
        user: Some(format!("watch:{}", watch.folder.display())),
        sources: vec![Source::file(text(file))],
        destinations: watch
            .presets
            .iter()
            .map(|preset| Destination {
                preset_guid: Some(preset.guid.to_string()),
                module_guid: None,
                module_data: ModuleData {
                    path: Some(text(&watch.output)),
                    base_file_name: Some(preset.base_name.clone()),
                },
                ..Destination::default()
            })
            .collect(),
        ..JobQueue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.mp4");
        let first = recorded_guid(&file).expect("recorded");
        assert_eq!(recorded_guid(&file).expect("read back"), first);
        assert!(dir.path().join(".a.mp4.guid").is_file());
        forget_guid(&file);
        assert_ne!(recorded_guid(&file).expect("new"), first);
    }

    #[test]
    fn xml_files_must_be_job_queues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("j.xml");
        std::fs::write(&file, "<cnpsXML TaskType=\"JobList\"/>").expect("write");
        assert!(xml_job(&file).expect_err("not a job").contains("JobList"));
        std::fs::write(&file, "<cnpsXML TaskType=\"JobQueue\"><Sources>").expect("write");
        assert!(xml_job(&file).is_err());
        // Latin-1 bytes (not UTF-8) read as the socket reads them.
        let mut latin = b"<cnpsXML TaskType=\"JobQueue\" JobName=\"caf".to_vec();
        latin.extend([0xE9]);
        latin.extend(b"\"><Sources><Module_0 Filename=\"/a\"/></Sources></cnpsXML>");
        std::fs::write(&file, latin).expect("write");
        assert_eq!(
            xml_job(&file).expect("parses").job_name.as_deref(),
            Some("café")
        );
    }
}
