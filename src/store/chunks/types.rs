//! The types of chunked encoding (plans, chunks, leases, totals, repairs)
//! and the one place a `chunks` row becomes a [`Chunk`].

use std::path::PathBuf;

use crate::carbon::Guid;
use crate::store::{RowReader, StoreError};

/// An enum stored as lowercase text, read back with `FromStr`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("{text:?} is no {}", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What a chunk encodes: a stretch of the sound or of the picture.
    ChunkKind { Audio => "audio", Video => "video" }
);

text_enum!(
    /// Where a chunk is: waiting, held by a node, written, or given up.
    ChunkState { Queued => "queued", Running => "running", Done => "done", Failed => "failed" }
);

/// How a job was split, as the node that split it wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    pub job: Guid,
    /// The source as it was when planned: a changed file voids the plan.
    pub source_size: i64,
    pub source_mtime_ns: i64,
    pub recipe: String,
    /// The encoder's JSON, opaque here.
    pub spec: String,
    /// Where the chunks' outputs are written.
    pub work_dir: PathBuf,
    pub created_at: i64,
}

/// One chunk of a plan, before it is stored (its index is its place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunk {
    pub kind: ChunkKind,
    pub start_us: i64,
    pub end_us: i64,
    pub frames: Option<i64>,
    pub first_segment: i64,
    /// Its share of the job's work, for the job's progress.
    pub weight: i64,
}

/// A chunk as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub job: Guid,
    pub idx: u32,
    /// What the plan made it: its kind, span and weight.
    pub planned: NewChunk,
    pub state: ChunkState,
    pub progress: u32,
    /// The node that claimed it last (none once released).
    pub node: Option<String>,
    pub attempts: i64,
    pub lease_losses: i64,
    /// Encoder runs started on it.
    pub runs: i64,
    pub output: Option<String>,
    pub failure: String,
    pub done_at: Option<i64>,
}

/// A node's hold on a chunk: which chunk, which node, which claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLease {
    pub job: Guid,
    pub idx: u32,
    pub node: String,
    /// The chunk's `attempts` when claimed: the fencing token.
    pub attempt: i64,
}

/// A job's chunks summed up in one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkTotals {
    pub weight: i64,
    /// Σ weight × progress / 100: the work done so far.
    pub worked: i64,
    pub queued: u32,
    pub running: u32,
    pub done: u32,
    pub failed: u32,
}

/// How fast chunks encode: frames per second and media seconds per second
/// (× realtime), as their encoders last reported; summed over a job's
/// running chunks by [`super::ChunkStore::rate`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChunkRate {
    pub fps: f64,
    pub speed: f64,
}

/// Which running chunks [`ChunkStore::repair`] puts right.
#[derive(Debug, Clone, Copy)]
pub enum ChunkRepair<'a> {
    /// Those whose lease ran out: back to queued, counting a loss; failed
    /// once a chunk has lost `max_losses` leases.
    Expired { max_losses: u32 },
    /// Those this node holds (it is starting or stopping): back to queued,
    /// no loss counted.
    HeldBy(&'a str),
}

pub(super) const COLUMNS: &str = "job_guid, idx, kind, start_us, end_us, frames, first_segment, weight, \
                       state, progress, node, attempts, lease_losses, runs, output, failure, \
                       done_at";

#[derive(sqlx::FromRow)]
pub(super) struct ChunkRow {
    job_guid: String,
    idx: i64,
    kind: String,
    start_us: i64,
    end_us: i64,
    frames: Option<i64>,
    first_segment: i64,
    weight: i64,
    state: String,
    progress: i64,
    node: Option<String>,
    attempts: i64,
    lease_losses: i64,
    runs: i64,
    output: Option<String>,
    failure: String,
    done_at: Option<i64>,
}

pub(super) const READ: RowReader = RowReader { table: "chunks" };

impl TryFrom<ChunkRow> for Chunk {
    type Error = StoreError;

    fn try_from(row: ChunkRow) -> Result<Chunk, StoreError> {
        Ok(Chunk {
            job: READ.guid(&row.job_guid)?,
            idx: READ.unsigned(row.idx)?,
            planned: NewChunk {
                kind: row.kind.parse().map_err(|e: String| READ.corrupt(e))?,
                start_us: row.start_us,
                end_us: row.end_us,
                frames: row.frames,
                first_segment: row.first_segment,
                weight: row.weight,
            },
            state: row.state.parse().map_err(|e: String| READ.corrupt(e))?,
            progress: READ.unsigned(row.progress)?,
            node: row.node,
            attempts: row.attempts,
            lease_losses: row.lease_losses,
            runs: row.runs,
            output: row.output,
            failure: row.failure,
            done_at: row.done_at,
        })
    }
}
