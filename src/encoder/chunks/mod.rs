//! Chunked encoding: a source longer than `--chunk-threshold-secs` is cut
//! at keyframes into spans of about `--chunk-secs`, each encoded (video
//! only) by whichever node of the farm is free, while the sound is encoded
//! once, whole; the pieces are then joined without re-encoding.
//!
//! The node that claimed the job *conducts* it ([`conductor`]): it plans the
//! chunks (or adopts the plan an earlier run left, keeping its finished
//! chunks), encodes chunks itself, keeps the job's `Progress` as the share
//! of all chunks' work done, assembles a ladder's playlists as chunks
//! finish, and joins the pieces at the end. Any node's free slot takes a
//! chunk ([`worker`]): chunks are leased like jobs, so a node that dies
//! loses only the chunk it was encoding. Chunks follow their job: Pause,
//! Resume and Stop act on the job's row, and every chunk worker follows it.
//!
//! The ffmpeg command lines are [`args`], the joins [`join`]; what is
//! stored about a plan is [`plan`]; what the farm's file service may give
//! `--fetch` nodes (which see no shared folder) and take from them is
//! [`files`]. Carbon clients see one job: nothing
//! here is visible to them but its progress.

pub mod args;
mod conductor;
pub mod files;
pub mod join;
mod plan;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::farmfiles::FarmFiles;

pub(in crate::encoder) use worker::HeldChunk;

/// When and how long jobs are cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkSettings {
    /// Sources longer than this are chunked; `None`: never.
    pub threshold: Option<Duration>,
    /// About how long each chunk is (cut at the nearest keyframe, or
    /// segment boundary for a ladder).
    pub length: Duration,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings {
            threshold: Some(Duration::from_secs(300)),
            length: Duration::from_secs(60),
        }
    }
}

/// How a `--fetch` node (one that does not see the shared folder) reaches
/// sources and sends chunks back.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub client: Arc<FarmFiles>,
    /// Where fetched sources are kept, by SHA-256.
    pub cache_dir: PathBuf,
    /// How many bytes of them are kept.
    pub cache_bytes: u64,
    /// Where chunks are encoded before they are sent.
    pub work_dir: PathBuf,
}
