//! What the farm's file service may hand out and take in, decided over the
//! chunk store: the [`Authority`] of a node that sees the shared folder. A
//! `--fetch` node may read the source of a job only while it holds a live
//! lease on one of its chunks, and deliver only its own current attempt at
//! a chunk (the fenced write, as a local node's delivery is).

use std::path::{Path, PathBuf};

use super::plan::{ChunkSpec, SpecAudio, piece_folder};
use crate::carbon::Guid;
use crate::farmfiles::{Authority, ChunkId, SourceKind};
use crate::store::{ChunkLease, ChunkStore, Db, NodeTokens, StoreError};

/// The file service's answers, over the store every node shares.
#[derive(Clone)]
pub struct ChunkFiles {
    chunks: ChunkStore,
    tokens: NodeTokens,
}

impl ChunkFiles {
    pub fn new(db: Db) -> Self {
        ChunkFiles {
            chunks: ChunkStore::new(db.clone()),
            tokens: NodeTokens::new(db),
        }
    }

    /// The plan's spec of job `guid`, if it is being encoded in chunks.
    async fn spec(&self, guid: Guid) -> Result<Option<(ChunkSpec, PathBuf)>, StoreError> {
        let Some(plan) = self.chunks.plan_of(guid).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<ChunkSpec>(&plan.spec)
            .ok()
            .map(|spec| (spec, plan.work_dir)))
    }
}

/// A store error refuses the request (and is logged): the node tries again.
fn logged<T>(read: Result<T, StoreError>) -> Option<T> {
    read.map_err(|e| tracing::warn!(error = %e, "the file service cannot read the store"))
        .ok()
}

impl Authority for ChunkFiles {
    async fn verify_token(&self, node: &str, token: &str) -> bool {
        logged(self.tokens.verify(node, token).await).unwrap_or(false)
    }

    async fn source(&self, node: &str, guid: Guid, which: SourceKind) -> Option<(PathBuf, String)> {
        if !logged(self.chunks.holds(node, guid, None).await)? {
            return None;
        }
        let (spec, _) = logged(self.spec(guid).await)??;
        match which {
            SourceKind::Video => Some((spec.source, spec.source_sha256?)),
            SourceKind::Audio => match spec.audio {
                SpecAudio::File(file) => Some((file, spec.audio_sha256?)),
                _ => None,
            },
        }
    }

    async fn upload_target(&self, node: &str, chunk: ChunkId) -> Option<PathBuf> {
        let held = Some((chunk.idx, chunk.attempt));
        if !logged(self.chunks.holds(node, chunk.guid, held).await)? {
            return None;
        }
        let (_, work_dir) = logged(self.spec(chunk.guid).await)??;
        Some(work_dir.join(piece_folder(chunk.idx, chunk.attempt)))
    }

    async fn delivered(&self, node: &str, chunk: ChunkId, folder: &Path) -> bool {
        let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let lease = ChunkLease {
            job: chunk.guid,
            idx: chunk.idx,
            node: node.to_owned(),
            attempt: chunk.attempt,
        };
        logged(self.chunks.deliver(&lease, name).await).unwrap_or(false)
    }
}
