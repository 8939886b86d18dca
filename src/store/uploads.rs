//! The portal's uploads table: each upload and the encoder job it became.

use sqlx::SqlitePool;

use super::{RowReader, StoreError, fetch_by_guid, now_ms, status_literals};
use crate::carbon::{Guid, JobStatus};

/// An upload and the last known state of its job.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub guid: Guid,
    pub original_name: String,
    pub stored_name: String,
    pub size: u64,
    pub status: JobStatus,
    pub progress: u32,
    pub description: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    guid: String,
    original_name: String,
    stored_name: String,
    size: i64,
    status: String,
    progress: i64,
    description: String,
    created_at: i64,
}

impl TryFrom<UploadRow> for Upload {
    type Error = StoreError;

    fn try_from(row: UploadRow) -> Result<Upload, StoreError> {
        let read = RowReader { table: "uploads" };
        Ok(Upload {
            guid: read.guid(&row.guid)?,
            original_name: row.original_name,
            stored_name: row.stored_name,
            size: read.unsigned(row.size)?,
            status: read.status(&row.status)?,
            progress: read.unsigned(row.progress)?,
            description: row.description,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str =
    "guid, original_name, stored_name, size, status, progress, description, created_at";

/// Queries on the `uploads` table.
#[derive(Clone)]
pub struct UploadStore {
    pool: SqlitePool,
}

impl UploadStore {
    pub fn new(pool: SqlitePool) -> Self {
        UploadStore { pool }
    }

    /// Writes the health row: fails when the database cannot take writes
    /// (disk full, read-only, locked past the busy timeout).
    pub async fn touch_health(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health (id, checked_at) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn insert(&self, upload: &Upload) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO uploads (guid, original_name, stored_name, size, status, progress, description, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(upload.guid.to_string())
        .bind(&upload.original_name)
        .bind(&upload.stored_name)
        .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
        .bind(upload.status.as_str())
        .bind(i64::from(upload.progress))
        .bind(&upload.description)
        .bind(upload.created_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get(&self, guid: Guid) -> Result<Option<Upload>, StoreError> {
        let row: Option<UploadRow> = fetch_by_guid(&self.pool, "uploads", COLUMNS, guid).await?;
        row.map(Upload::try_from).transpose()
    }

    /// Uploads whose job may still change, oldest first.
    pub async fn unfinished(&self) -> Result<Vec<Upload>, StoreError> {
        let terminal: Vec<JobStatus> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads WHERE status NOT IN ({}) ORDER BY created_at",
            status_literals(&terminal)
        )));
        let rows: Vec<UploadRow> = query.fetch_all(&self.pool).await?;
        rows.into_iter().map(Upload::try_from).collect()
    }

    /// Records the job's latest state as seen on the encoder.
    pub async fn record_state(
        &self,
        guid: Guid,
        status: JobStatus,
        progress: u32,
        description: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET status = ?, progress = ?, description = ?, updated_at = ? WHERE guid = ?")
            .bind(status.as_str())
            .bind(i64::from(progress))
            .bind(description)
            .bind(now_ms())
            .bind(guid.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A fresh upload record, not yet stored.
pub fn new_upload(guid: Guid, original_name: String, stored_name: String, size: u64) -> Upload {
    Upload {
        guid,
        original_name,
        stored_name,
        size,
        status: JobStatus::Queued,
        progress: 0,
        description: String::new(),
        created_at: now_ms(),
    }
}
