//! Why a job did not complete, and the text its owner is shown.
//!
//! Every way a job can fail is a [`JobFailure`]; what is recorded as the
//! job's `Description` (and so reaches web users through Carbon) is a
//! [`PublicMessage`], which can only be made from a `JobFailure`. The
//! variants hold file names (never paths), preset GUIDs, ffprobe's format
//! names and ffmpeg's words about a run whose files it names without their
//! folders (see [`crate::media::ffmpeg_args`]): no part carries a server
//! folder, so nothing has to be scrubbed afterwards.

use std::ffi::OsStr;
use std::path::Path;

use crate::carbon::PresetId;
use crate::media::process::ProcessError;
use crate::media::{ProbeError, Unusable};
use crate::store::StoreError;

/// A file's name without its folder, for messages users read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn of(path: &Path) -> FileName {
        FileName(
            path.file_name()
                .unwrap_or(OsStr::new(""))
                .to_string_lossy()
                .into_owned(),
        )
    }
}

impl std::fmt::Display for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    #[error("the job has no destination")]
    NoDestination,
    #[error("preset {0} no longer exists")]
    PresetGone(PresetId),
    #[error("the source {0} no longer exists")]
    SourceGone(FileName),
    #[error("cannot read the source: {0}")]
    Unreadable(ProbeError),
    #[error("the source is not a video: {0}")]
    NotVideo(Unusable),
    #[error("the source has no sound for an audio-only preset: {0}")]
    NoSound(Unusable),
    #[error("the job changed status before it could start")]
    ChangedBeforeStart,
    /// A full disk is said plainly (ffmpeg's own words follow), since it is
    /// the one failure the operator and not the source must fix.
    #[error("{}", encode_failure(.0))]
    Encode(ProcessError),
    /// Claiming, publishing or finishing an HLS ladder's folder in its
    /// destination (`io::Error`s of file calls name no path).
    #[error("could not write the HLS ladder's folder: {0}")]
    Ladder(std::io::Error),
    #[error("could not place the output {name}: {error}")]
    Place { name: String, error: std::io::Error },
    #[error(
        "FileCopy_{index}: {name} already exists in the target folder \
         (OverWrite.DWD=\"1\" replaces it)"
    )]
    CopyExists { index: usize, name: String },
    #[error("FileCopy_{index}: could not copy to {name}: {error}")]
    Copy {
        index: usize,
        name: String,
        error: std::io::Error,
    },
    #[error("stopped")]
    Stopped,
    /// A chunk of a chunked job failed (its reason names files, not
    /// folders), or its plan could not be made.
    #[error("{0}")]
    Chunk(String),
    #[error("could not join the chunks: {}", encode_failure(.0))]
    Join(ProcessError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("placing the outputs ended unexpectedly: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

fn encode_failure(e: &ProcessError) -> String {
    let text = e.to_string();
    if text.contains("No space left on device") {
        format!("the disk is full: there was no room to write the output ({text})")
    } else {
        text
    }
}

/// The text a job's owner is shown for a failure (the job's
/// `Description`). Made only from a [`JobFailure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicMessage(String);

impl PublicMessage {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<&JobFailure> for PublicMessage {
    fn from(failure: &JobFailure) -> PublicMessage {
        PublicMessage(failure.to_string())
    }
}

impl std::fmt::Display for PublicMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_files_not_folders() {
        let gone = JobFailure::SourceGone(FileName::of(Path::new("/srv/media/in/clip.mov")));
        assert_eq!(
            PublicMessage::from(&gone).as_str(),
            "the source clip.mov no longer exists"
        );
        let full = JobFailure::Encode(ProcessError::Failed {
            program: "ffmpeg".into(),
            status: "exit status: 1".into(),
            stderr: "out.mp4: No space left on device".into(),
        });
        assert!(
            PublicMessage::from(&full)
                .as_str()
                .starts_with("the disk is full")
        );
    }
}
