//! The portal's uploads table: each upload and the encoder job it became.

use sqlx::SqlitePool;

use super::{StoreError, corrupt, now_ms};
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
        let bad = corrupt("uploads");
        Ok(Upload {
            guid: row
                .guid
                .parse()
                .map_err(|e: crate::carbon::guid::InvalidGuid| bad(e.to_string()))?,
            original_name: row.original_name,
            stored_name: row.stored_name,
            size: u64::try_from(row.size).map_err(|e| bad(e.to_string()))?,
            status: row
                .status
                .parse()
                .map_err(|e: crate::carbon::status::UnknownStatus| bad(e.to_string()))?,
            progress: u32::try_from(row.progress).map_err(|e| bad(e.to_string()))?,
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
        let row: Option<UploadRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads WHERE guid = ?"
        )))
        .bind(guid.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Upload::try_from).transpose()
    }

    /// Uploads whose job may still change, oldest first.
    pub async fn unfinished(&self) -> Result<Vec<Upload>, StoreError> {
        let terminal: Vec<&str> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(JobStatus::as_str)
            .collect();
        let placeholders = vec!["?"; terminal.len()].join(", ");
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads WHERE status NOT IN ({placeholders}) ORDER BY created_at"
        )));
        for status in terminal {
            query = query.bind(status);
        }
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
