//! The node's own files in a transfer: the manifest of an output folder,
//! the pieces read from it, and a download's partial file. Blocking
//! functions say so.

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
