//! The encoder's job queue: the `jobs` table and each job's `destinations`.
//!
//! [`rows`] turns table rows into typed jobs; [`cache`] keeps the rows the
//! status polls read, forgotten on every write; [`outputs`] records what
//! each destination wrote; [`lease`] is how an encoder node takes a job and
//! holds it (claims, leases, the fenced writes of its worker, repairs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::store::{Backend, Db};

use serde::{Deserialize, Serialize};

mod cache;
mod lease;
mod order;
mod outputs;
mod rows;

use super::{RowReader, StoreError, fetch_by_guid, now_ms, status_literals};
use crate::carbon::message::Trim;
use crate::carbon::{Guid, JobStatus, PresetId};
use cache::ReadCache;
pub use lease::{CANDIDATES, Claimed, Lease, Repair, Swept};
use lease::{bind_fence, fence_sql, lease_after};
use order::QUEUE;
use outputs::forget_outputs;
use rows::{COLUMNS, DestinationRow, JobRow};

/// The state machine's rule (`encoder::job::allowed_from`): the statuses
/// a job may move to a status from. The encoder owns it; the store applies
/// it to the changes it makes in bulk.
pub type AllowedFrom = fn(JobStatus) -> &'static [JobStatus];

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub seq: i64,
    pub guid: Guid,
    pub name: String,
    pub user: String,
    pub status: JobStatus,
    pub progress: u32,
    /// The client's `Description` of the job.
    pub description: String,
    /// Why the job failed or was stopped (empty otherwise).
    pub failure: String,
    /// Warnings from the request (settings not applied).
    pub notes: Vec<String>,
    pub priority: u32,
    /// The video (and, unless `audio` says otherwise, audio) source.
    pub source_path: PathBuf,
    pub audio: AudioSource,
    /// The part of the source to encode.
    pub trim: Option<Trim>,
    /// Copies of the source to make once the job is done.
    pub source_copies: Vec<CopySpec>,
    pub check_in_time: i64,
    pub start_time: Option<i64>,
    pub completed_time: Option<i64>,
    /// The encoder node that claimed it last (kept once it ended).
    pub node: Option<String>,
    /// How many times a node claimed it.
    pub attempts: u32,
    /// Whether a worker holds it now (on `node`), under a lease.
    pub held: bool,
}

/// Where a job's sound comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioSource {
    /// The source file's own.
    #[default]
    Same,
    /// No sound at all.
    Absent,
    /// Another file (a `MultiSource` job).
    File(PathBuf),
}

/// A `FileCopy_n` resolved to a local folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    pub dir: PathBuf,
    /// The copy's name; `None`: the file's own.
    pub file: Option<String>,
    pub overwrite: bool,
}

/// A destination's output in place and the copies made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub output: PathBuf,
    pub copies: Vec<PathBuf>,
}

#[cfg(test)]
impl Job {
    /// A job for unit tests: a random GUID, `status`, nothing else set.
    pub(crate) fn sample(status: JobStatus) -> Job {
        Job {
            seq: 1,
            guid: Guid::new_random(),
            name: "a".into(),
            user: String::new(),
            status,
            progress: 0,
            description: String::new(),
            failure: String::new(),
            notes: Vec::new(),
            priority: 100,
            source_path: PathBuf::from("/a.mp4"),
            audio: AudioSource::Same,
            trim: None,
            source_copies: Vec::new(),
            check_in_time: 0,
            start_time: None,
            completed_time: None,
            node: None,
            attempts: 0,
            held: false,
        }
    }
}

/// One output of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub preset_guid: PresetId,
    pub dest_dir: PathBuf,
    /// Output file name without extension.
    pub base_name: String,
    /// The file written, once the job has completed.
    pub output_path: Option<PathBuf>,
    /// `DestinationName`, as the client gave it.
    pub name: Option<String>,
    /// Copies of the output to make.
    pub copies: Vec<CopySpec>,
    /// The copies made, once the job has completed.
    pub copied: Vec<PathBuf>,
}

/// What a client's `JobQueue` becomes once validated.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub guid: Guid,
    pub name: String,
    pub user: String,
    pub description: String,
    pub priority: u32,
    pub source_path: PathBuf,
    pub audio: AudioSource,
    pub trim: Option<Trim>,
    pub source_copies: Vec<CopySpec>,
    /// Warnings to report with the job.
    pub notes: Vec<String>,
    /// One or more, in the request's order.
    pub destinations: Vec<Destination>,
    /// The request, for `JobCommand Query`.
    pub request_xml: String,
}

/// Fields a status change may set besides the status itself (`None` keeps
/// the stored value). `completed_time` is set whenever a job becomes terminal.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub progress: Option<u32>,
    /// Why the job failed or stopped.
    pub failure: Option<String>,
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A JSON column's text (plain data: serialising cannot fail).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// 27 MHz ticks as SQLite's integer (a `u64` of ticks fits for 10,000 years).
fn ticks(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Moves a job in `from` to `to` inside `tx`, applying `set` (SQL
/// assignments in which `$3` is the current time), fenced by `lease` when
/// given. Returns whether it moved.
async fn move_job(
    tx: &mut sqlx::AnyConnection,
    guid: Guid,
    fence: Option<&Lease>,
    (from, to): (&[JobStatus], JobStatus),
    set: &str,
) -> Result<bool, StoreError> {
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = $1, {set}, {} WHERE guid = $2 AND status IN ({}){}",
        lease_after(to),
        status_literals(from),
        fence_sql(fence, 4)
    )))
    .bind(to.as_str())
    .bind(guid.to_string())
    .bind(now_ms());
    let done = bind_fence(query, fence).execute(tx).await?;
    Ok(done.rows_affected() == 1)
}

/// Queries on the `jobs` and `destinations` tables. Clones share one read
/// cache; every write to `jobs` must go through here.
#[derive(Clone)]
pub struct JobStore {
    db: Db,
    cache: std::sync::Arc<ReadCache>,
}

impl JobStore {
    /// The database it works on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn new(db: Db) -> Self {
        let cache = match db.backend() {
            Backend::Sqlite => ReadCache::default(),
            // Other nodes write the same rows.
            Backend::Postgres => ReadCache::off(),
        };
        JobStore {
            db,
            cache: std::sync::Arc::new(cache),
        }
    }

    /// Stores a new QUEUED job and its destinations in one transaction; once
    /// this returns the job is durable.
    pub async fn insert(&self, job: NewJob) -> Result<Job, StoreError> {
        let now = now_ms();
        let mut tx = self.db.pool().begin().await?;
        let row: JobRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (guid, name, \"user\", description, status, progress, priority, \
             source_path, audio_path, no_audio, trim_in, trim_out, source_copies, request_xml, \
             notes, check_in_time, queued_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             RETURNING {COLUMNS}"
        )))
        .bind(job.guid.to_string())
        .bind(&job.name)
        .bind(&job.user)
        .bind(&job.description)
        .bind(JobStatus::Queued.as_str())
        .bind(i64::from(job.priority))
        .bind(path_text(&job.source_path))
        .bind(match &job.audio {
            AudioSource::File(path) => Some(path_text(path)),
            _ => None,
        })
        .bind(i64::from(job.audio == AudioSource::Absent))
        .bind(job.trim.map(|t| ticks(t.in_ticks)))
        .bind(job.trim.and_then(|t| t.out_ticks).map(ticks))
        .bind(json(&job.source_copies))
        .bind(&job.request_xml)
        .bind(json(&job.notes))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for (idx, dest) in job.destinations.iter().enumerate() {
            sqlx::query(
                "INSERT INTO destinations (job_guid, idx, preset_guid, dest_dir, base_name, name, \
                 copies) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(job.guid.to_string())
            .bind(idx as i64)
            .bind(dest.preset_guid.to_string())
            .bind(path_text(&dest.dest_dir))
            .bind(&dest.base_name)
            .bind(&dest.name)
            .bind(json(&dest.copies))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.cache.forget(job.guid);
        row.try_into()
    }

    pub async fn get(&self, guid: Guid) -> Result<Option<Job>, StoreError> {
        if let Some(job) = self.cache.get(guid) {
            return Ok(Some(job));
        }
        let seen = self.cache.generation();
        let row: Option<JobRow> = fetch_by_guid(&self.db, "jobs", COLUMNS, guid).await?;
        let job = row.map(Job::try_from).transpose()?;
        if let Some(job) = &job {
            self.cache.keep(job, seen);
        }
        Ok(job)
    }

    /// A job's destinations, in the request's order.
    pub async fn destinations(&self, guid: Guid) -> Result<Vec<Destination>, StoreError> {
        let rows: Vec<DestinationRow> = sqlx::query_as(
            "SELECT preset_guid, dest_dir, base_name, output_path, name, copies, copied \
             FROM destinations WHERE job_guid = $1 ORDER BY idx",
        )
        .bind(guid.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(Destination::try_from).collect()
    }

    /// The request a job was submitted with (empty for jobs from before
    /// requests were kept).
    pub async fn request_xml(&self, guid: Guid) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT request_xml FROM jobs WHERE guid = $1")
            .bind(guid.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|(xml,)| xml))
    }

    /// Every job, oldest first.
    pub async fn all(&self) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs ORDER BY seq"
        )))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// Every job's GUID, oldest first.
    pub async fn guids(&self) -> Result<Vec<Guid>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT guid FROM jobs ORDER BY seq")
            .fetch_all(self.db.pool())
            .await?;
        let read = RowReader { table: "jobs" };
        rows.iter().map(|(g,)| read.guid(g)).collect()
    }

    /// How many jobs have one of `statuses`.
    pub async fn count(&self, statuses: &[JobStatus]) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM jobs WHERE status IN ({})",
            status_literals(statuses)
        )))
        .fetch_one(self.db.pool())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many jobs are in each status that has any.
    pub async fn counts_by_status(&self) -> Result<Vec<(JobStatus, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .fetch_all(self.db.pool())
                .await?;
        let read = RowReader { table: "jobs" };
        rows.into_iter()
            .map(|(status, n)| Ok((read.status(&status)?, u64::try_from(n).unwrap_or(0))))
            .collect()
    }

    /// Where a QUEUED job stands in the queue: 1 starts next. `None` when
    /// the job is not QUEUED.
    pub async fn queue_position(&self, guid: Guid) -> Result<Option<u32>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH {} SELECT place FROM queue WHERE guid = $1",
            &*QUEUE
        )))
        .bind(guid.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(place,)| u32::try_from(place).unwrap_or(u32::MAX)))
    }

    /// Every QUEUED job's place in the queue (1 starts next).
    pub async fn queue_positions(&self) -> Result<HashMap<Guid, u32>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH {} SELECT guid, place FROM queue",
            &*QUEUE
        )))
        .fetch_all(self.db.pool())
        .await?;
        let read = RowReader { table: "jobs" };
        let mut positions = HashMap::with_capacity(rows.len());
        for (guid, place) in &rows {
            positions.insert(read.guid(guid)?, u32::try_from(*place).unwrap_or(u32::MAX));
        }
        Ok(positions)
    }

    /// Moves a job to `to` if its current status is one of `from`, applying
    /// `change`. Returns whether the job moved. For a client's command: a
    /// worker's own moves go through [`JobStore::transition_held`].
    pub async fn transition(
        &self,
        guid: Guid,
        from: &[JobStatus],
        to: JobStatus,
        change: Change,
    ) -> Result<bool, StoreError> {
        self.change_status(guid, None, from, to, change).await
    }

    /// [`JobStore::transition`] by the worker holding `lease`: refused
    /// (`false`) once the lease is lost.
    pub async fn transition_held(
        &self,
        lease: &Lease,
        from: &[JobStatus],
        to: JobStatus,
        change: Change,
    ) -> Result<bool, StoreError> {
        self.change_status(lease.guid, Some(lease), from, to, change)
            .await
    }

    async fn change_status(
        &self,
        guid: Guid,
        fence: Option<&Lease>,
        from: &[JobStatus],
        to: JobStatus,
        change: Change,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET status = $1, progress = COALESCE($2, progress), \
             failure = COALESCE($3, failure), \
             completed_time = CASE WHEN $4 THEN $5 ELSE completed_time END, {} \
             WHERE guid = $6 AND status IN ({}){}",
            lease_after(to),
            status_literals(from),
            fence_sql(fence, 7)
        )))
        .bind(to.as_str())
        .bind(change.progress.map(i64::from))
        .bind(change.failure)
        .bind(to.is_terminal())
        .bind(now_ms())
        .bind(guid.to_string());
        let moved = bind_fence(query, fence)
            .execute(self.db.pool())
            .await?
            .rows_affected()
            == 1;
        self.cache.forget(guid);
        Ok(moved)
    }

    /// Puts a job in `from` back at the end of the queue as if new: progress,
    /// description, times and outputs cleared. Returns whether it moved.
    pub async fn requeue(&self, guid: Guid, from: &[JobStatus]) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let set = "progress = 0, failure = '', start_time = NULL, completed_time = NULL, \
                   queued_at = $3";
        let moved = move_job(&mut tx, guid, None, (from, JobStatus::Queued), set).await?;
        if moved {
            forget_outputs(&mut tx, guid).await?;
        }
        tx.commit().await?;
        self.cache.forget(guid);
        Ok(moved)
    }

    /// Sets a job's priority; returns whether the job exists.
    pub async fn set_priority(&self, guid: Guid, priority: u32) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE jobs SET priority = $1 WHERE guid = $2")
            .bind(i64::from(priority))
            .bind(guid.to_string())
            .execute(self.db.pool())
            .await?;
        self.cache.forget(guid);
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a job and its destinations; returns whether it existed.
    pub async fn remove(&self, guid: Guid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM jobs WHERE guid = $1")
            .bind(guid.to_string())
            .execute(self.db.pool())
            .await?;
        self.cache.forget(guid);
        Ok(done.rows_affected() == 1)
    }
}
