//! Jobs that arrive as files: watch folders (media files, encoded with the
//! folder's presets) and XML job folders (`cnpsXML` `JobQueue` documents).
//!
//! Both take a file only once it is complete, then move it through folders
//! beside it (`processing/`, then `processed/` or `failed/`). The job's GUID
//! is recorded *before* the job is submitted, and submitted under that GUID,
//! so a restart at any point neither submits a file twice nor forgets one.
//! The job goes to the encoder through [`Encoder::submit`], the same call
//! the Carbon socket uses. Knows nothing of HTTP or of how the encoder
//! works inside.
//!
//! - `folder`: the loop of one folder: wakes, takes complete files,
//!   submits them, follows media jobs to their end.
//! - `events`: the folder's `notify` events; on a local file system they
//!   say when a file was closed after being written.
//! - `settle`: whether a file is complete: closed after its last write, or
//!   (network file systems, no events) size and time unchanged for the
//!   settle time and not open for writing.
//! - `moves`: the `processing/` → `processed/` / `failed/` moves.
//! - `guid`: the GUID sidecars recorded before a submit.
//! - `xml`: reading an XML job file as the socket would.

use std::ffi::OsStr;
use std::path::Path;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod events;
mod folder;
mod guid;
mod moves;
mod settle;
mod xml;

use crate::carbon::message::{Destination, JobQueue, ModuleData, Source};
use crate::config::file::{Settings, WatchFolder};
use crate::encoder::Encoder;
use folder::WatchedFolder;

/// Starts one task per configured folder; each runs until `shutdown`.
pub fn spawn_all(
    encoder: &Encoder,
    settings: &Settings,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let watch = settings
        .watch
        .iter()
        .map(|w| WatchedFolder::new(&w.folder, w.settle, Contents::Media(w.clone())));
    let xml = settings
        .xml_folders
        .iter()
        .map(|x| WatchedFolder::new(&x.folder, x.settle, Contents::XmlJobs));
    watch
        .chain(xml)
        .map(|folder| {
            let span = tracing::info_span!("intake", folder = %folder.path().display());
            let (encoder, rescan, stop) = (encoder.clone(), settings.rescan, shutdown.clone());
            tokio::spawn(folder.run(encoder, rescan, stop).instrument(span))
        })
        .collect()
}

/// What a folder's files are, and so what a file there asks for.
#[derive(Debug, Clone)]
enum Contents {
    /// Media to encode with the folder's presets; the file is kept in
    /// `processing/` until its job ends.
    Media(WatchFolder),
    /// `JobQueue` documents; a file is done once its job is accepted.
    XmlJobs,
}

impl Contents {
    fn describe(&self) -> &'static str {
        match self {
            Contents::Media(_) => "media files",
            Contents::XmlJobs => "XML job files",
        }
    }

    /// Whether a file named `name` is one of these (XML folders take only
    /// `*.xml`, any case).
    fn wants(&self, name: &OsStr) -> bool {
        match self {
            Contents::Media(_) => true,
            Contents::XmlJobs => Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xml")),
        }
    }

    /// The `JobQueue` a file in `processing/` stands for.
    fn request(&self, file: &Path) -> Result<JobQueue, xml::XmlJobError> {
        match self {
            Contents::Media(watch) => Ok(media_job(watch, file)),
            Contents::XmlJobs => xml::xml_request(file),
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
