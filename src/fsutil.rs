//! Durable, never-half-visible file placement, shared by uploads and encodes.
//!
//! Everything is written under a `tmp/` folder first, fsynced, and only then
//! linked into its public folder under a name that does not exist yet, so a
//! crash leaves at worst a stray temp file (cleaned at start) and never a
//! partial or overwritten file where users look.

use std::io;
use std::path::{Path, PathBuf};

/// Hidden copies being staged in a public folder across file systems.
const STAGING_SUFFIX: &str = ".incoming";

/// How many `-N` suffixes to try before giving up on a name.
const MAX_SUFFIX: u32 = 9_999;

/// A temp file path that is deleted on drop unless [`TempFile::persist_unique`]
/// moved it into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A fresh unique path in `dir` (the file itself is created by the caller).
    pub fn new_in(dir: &Path, extension: &str) -> Self {
        let name = format!("{}.{}.part", uuid::Uuid::new_v4().simple(), extension);
        TempFile {
            path: dir.join(name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file to disk and links it into `dir` as `stem.ext`, or
    /// `stem-1.ext`, `stem-2.ext`… if taken. Never overwrites. Returns the
    /// final path.
    pub fn persist_unique(self, dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
        std::fs::File::open(&self.path)?.sync_all()?;
        // `self` drops on return and removes the temp name.
        link_unique(&self.path, dir, stem, extension)
    }
}

/// Links `from` into `dir` as `stem.ext`, or `stem-N.ext` if taken, and
/// makes the new name durable. Never overwrites.
fn link_unique(from: &Path, dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
    let dot = if extension.is_empty() { "" } else { "." };
    for n in 0..=MAX_SUFFIX {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let candidate = dir.join(format!("{stem}{suffix}{dot}{extension}"));
        match link_no_clobber(from, &candidate) {
            Ok(()) => {
                // The file is in place and complete whatever happens next;
                // a failed directory sync only weakens power-cut safety.
                if let Err(e) = sync_dir(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not sync the folder");
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_SUFFIX} files named {stem}-N.{extension} already exist"),
    ))
}

/// Moves `file` into `dir` under its own name, or `name-N.ext` if that is
/// taken (never overwriting). Returns the new path.
pub fn move_unique(file: &Path, dir: &Path) -> io::Result<PathBuf> {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let moved = link_unique(file, dir, &stem, &extension)?;
    std::fs::remove_file(file)?;
    if let Some(parent) = file.parent() {
        sync_dir(parent)?;
    }
    Ok(moved)
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole
/// new one, never part of it (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::File::open(&temp)?.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

impl Drop for TempFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove temp file")
            }
        }
    }
}

/// Makes `to` a name for the complete file at `from`, failing with
/// `AlreadyExists` rather than replacing anything. Across file systems the
/// data is copied to a hidden name beside `to` first.
fn link_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let dir = to.parent().unwrap_or(Path::new("."));
            let staging = dir.join(format!(
                ".{}{STAGING_SUFFIX}",
                uuid::Uuid::new_v4().simple()
            ));
            let staged = std::fs::copy(from, &staging)
                .and_then(|_| std::fs::File::open(&staging)?.sync_all())
                .and_then(|_| std::fs::hard_link(&staging, to));
            let _ = std::fs::remove_file(&staging);
            staged
        }
        other => other,
    }
}

/// Makes a directory's entries (a new name) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes staging copies a crash left in a public folder. Returns how many.
pub fn remove_staging_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(STAGING_SUFFIX) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every entry of `dir` (left over by a crash); creates it if missing.
pub fn reset_dir(dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_without_clobbering_and_cleans_up() {
        let root = tempfile::tempdir().expect("tempdir");
        let (tmp, public) = (root.path().join("tmp"), root.path().join("public"));
        std::fs::create_dir_all(&tmp).expect("mkdir");
        std::fs::create_dir_all(&public).expect("mkdir");
        let mut placed = Vec::new();
        for content in ["one", "two", "three"] {
            let file = TempFile::new_in(&tmp, "mp4");
            std::fs::write(file.path(), content).expect("write");
            placed.push(
                file.persist_unique(&public, "clip", "mp4")
                    .expect("persist"),
            );
        }
        let names: Vec<_> = placed
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(names, ["clip.mp4", "clip-1.mp4", "clip-2.mp4"]);
        assert_eq!(std::fs::read_to_string(&placed[0]).expect("read"), "one");
        assert_eq!(
            std::fs::read_dir(&tmp).expect("ls").count(),
            0,
            "temp names removed"
        );

        let bare = TempFile::new_in(&tmp, "mp4");
        std::fs::write(bare.path(), "x").expect("write");
        let bare = bare.persist_unique(&public, "noext", "").expect("persist");
        assert_eq!(bare.file_name().and_then(|n| n.to_str()), Some("noext"));

        let abandoned = TempFile::new_in(&tmp, "mp4");
        std::fs::write(abandoned.path(), "x").expect("write");
        drop(abandoned);
        assert_eq!(
            std::fs::read_dir(&tmp).expect("ls").count(),
            0,
            "dropped temp removed"
        );
    }
}
