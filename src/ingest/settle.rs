//! When a file dropped in a folder is complete: its size and modification
//! time have not changed for the folder's settle time and no process on
//! this machine has it open for writing (Linux `/proc`). Plain `std::fs`,
//! called through [`crate::fsutil::off_runtime`].

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::Contents;

/// A file's size and modification time when last looked at, and since when
/// they have been the same.
struct SameSince {
    len: u64,
    modified: Option<SystemTime>,
    since: Instant,
}

/// The files of one folder that are not yet complete.
pub(super) struct Settling {
    /// How long a file must stay unchanged.
    settle: Duration,
    files: HashMap<OsString, SameSince>,
}

impl Settling {
    pub(super) fn new(settle: Duration) -> Self {
        Settling {
            settle,
            files: HashMap::new(),
        }
    }

    /// Whether any file is being waited for.
    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Lists `folder` and returns the names of the files of `contents` that
    /// are complete, forgetting files that went away. Hidden files, folders
    /// and symlinks are never jobs.
    pub(super) fn complete_files(&mut self, folder: &Path, contents: &Contents) -> Vec<OsString> {
        let Ok(entries) = std::fs::read_dir(folder) else {
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
                || !contents.wants(&name)
            {
                continue;
            }
            present.insert(name.clone());
            let (len, modified) = (meta.len(), meta.modified().ok());
            match self.files.get_mut(&name) {
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
                    *seen = SameSince {
                        len,
                        modified,
                        since: now,
                    }
                }
                None => {
                    self.files.insert(
                        name,
                        SameSince {
                            len,
                            modified,
                            since: now,
                        },
                    );
                }
            }
        }
        self.files
            .retain(|name, _| present.contains(name) && !ready.contains(name));
        ready
    }
}

/// Whether any process has `path` open for writing (Linux `/proc`): a copy
/// that pauses keeps its file open, which size checks alone cannot see.
/// Processes this one may not inspect are not seen.
fn open_for_writing(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else {
        return false;
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    for process in processes.flatten() {
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link == target) {
                let info = process.path().join("fdinfo").join(fd.file_name());
                let flags = std::fs::read_to_string(info)
                    .ok()
                    .and_then(|text| {
                        let line = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
                        u32::from_str_radix(line.trim(), 8).ok()
                    })
                    .unwrap_or(0);
                // O_WRONLY = 1, O_RDWR = 2.
                if flags & 0o3 != 0 {
                    return true;
                }
            }
        }
    }
    false
}
