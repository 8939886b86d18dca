//! The core of a resumable upload, shared by the portal's tus endpoint
//! ([`crate::portal::tus`]) and the farm's file service
//! ([`crate::farmfiles`]): a file whose size *is* the offset, appends that
//! must name that offset, and one writer per file at a time.
//!
//! It knows files and byte streams only: no HTTP, no records. Bytes that
//! arrive before a body breaks off are kept (flushed and synced), because
//! they are where the client resumes.

use std::collections::HashSet;
use std::fmt::Display;
use std::io;
use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

/// An append that named another offset than the file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "The server has {have} bytes of this upload, not {claimed}: ask HEAD and go on from there."
)]
pub struct OffsetMismatch {
    pub have: u64,
    pub claimed: u64,
}

/// Whether an append claiming `claimed` may go on where the server has `have`.
pub fn check_offset(have: u64, claimed: u64) -> Result<(), OffsetMismatch> {
    if have == claimed {
        Ok(())
    } else {
        Err(OffsetMismatch { have, claimed })
    }
}

/// The bytes of the upload at `path` so far; `None` if its file is gone.
pub async fn offset(path: &Path) -> io::Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What one append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The file's size now: where the next append goes on.
    pub offset: u64,
    /// Why the body stopped early (the connection broke, or it went past
    /// `length`); `None` when it was written whole.
    pub cut: Option<String>,
}

/// Appends `body` to the file at `path`, which has `have` bytes (the caller
/// checked the client's offset with [`check_offset`] and holds the file's
/// [`Writers`] claim), never past `length` bytes in all. Whatever arrives is
/// flushed and synced before returning, also when the body breaks off.
pub async fn append<S, E>(path: &Path, have: u64, length: u64, body: S) -> io::Result<Appended>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    let file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await?;
    let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut now = have;
    let mut cut = None;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                cut = Some(e.to_string());
                break;
            }
        };
        if now + chunk.len() as u64 > length {
            cut = Some(format!("more bytes than the declared {length}"));
            break;
        }
        writer.write_all(&chunk).await?;
        now += chunk.len() as u64;
    }
    // Whatever arrived is kept: it is where the client resumes.
    writer.flush().await?;
    writer.get_ref().sync_data().await?;
    Ok(Appended { offset: now, cut })
}

/// The uploads a request is writing to right now (one writer per upload).
#[derive(Debug, Default)]
pub struct Writers {
    keys: Mutex<HashSet<String>>,
}

/// The right to write one upload's bytes, held by one request; given back
/// on drop.
#[derive(Debug)]
pub struct WriterClaim<'a> {
    writers: &'a Writers,
    key: String,
}

impl Writers {
    /// Whether a request is writing upload `key` now.
    pub fn is_writing(&self, key: &str) -> bool {
        self.keys.lock().contains(key)
    }

    /// Claims upload `key` for one request; `None` if another one holds it.
    pub fn claim(&self, key: &str) -> Option<WriterClaim<'_>> {
        let mut keys = self.keys.lock();
        keys.insert(key.to_owned()).then(|| WriterClaim {
            writers: self,
            key: key.to_owned(),
        })
    }
}

impl Drop for WriterClaim<'_> {
    fn drop(&mut self) {
        self.writers.keys.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(
        parts: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, &'static str>> {
        futures_util::stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)))
    }

    #[tokio::test]
    async fn appends_keep_what_arrived_and_stop_at_the_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload");
        tokio::fs::write(&path, b"ab").await.expect("write");
        assert_eq!(offset(&path).await.expect("offset"), Some(2));
        assert!(check_offset(2, 3).is_err());

        let done = append(
            &path,
            2,
            10,
            pieces(vec![Ok(b"cd"), Err("reset"), Ok(b"zz")]),
        )
        .await
        .expect("append");
        assert_eq!(
            done,
            Appended {
                offset: 4,
                cut: Some("reset".into())
            }
        );

        let over = append(&path, 4, 6, pieces(vec![Ok(b"ef"), Ok(b"gh")]))
            .await
            .expect("append");
        assert_eq!(over.offset, 6);
        assert!(over.cut.is_some_and(|why| why.contains("declared 6")));
        assert_eq!(tokio::fs::read(&path).await.expect("read"), b"abcdef");
        assert_eq!(
            offset(&dir.path().join("gone")).await.expect("offset"),
            None
        );
    }

    #[test]
    fn one_writer_per_upload() {
        let writers = Writers::default();
        let held = writers.claim("a").expect("free");
        assert!(writers.claim("a").is_none());
        assert!(writers.is_writing("a"));
        drop(held);
        assert!(writers.claim("a").is_some());
    }
}
