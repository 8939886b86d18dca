//! The local side of an upload: the manifest of a folder's files and the
//! pieces read from them. Blocking functions say so.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{FetchError, io_error};
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
