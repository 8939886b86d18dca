//! When a file dropped in a folder is complete. On a local file system the
//! folder's events say so: the file was closed after its last write
//! ([`super::events`]). Otherwise (a network file system, no watcher, or a
//! file the events said nothing about) its size and modification time have
//! not changed for the folder's settle time and no process on this machine
//! has it open for writing (Linux `/proc`). Plain `std::fs`, called through
//! [`crate::fsutil::off_runtime`].

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::Contents;
use super::events::{LastWrite, WriteEvents};

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
    /// and symlinks are never jobs. `writes`: the folder's events, when
    /// they can be trusted.
    pub(super) fn complete_files(
        &mut self,
        folder: &Path,
        contents: &Contents,
        writes: Option<&WriteEvents>,
    ) -> Vec<OsString> {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return Vec::new();
        };
        let (now, settle) = (Instant::now(), self.settle);
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
            match writes.and_then(|w| w.last_write(&name)) {
                // Closed after its last write: complete. An empty file may
                // be a placeholder its writer opens again: let it settle.
                Some(LastWrite::Closed) if len > 0 => {
                    ready.push(name);
                    continue;
                }
                // Its writer still has it open; its close will be heard.
                Some(LastWrite::StillOpen) => {
                    self.look(name, len, modified, now);
                    continue;
                }
                _ => {}
            }
            let path = entry.path();
            let Some(seen) = self.look(name.clone(), len, modified, now) else {
                continue;
            };
            if now.duration_since(seen.since) < settle {
                continue;
            }
            // A copy that pauses keeps its file open: not done yet.
            if open_for_writing(&path) {
                seen.since = now;
            } else {
                ready.push(name);
            }
        }
        self.files
            .retain(|name, _| present.contains(name) && !ready.contains(name));
        ready
    }

    /// Notes a file's size and time: the file's entry if they are the same
    /// as at the last look, `None` if it is new or changed (its settle time
    /// starts again now).
    fn look(
        &mut self,
        name: OsString,
        len: u64,
        modified: Option<SystemTime>,
        now: Instant,
    ) -> Option<&mut SameSince> {
        let fresh = SameSince {
            len,
            modified,
            since: now,
        };
        match self.files.entry(name) {
            Entry::Occupied(entry) => {
                let seen = entry.into_mut();
                if seen.len == len && seen.modified == modified {
                    return Some(seen);
                }
                *seen = fresh;
            }
            Entry::Vacant(entry) => {
                entry.insert(fresh);
            }
        }
        None
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
