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

/// Runs `work` — file-system calls that may block (a slow disk, a hung
/// network share) — on tokio's blocking pool, so async code never stalls
/// a runtime worker on them. A panic in `work` is passed on.
pub async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime shuts down, which drops this
        // task too; there is nothing to return to.
        Err(_) => std::future::pending().await,
    }
}

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

/// fsyncs every file under `dir` and every folder's entries.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Links `from` into `dir` as `stem.ext`, or `stem-N.ext` if taken, and
/// makes the new name durable. Never overwrites.
fn link_unique(from: &Path, dir: &Path, stem: &str, extension: &str) -> io::Result<PathBuf> {
    let placed = claim_unique(dir, stem, extension, |candidate| {
        link_no_clobber(from, candidate)
    })?;
    // The file is in place and complete whatever happens next; a failed
    // directory sync only weakens power-cut safety.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not sync the folder");
    }
    Ok(placed)
}

/// `stem.ext`, `stem-1.ext`, `stem-2.ext`… (no dot when `extension` is
/// empty: a folder): the names [`claim_unique`] tries, in its order.
pub fn numbered_names<'a>(stem: &'a str, extension: &'a str) -> impl Iterator<Item = String> + 'a {
    let dot = if extension.is_empty() { "" } else { "." };
    (0..=MAX_SUFFIX).map(move |n| match n {
        0 => format!("{stem}{dot}{extension}"),
        n => format!("{stem}-{n}{dot}{extension}"),
    })
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), in one
/// step: a folder built under a hidden name appears whole or not at all.
/// Where the file system cannot refuse a replacement itself
/// (`RENAME_NOREPLACE` unsupported), `to` is created empty first (which
/// fails if it exists) and replaced, as `rename` replaces an empty folder.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(
            nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP,
        ) => {
            std::fs::create_dir(to)?;
            std::fs::rename(from, to)
        }
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// Moves the folder `from` to `to` unless `to` exists (then
/// `AlreadyExists`, `to` left alone), so that `to` appears whole or not at
/// all. Across file systems the tree is copied to a hidden staging folder
/// beside `to`, flushed and renamed into place; only then is `from`
/// removed.
pub fn move_tree_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match rename_no_replace(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
        moved => return moved,
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    let staging = dir.join(format!(
        ".{}{STAGING_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ));
    let placed = copy_tree(from, &staging)
        .and_then(|()| sync_tree(&staging))
        .and_then(|()| rename_no_replace(&staging, to));
    if placed.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    placed?;
    sync_dir(dir)?;
    std::fs::remove_dir_all(from)
}

/// Copies the folder `from` to a new folder `to`, files and subfolders.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Calls `claim` on `dir/stem.ext`, then `dir/stem-1.ext`, `dir/stem-2.ext`…
/// (no dot when `extension` is empty: a folder) until it succeeds; it must
/// fail with `AlreadyExists` when the name is taken (`create_dir`, a
/// no-clobber link), which tries the next. Returns the name it took.
pub fn claim_unique(
    dir: &Path,
    stem: &str,
    extension: &str,
    mut claim: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let dot = if extension.is_empty() { "" } else { "." };
    for name in numbered_names(stem, extension) {
        let candidate = dir.join(name);
        match claim(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_SUFFIX} names like {stem}-N{dot}{extension} already exist"),
    ))
}

/// The first of `dir/name`, `dir/stem-1.ext`, `dir/stem-2.ext`… that
/// `free` accepts (e.g. "nothing by that name, nor its sidecar").
pub fn free_name(
    dir: &Path,
    name: &std::ffi::OsStr,
    free: impl Fn(&Path) -> bool,
) -> io::Result<PathBuf> {
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    for n in 0..=MAX_SUFFIX {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            let mut numbered = stem.to_os_string();
            numbered.push(format!("-{n}"));
            if let Some(extension) = as_path.extension() {
                numbered.push(".");
                numbered.push(extension);
            }
            dir.join(numbered)
        };
        if free(&candidate) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{MAX_SUFFIX} files named like {} already exist",
            as_path.display()
        ),
    ))
}

/// Whether nothing (not even a dangling symlink) is at `path`.
pub fn is_free(path: &Path) -> bool {
    matches!(path.symlink_metadata(), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Renames `file` to `to` (same file system) and makes both folders'
/// entries durable: the file is at one name or the other, never both.
/// `rename` replaces an existing `to`, so the caller picks a free name
/// ([`free_name`]) in a folder only it writes to.
pub fn move_to(file: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(file, to)?;
    for dir in [to.parent(), file.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole
/// new one, never part of it (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, EVERYONE, |temp, path| {
        temp.persist(path).map(drop).map_err(|e| e.error)
    })
}

/// File modes for [`write_via_temp`]: what the umask allows, or this user
/// only (secrets: no other user can read them, not even for an instant).
const EVERYONE: u32 = 0o666;
const OWNER_ONLY: u32 = 0o600;

/// Writes a new file at `path` whole or not at all; an existing file there
/// is an error and is left alone.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_new_with_mode(path, bytes, EVERYONE)
}

/// [`write_new`] for a secret: mode 0600 from its first byte.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_new_with_mode(path, bytes, OWNER_ONLY)
}

fn write_new_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_via_temp(path, bytes, mode, |temp, path| {
        temp.persist_noclobber(path).map(drop).map_err(|e| e.error)
    })
}

/// Writes `bytes` to a hidden temp file beside `path` (created with `mode`,
/// less the umask), flushes it, and lets `place` give it its name; the temp
/// file is removed if anything fails.
fn write_via_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    place: impl FnOnce(tempfile::NamedTempFile, &Path) -> io::Result<()>,
) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    place(temp, path)?;
    sync_dir(dir)
}

/// Makes `to` a name for the complete file at `from`, failing with
/// `AlreadyExists` rather than replacing anything. Across file systems the
/// data is copied to a hidden name beside `to` first.
///
/// Not `tempfile`'s `persist_noclobber`: `from` is a [`TempFile`] path (a
/// name only; ffmpeg or the upload writer makes the file) that its own
/// drop removes, and the copy across file systems is needed either way.
fn link_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => copy_whole(from, to, false),
        other => other,
    }
}

/// Copies `from` to `to` whole or not at all: the data goes to a hidden
/// staging name beside `to`, is flushed, and only then takes the name. With
/// `overwrite` an existing `to` is replaced (readers see the old file or
/// the new one); without, an existing `to` is an `AlreadyExists` error and
/// is left alone.
pub fn copy_whole(from: &Path, to: &Path, overwrite: bool) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let staging = dir.join(format!(
        ".{}{STAGING_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ));
    let placed = std::fs::copy(from, &staging)
        .and_then(|_| std::fs::File::open(&staging)?.sync_all())
        .and_then(|()| {
            if overwrite {
                std::fs::rename(&staging, to)
            } else {
                std::fs::hard_link(&staging, to)
            }
        });
    let _ = std::fs::remove_file(&staging);
    placed?;
    sync_dir(dir)
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
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
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

    /// Files under `dir` with their bytes, by path relative to it.
    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                let inner = tree(&path).into_iter();
                let base = path.strip_prefix(dir).expect("under").to_path_buf();
                found.extend(inner.map(|(p, b)| (base.join(p), b)));
            } else {
                let name = path.strip_prefix(dir).expect("under").to_path_buf();
                found.push((name, std::fs::read(&path).expect("read")));
            }
        }
        found.sort();
        found
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_folder_moved_across_file_systems_appears_whole_and_is_never_replaced() {
        use std::os::unix::fs::MetadataExt;
        let device = |p: &Path| std::fs::metadata(p).expect("metadata").dev();
        let elsewhere = tempfile::tempdir_in("/dev/shm").expect("a tempdir in /dev/shm");
        let here = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            device(elsewhere.path()),
            device(here.path()),
            "the test needs /dev/shm on a file system of its own"
        );
        let make = |name: &str, text: &str| {
            let from = elsewhere.path().join(name);
            std::fs::create_dir_all(from.join("rung0")).expect("folders");
            std::fs::write(from.join("d0.ts"), text).expect("file");
            std::fs::write(from.join("rung0/seg1.m4s"), [7u8; 3000]).expect("file");
            from
        };
        let from = make("a", "first");
        let wanted = tree(&from);
        let to = here.path().join("placed");
        move_tree_no_replace(&from, &to).expect("moved");
        assert_eq!(tree(&to), wanted);
        assert!(
            !from.exists(),
            "the origin is removed once the copy is in place"
        );
        assert_eq!(names(here.path()), ["placed"], "no staging copy is left");

        let second = make("b", "second");
        let refused = move_tree_no_replace(&second, &to).expect_err("the target exists");
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(tree(&to), wanted, "the placed folder is left alone");
        assert!(second.join("d0.ts").exists(), "the refused folder is kept");
        assert_eq!(names(here.path()), ["placed"], "no staging copy is left");
    }

    #[test]
    fn a_folder_is_claimed_under_the_first_free_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let claimed: Vec<PathBuf> = (0..3)
            .map(|_| claim_unique(dir.path(), "clip", "", |p| std::fs::create_dir(p)))
            .collect::<io::Result<_>>()
            .expect("claimed");
        let names = ["clip", "clip-1", "clip-2"].map(|n| dir.path().join(n));
        assert_eq!(claimed, names);
        let refused = claim_unique(dir.path(), "x", "", |_| Err(io::ErrorKind::Other.into()));
        assert!(refused.is_err(), "another error stops the search");
    }

    #[test]
    fn a_folder_is_renamed_into_place_only_where_nothing_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let built = dir.path().join(".built");
        std::fs::create_dir(&built).expect("mkdir");
        std::fs::write(built.join("marker"), "mine").expect("write");
        for taken in ["empty", "full"] {
            let target = dir.path().join(taken);
            std::fs::create_dir(&target).expect("mkdir");
            if taken == "full" {
                std::fs::write(target.join("theirs"), "theirs").expect("write");
            }
            let refused = rename_no_replace(&built, &target).expect_err("taken");
            assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists, "{taken}");
        }
        let free = dir.path().join("free");
        rename_no_replace(&built, &free).expect("free");
        assert_eq!(
            std::fs::read_to_string(free.join("marker")).expect("read"),
            "mine"
        );
        assert!(!built.exists());
    }

    #[test]
    fn copy_whole_refuses_or_replaces_and_leaves_no_staging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("a.mp4");
        let to = dir.path().join("b.mp4");
        std::fs::write(&from, b"new").expect("write");
        std::fs::write(&to, b"old").expect("write");
        let refused = copy_whole(&from, &to, false).expect_err("exists");
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&to).expect("read"), b"old");
        copy_whole(&from, &to, true).expect("replaces");
        assert_eq!(std::fs::read(&to).expect("read"), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

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

    #[test]
    fn moves_and_new_files_never_replace_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (from, to) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&from).expect("mkdir");
        std::fs::create_dir_all(&to).expect("mkdir");
        std::fs::write(to.join("a.mp4"), "theirs").expect("write");
        std::fs::write(to.join("a-1.mp4.error.txt"), "theirs").expect("write");
        std::fs::write(from.join("a.mp4"), "mine").expect("write");
        // A name free for the file and for its note.
        let free = |p: &Path| {
            let mut note = p.as_os_str().to_owned();
            note.push(".error.txt");
            is_free(p) && is_free(Path::new(&note))
        };
        let target = free_name(&to, std::ffi::OsStr::new("a.mp4"), free).expect("a name");
        assert_eq!(target, to.join("a-2.mp4"));
        move_to(&from.join("a.mp4"), &target).expect("moved");
        assert!(is_free(&from.join("a.mp4")));
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "mine");
        assert_eq!(
            std::fs::read_to_string(to.join("a.mp4")).expect("read"),
            "theirs"
        );

        write_new(&to.join("note.txt"), b"1").expect("new");
        assert!(
            write_new(&to.join("note.txt"), b"2").is_err(),
            "never replaced"
        );
        assert_eq!(
            std::fs::read_to_string(to.join("note.txt")).expect("read"),
            "1"
        );
        write_atomic(&to.join("note.txt"), b"3").expect("replaced whole");
        assert_eq!(
            std::fs::read_to_string(to.join("note.txt")).expect("read"),
            "3"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&to)
            .expect("list")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left");
    }
}
