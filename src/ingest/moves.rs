//! A watched folder's tree and the moves through it:
//!
//! ```text
//! folder/name ──▶ processing/name ──▶ processed/name  (+ name.guid for XML jobs)
//!                                 └─▶ failed/name + failed/name.error.txt
//! ```
//!
//! Nothing is ever overwritten: a taken name becomes `name-1`, `name-2`, ….
//! Plain `std::fs`, called through [`crate::fsutil::off_runtime`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::guid::forget_guid;
use crate::carbon::Guid;
use crate::fsutil;

/// Longest file name taken (its sidecars add a few bytes; file systems
/// allow 255).
const MAX_NAME: usize = 200;

const PROCESSING: &str = "processing";
const PROCESSED: &str = "processed";
const FAILED: &str = "failed";

/// A watched folder and its `processing/`, `processed/` and `failed/`.
pub(super) struct FolderTree {
    pub(super) folder: PathBuf,
}

impl FolderTree {
    fn subfolder(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }

    pub(super) fn processing(&self) -> PathBuf {
        self.subfolder(PROCESSING)
    }

    /// Creates the three subfolders; on failure, says which.
    pub(super) fn create_subfolders(&self) -> Result<(), (&'static str, std::io::Error)> {
        for sub in [PROCESSING, PROCESSED, FAILED] {
            std::fs::create_dir_all(self.subfolder(sub)).map_err(|e| (sub, e))?;
        }
        Ok(())
    }

    /// The files in `processing/` (a previous run's, at start), sorted.
    pub(super) fn in_processing(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.processing())
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

    /// Moves a complete file into `processing/`; a name the job system
    /// cannot carry (or an empty file) goes to `failed/` instead.
    pub(super) fn move_to_processing(&self, name: &OsStr) -> Option<PathBuf> {
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
            self.move_to_failed(&file, &reason);
            return None;
        }
        let taken = fsutil::free_name(&self.processing(), name, fsutil::is_free).and_then(|to| {
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

    /// Moves a done file to `processed/`, with its job GUID beside it for
    /// XML jobs.
    pub(super) fn move_to_processed(&self, file: &Path, guid: Option<Guid>) {
        let note = guid.map(|g| ("guid", format!("{g}\n")));
        self.move_out(file, PROCESSED, note);
    }

    /// Moves a file that could not become a finished job to `failed/`, with
    /// the reason in `failed/name.error.txt`.
    pub(super) fn move_to_failed(&self, file: &Path, reason: &str) {
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
        let moved = fsutil::free_name(&self.subfolder(sub), name, free)
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

/// A name short enough to carry a note beside it (`name.error.txt`): a
/// name over [`MAX_NAME`] bytes keeps its start and its extension.
fn short_name(name: &OsStr) -> OsString {
    if name.len() <= MAX_NAME {
        return name.to_owned();
    }
    let text = name.to_string_lossy();
    let path = Path::new(text.as_ref());
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .filter(|e| e.len() <= 16)
        .unwrap_or_default();
    let mut stem: String = String::new();
    for c in text.chars() {
        if stem.len() + c.len_utf8() + extension.len() + 1 > MAX_NAME {
            break;
        }
        stem.push(c);
    }
    if extension.is_empty() {
        stem.into()
    } else {
        format!("{stem}.{extension}").into()
    }
}

/// `dir/name` → `dir/name.suffix`.
fn sidecar(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    file.with_file_name(name)
}
