//! The farm's file service, for encoder nodes that do not see the shared
//! folder (`--fetch` nodes): an HTTP server ([`server`]) run by a node that
//! sees the share, and its client ([`client`]).
//!
//! A fetch node downloads a job's source (verified by SHA-256, resumed
//! with `Range` after a drop, cached by hash) and uploads the output of the
//! chunk it encoded: a manifest of files with sizes and SHA-256s, each file
//! appended resumably ([`crate::resumable`]), checked whole on `complete`
//! and then renamed atomically into the place the [`Authority`] names.
//!
//! This module owns the wire protocol (paths, headers, manifest, error
//! shape) and the `incoming/` folder. It knows no SQL and no ffmpeg: who may
//! read or write what — tokens, chunk leases, fencing — is asked of an
//! [`Authority`], which the encoder implements over its store.

pub mod client;
mod files;
pub mod server;
mod upload;

use std::future::Future;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::carbon::Guid;

pub use client::{FarmFiles, FetchError, Retries};
pub use files::trim_cache;
pub use server::{routes, serve};
pub use upload::sweep_incoming;

/// The header naming the node a request comes from (its token is in
/// `Authorization: Bearer …`).
pub const NODE_HEADER: &str = "x-videoshare-node";

/// The header of a resumable upload's offset (as in tus).
pub const UPLOAD_OFFSET: &str = "upload-offset";

/// Most files one chunk's manifest may list.
pub const MAX_ENTRIES: usize = 4096;

/// Longest path (in bytes) a manifest entry may have.
pub const MAX_PATH: usize = 240;

/// Who may read and write what: the encoder's answer, over its store.
///
/// Every method is asked per request; an answer is not cached.
pub trait Authority: Send + Sync + 'static {
    /// Whether `token` is `node`'s current token. (Compare digests in
    /// constant time: the token comes from the network.)
    fn verify_token(&self, node: &str, token: &str) -> impl Future<Output = bool> + Send;

    /// The source file `node` may read for job `guid` (it holds a live
    /// chunk lease of that job) and its SHA-256 in hex; `None` = 403.
    fn source(
        &self,
        node: &str,
        guid: Guid,
        which: SourceKind,
    ) -> impl Future<Output = Option<(PathBuf, String)>> + Send;

    /// Where the output of `chunk`, held by `node`, is to be placed: a
    /// folder on the shared storage, on the same file system as
    /// `incoming/`, that does not exist yet; `None` = 409 (stale or not
    /// held).
    fn upload_target(
        &self,
        node: &str,
        chunk: ChunkId,
    ) -> impl Future<Output = Option<PathBuf>> + Send;

    /// Called after the verified files were renamed into `folder`: records
    /// the chunk as delivered (fenced). `false` = stale: the server removes
    /// the folder and answers 409.
    fn delivered(
        &self,
        node: &str,
        chunk: ChunkId,
        folder: &Path,
    ) -> impl Future<Output = bool> + Send;
}

/// One attempt at one chunk of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkId {
    pub guid: Guid,
    pub idx: u32,
    pub attempt: i64,
}

impl ChunkId {
    /// `<GUID>-<idx>-<attempt>`: the chunk's name in `incoming/` and in URLs.
    pub fn name(&self) -> String {
        format!("{}-{}-{}", bare(self.guid), self.idx, self.attempt)
    }

    /// The URL path of this chunk's upload, below the service's base.
    fn url_path(&self) -> String {
        format!(
            "/farm/v1/chunks/{}/{}/{}",
            bare(self.guid),
            self.idx,
            self.attempt
        )
    }
}

impl std::fmt::Display for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chunk {} of {} (attempt {})",
            self.idx, self.guid, self.attempt
        )
    }
}

/// Which of a job's source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// The source video (`/source`).
    Video,
    /// The separate audio file of a job that has one (`/audio`).
    Audio,
}

impl SourceKind {
    /// The last segment of the download URL.
    pub fn segment(self) -> &'static str {
        match self {
            SourceKind::Video => "source",
            SourceKind::Audio => "audio",
        }
    }
}

/// A GUID as it appears in URLs and folder names: uppercase, no braces.
fn bare(guid: Guid) -> String {
    guid.to_string()
        .trim_matches(|c| c == '{' || c == '}')
        .to_owned()
}

/// One file of a chunk's output, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Plain relative path with `/` separators, e.g. `720p/seg00007.m4s`.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// The error body every refusal carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code to branch on (`stale`, `file_mismatch`, …).
    pub error: String,
    /// A sentence for people.
    pub message: String,
    /// The manifest path a refusal is about, when it is about one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Whether `text` is a SHA-256 in lowercase hex.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The strong ETag of a file whose SHA-256 is `hex`.
pub fn etag(hex: &str) -> String {
    format!("\"sha256-{hex}\"")
}

/// The SHA-256 of the file at `path`, in lowercase hex. Blocking: run it
/// with [`crate::fsutil::off_runtime`].
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The bytes a hex text stands for; `None` if it is not hex.
fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a manifest path is refused, if it is: it must be plain relative
/// (`/`-separated names, no `..`, `.` or empty components, no backslash
/// or control characters) and at most [`MAX_PATH`] bytes. Hidden names
/// are allowed (a ladder chunk carries ffmpeg's hidden master playlist):
/// an upload lands inside a chunk's own folder, never served as is.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("{path:?}: a path has 1 to {MAX_PATH} bytes"));
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err(format!("{path:?}: no backslashes or control characters"));
    }
    for name in path.split('/') {
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!(
                "{path:?}: every component is a plain name (no empty, `.` or `..` ones)"
            ));
        }
    }
    // Belt and braces: what the OS makes of it is plain names only.
    if Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        Ok(())
    } else {
        Err(format!("{path:?}: not a plain relative path"))
    }
}

/// Why a whole manifest is refused, if it is: bad paths, bad digests, too
/// many files, a path listed twice or both a file and a folder.
pub fn check_manifest(entries: &[ManifestEntry]) -> Result<(), String> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(format!(
            "a manifest lists 1 to {MAX_ENTRIES} files, not {}",
            entries.len()
        ));
    }
    let mut paths = std::collections::BTreeSet::new();
    for entry in entries {
        check_path(&entry.path)?;
        if !is_sha256_hex(&entry.sha256) {
            return Err(format!(
                "{:?}: sha256 must be 64 lowercase hex digits",
                entry.path
            ));
        }
        if !paths.insert(entry.path.as_str()) {
            return Err(format!("{:?} is listed twice", entry.path));
        }
    }
    // A path that is also another's folder ("a" and "a/b") cannot be made.
    for entry in entries {
        let folder = format!("{}/", entry.path);
        if paths
            .range(folder.as_str()..)
            .next()
            .is_some_and(|next| next.starts_with(&folder))
        {
            return Err(format!("{:?} is both a file and a folder", entry.path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            size: 1,
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn only_plain_relative_paths_pass() {
        for good in [
            "a.mp4",
            "720p/seg00007.m4s",
            "a/b/c",
            "d1/.ffmpeg-master.m3u8",
        ] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "./a",
            "a//b",
            "a\\b",
            "a/",
            "a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_path(&"a".repeat(MAX_PATH + 1)).is_err());
    }

    #[test]
    fn manifests_are_checked_whole() {
        assert_eq!(check_manifest(&[entry("a"), entry("b/c")]), Ok(()));
        assert!(check_manifest(&[]).is_err());
        assert!(check_manifest(&[entry("a"), entry("a")]).is_err());
        assert!(check_manifest(&[entry("a"), entry("a/b")]).is_err());
        let mut upper = entry("a");
        upper.sha256 = "A".repeat(64);
        assert!(check_manifest(&[upper]).is_err());
        let many: Vec<_> = (0..=MAX_ENTRIES).map(|i| entry(&format!("f{i}"))).collect();
        assert!(check_manifest(&many).is_err());
    }
}
