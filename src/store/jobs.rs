//! The encoder's job queue table.

use std::path::PathBuf;

use sqlx::SqlitePool;

use super::{RowReader, StoreError, fetch_by_guid, now_ms, status_literals};
use crate::carbon::{Guid, JobStatus};

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub seq: i64,
    pub guid: Guid,
    pub name: String,
    pub user: String,
    pub status: JobStatus,
    pub progress: u32,
    pub description: String,
    pub priority: u32,
    pub source_path: PathBuf,
    pub preset_guid: Guid,
    pub dest_dir: PathBuf,
    pub base_name: String,
    pub output_path: Option<PathBuf>,
    pub check_in_time: i64,
    pub start_time: Option<i64>,
    pub completed_time: Option<i64>,
}

/// What a client's `JobQueue` becomes once validated.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub guid: Guid,
    pub name: String,
    pub user: String,
    pub priority: u32,
    pub source_path: PathBuf,
    pub preset_guid: Guid,
    pub dest_dir: PathBuf,
    pub base_name: String,
}

/// Fields a status change may set besides the status itself (`None` keeps
/// the stored value). `completed_time` is set whenever a job becomes terminal.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub progress: Option<u32>,
    pub description: Option<String>,
    pub output_path: Option<PathBuf>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    seq: i64,
    guid: String,
    name: String,
    user: String,
    status: String,
    progress: i64,
    description: String,
    priority: i64,
    source_path: String,
    preset_guid: String,
    dest_dir: String,
    base_name: String,
    output_path: Option<String>,
    check_in_time: i64,
    start_time: Option<i64>,
    completed_time: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Job, StoreError> {
        let read = RowReader { table: "jobs" };
        Ok(Job {
            seq: row.seq,
            guid: read.guid(&row.guid)?,
            name: row.name,
            user: row.user,
            status: read.status(&row.status)?,
            progress: read.unsigned(row.progress)?,
            description: row.description,
            priority: read.unsigned(row.priority)?,
            source_path: PathBuf::from(row.source_path),
            preset_guid: read.guid(&row.preset_guid)?,
            dest_dir: PathBuf::from(row.dest_dir),
            base_name: row.base_name,
            output_path: row.output_path.map(PathBuf::from),
            check_in_time: row.check_in_time,
            start_time: row.start_time,
            completed_time: row.completed_time,
        })
    }
}

const COLUMNS: &str = "seq, guid, name, user, status, progress, description, priority, source_path, \
                       preset_guid, dest_dir, base_name, output_path, check_in_time, start_time, completed_time";

fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Queries on the `jobs` table.
#[derive(Clone)]
pub struct JobStore {
    pool: SqlitePool,
}

impl JobStore {
    pub fn new(pool: SqlitePool) -> Self {
        JobStore { pool }
    }

    /// Stores a new QUEUED job; once this returns the job is durable.
    pub async fn insert(&self, job: NewJob) -> Result<Job, StoreError> {
        let row: JobRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (guid, name, user, status, progress, priority, source_path, preset_guid, \
             dest_dir, base_name, check_in_time) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        )))
        .bind(job.guid.to_string())
        .bind(&job.name)
        .bind(&job.user)
        .bind(JobStatus::Queued.as_str())
        .bind(i64::from(job.priority))
        .bind(path_text(&job.source_path))
        .bind(job.preset_guid.to_string())
        .bind(path_text(&job.dest_dir))
        .bind(&job.base_name)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    pub async fn get(&self, guid: Guid) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = fetch_by_guid(&self.pool, "jobs", COLUMNS, guid).await?;
        row.map(Job::try_from).transpose()
    }

    /// Every job, oldest first.
    pub async fn all(&self) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs ORDER BY seq"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// Atomically takes the next QUEUED job (highest priority, then oldest)
    /// and marks it STARTING.
    pub async fn claim_next(&self) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET status = ?, progress = 0, description = '', start_time = ? \
             WHERE seq = (SELECT seq FROM jobs WHERE status = ? ORDER BY priority DESC, seq LIMIT 1) \
             RETURNING {COLUMNS}"
        )))
        .bind(JobStatus::Starting.as_str())
        .bind(now_ms())
        .bind(JobStatus::Queued.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Job::try_from).transpose()
    }

    /// Moves a job to `to` if its current status is one of `from`, applying
    /// `change`. Returns whether the job moved.
    pub async fn transition(
        &self,
        guid: Guid,
        from: &[JobStatus],
        to: JobStatus,
        change: Change,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET status = ?, progress = COALESCE(?, progress), \
             description = COALESCE(?, description), output_path = COALESCE(?, output_path), \
             completed_time = CASE WHEN ? THEN ? ELSE completed_time END \
             WHERE guid = ? AND status IN ({})",
            status_literals(from)
        )))
        .bind(to.as_str())
        .bind(change.progress.map(i64::from))
        .bind(change.description)
        .bind(change.output_path.as_deref().map(path_text))
        .bind(to.is_terminal())
        .bind(now_ms())
        .bind(guid.to_string());
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Raises a running job's progress; never lowers it.
    pub async fn raise_progress(&self, guid: Guid, progress: u32) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET progress = MAX(progress, ?) WHERE guid = ? AND status = ?")
            .bind(i64::from(progress.min(100)))
            .bind(guid.to_string())
            .bind(JobStatus::Started.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts every job caught mid-encode by a crash or shutdown back in the
    /// queue, keeping its place (its `seq` is unchanged). Returns how many.
    pub async fn requeue_interrupted(&self, running: &[JobStatus]) -> Result<u64, StoreError> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET status = ?, progress = 0, start_time = NULL WHERE status IN ({})",
            status_literals(running)
        )))
        .bind(JobStatus::Queued.as_str());
        Ok(query.execute(&self.pool).await?.rows_affected())
    }
}
