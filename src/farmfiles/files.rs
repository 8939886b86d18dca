//! The node's own files in a transfer: the manifest of an output folder,
//! the pieces read from it, a download's partial file, and the download
//! cache's least-recently-used trimming. Blocking functions say so.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::client::{FetchError, chain, io_error};
use super::{ManifestEntry, sha256_file};

/// Up to `len` bytes of `path` from `offset`.
pub(super) async fn read_piece(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, FetchError> {
    let failed = || io_error(format!("cannot read {}", path.display()));
    let mut file = tokio::fs::File::open(path).await.map_err(failed())?;
    file.seek(io::SeekFrom::Start(offset))
        .await
        .map_err(failed())?;
    let mut piece = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len)
        .read_to_end(&mut piece)
        .await
        .map_err(failed())?;
    Ok(piece)
}

/// The manifest of every file under `root`, sorted by path. Blocking.
pub(super) fn manifest_of(root: &Path) -> Result<Vec<ManifestEntry>, FetchError> {
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|(path, local)| {
            let failed = || io_error(format!("cannot read {}", local.display()));
            Ok(ManifestEntry {
                size: std::fs::metadata(&local).map_err(failed())?.len(),
                sha256: sha256_file(&local).map_err(failed())?,
                path,
            })
        })
        .collect()
}

/// Adds the files under `dir` to `files` as (path relative to `root`
/// with `/`, local path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), FetchError> {
    let failed = || io_error(format!("cannot list {}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(failed())? {
        let local = entry.map_err(failed())?.path();
        if local.is_dir() {
            collect(root, &local, files)?;
            continue;
        }
        let relative = local
            .strip_prefix(root)
            .ok()
            .and_then(|r| r.to_str())
            .map(|r| r.replace(std::path::MAIN_SEPARATOR, "/"))
            .ok_or_else(|| {
                FetchError::Invalid(format!("{} has a name that is not UTF-8", local.display()))
            })?;
        files.push((relative, local));
    }
    Ok(())
}

/// Writes a download's body into `part` from byte `from` (0: anew).
/// `Some(why)` when the body broke off; what arrived is kept.
pub(super) async fn write_body(
    mut response: reqwest::Response,
    part: &Path,
    from: u64,
) -> Result<Option<String>, FetchError> {
    let failed = || io_error(format!("cannot write {}", part.display()));
    let mut options = tokio::fs::OpenOptions::new();
    if from == 0 {
        options.write(true).create(true).truncate(true);
    } else {
        options.append(true);
    }
    let file = options.open(part).await.map_err(failed())?;
    let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let broke = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => writer.write_all(&bytes).await.map_err(failed())?,
            Ok(None) => break None,
            Err(e) => break Some(chain(&e)),
        }
    };
    writer.flush().await.map_err(failed())?;
    Ok(broke)
}

/// Removes the least recently used sources (by modification time, which
/// a cache hit renews) from the download cache `cache_dir` until its
/// sources take at most `max_bytes`, never one whose SHA-256 is in `keep`
/// (in use). Partial downloads are left to resume. Blocking. Returns the
/// bytes freed.
pub fn trim_cache(cache_dir: &Path, max_bytes: u64, keep: &[&str]) -> io::Result<u64> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(cache_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        if meta.is_file() && super::is_sha256_hex(&name) {
            sources.push((meta.modified()?, meta.len(), name));
        }
    }
    let mut total: u64 = sources.iter().map(|(_, size, _)| size).sum();
    sources.sort();
    let mut freed = 0;
    for (_, size, name) in sources {
        if total <= max_bytes {
            break;
        }
        if keep.contains(&name.as_str()) {
            continue;
        }
        std::fs::remove_file(cache_dir.join(&name))?;
        total -= size;
        freed += size;
    }
    Ok(freed)
}

/// Marks a cached source as just used (for [`trim_cache`]). Blocking.
pub(super) fn touch(path: &Path) -> io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_cache_loses_its_least_recently_used_sources_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        let names: Vec<String> = (0..4).map(|i| format!("{i}").repeat(64)).collect();
        for (age, name) in names.iter().enumerate() {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 100]).expect("write");
            let when = now - Duration::from_secs(3600 * (4 - age as u64));
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(when))
                .expect("age");
        }
        std::fs::write(dir.path().join(format!("{}.part", names[0])), [0u8; 500]).expect("part");
        touch(&dir.path().join(&names[1])).expect("touch");

        // names[0] is the oldest but in use; names[2] goes next, then names[3].
        let freed = trim_cache(dir.path(), 200, &[names[0].as_str()]).expect("trim");
        assert_eq!(freed, 200);
        let left = |name: &str| dir.path().join(name).exists();
        assert!(left(&names[0]) && left(&names[1]));
        assert!(!left(&names[2]) && !left(&names[3]));
        assert!(left(&format!("{}.part", names[0])));
    }
}
