//! The portal's uploads table: each upload and the encoder job it became.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::Db;

use super::{RowReader, StoreError, fetch_by_guid, now_ms, status_literals};
use crate::carbon::{Guid, JobStatus};
use crate::owner::Owner;

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
    /// The session or account identity that uploaded it; `None` for an
    /// upload recorded before uploads had owners (nobody's).
    pub owner: Option<Owner>,
    /// The preset chosen, by name ('' when unknown).
    pub preset_name: String,
}

/// A file a finished upload's job wrote, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub guid: Guid,
    pub file_name: String,
    pub preset_name: String,
    /// The owner of the upload whose job wrote it (see [`Upload::owner`]).
    pub owner: Option<Owner>,
}

impl Upload {
    /// Whether `owner` made this upload.
    pub fn is_owned_by(&self, owner: &Owner) -> bool {
        self.owner.as_ref() == Some(owner)
    }
}

impl Output {
    /// Whether this file came from an upload of `owner`'s.
    pub fn is_owned_by(&self, owner: &Owner) -> bool {
        self.owner.as_ref() == Some(owner)
    }
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
    owner: String,
    preset_name: String,
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
            owner: read.owner(&row.owner)?,
            preset_name: row.preset_name,
        })
    }
}

const COLUMNS: &str = "guid, original_name, stored_name, size, status, progress, description, \
     created_at, owner, preset_name";

/// Every recorded output by file name: what the library and the private
/// library's guard ask on every listing and every byte range.
pub type OwnerIndex = Arc<HashMap<String, Output>>;

/// The [`OwnerIndex`] last read, dropped whenever outputs or owners change.
/// The generation stops a read that raced a change from storing a stale map.
#[derive(Default)]
struct OwnerCache {
    state: Mutex<(u64, Option<OwnerIndex>)>,
}

impl OwnerCache {
    fn invalidate(&self) {
        let mut state = self.state.lock();
        state.0 += 1;
        state.1 = None;
    }
}

/// Queries on the `uploads` table.
#[derive(Clone)]
pub struct UploadStore {
    db: Db,
    owners: Arc<OwnerCache>,
}

impl UploadStore {
    pub fn new(db: Db) -> Self {
        UploadStore {
            db,
            owners: Arc::default(),
        }
    }

    /// Every recorded output by file name, with its owner: read once and
    /// cached until outputs are recorded or uploads change hands.
    pub async fn owner_index(&self) -> Result<OwnerIndex, StoreError> {
        let generation = {
            let state = self.owners.state.lock();
            if let Some(index) = &state.1 {
                return Ok(index.clone());
            }
            state.0
        };
        let index: OwnerIndex = Arc::new(
            self.outputs()
                .await?
                .into_iter()
                .map(|o| (o.file_name.clone(), o))
                .collect(),
        );
        let mut state = self.owners.state.lock();
        if state.0 == generation {
            state.1 = Some(index.clone());
        }
        Ok(index)
    }

    /// Writes the health row: fails when the database cannot take writes
    /// (disk full, read-only, locked past the busy timeout).
    pub async fn touch_health(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn insert(&self, upload: &Upload) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO uploads (guid, original_name, stored_name, size, status, progress, description, \
             created_at, updated_at, owner, preset_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .bind(upload.owner.as_ref().map_or("", Owner::as_str))
        .bind(&upload.preset_name)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn get(&self, guid: Guid) -> Result<Option<Upload>, StoreError> {
        let row: Option<UploadRow> = fetch_by_guid(&self.db, "uploads", COLUMNS, guid).await?;
        row.map(Upload::try_from).transpose()
    }

    /// Uploads whose job may still change, oldest first.
    pub async fn unfinished(&self) -> Result<Vec<Upload>, StoreError> {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads WHERE status NOT IN ({}) ORDER BY created_at",
            status_literals(&terminal_statuses())
        )));
        let rows: Vec<UploadRow> = query.fetch_all(self.db.pool()).await?;
        rows.into_iter().map(Upload::try_from).collect()
    }

    /// Completed uploads with no recorded outputs (recorded before outputs
    /// were required with completion, or whose job named none).
    pub async fn completed_without_outputs(&self) -> Result<Vec<Upload>, StoreError> {
        let rows: Vec<UploadRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads u WHERE status = '{}' AND NOT EXISTS \
             (SELECT 1 FROM upload_outputs o WHERE o.guid = u.guid) ORDER BY created_at",
            JobStatus::Completed.as_str()
        )))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(Upload::try_from).collect()
    }

    /// `owner`'s uploads, newest first, at most `limit`.
    pub async fn of_owner(&self, owner: &Owner, limit: u32) -> Result<Vec<Upload>, StoreError> {
        let rows: Vec<UploadRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM uploads WHERE owner = $1 ORDER BY created_at DESC, guid LIMIT $2"
        )))
        .bind(owner.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(Upload::try_from).collect()
    }

    /// How many of `owner`'s uploads have a job that may still change.
    pub async fn unfinished_count_of(&self, owner: &Owner) -> Result<u32, StoreError> {
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM uploads WHERE owner = $1 AND status NOT IN ({})",
            status_literals(&terminal_statuses())
        )))
        .bind(owner.as_str())
        .fetch_one(self.db.pool())
        .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Gives every upload of `from` to `to` (a browser signing in to its
    /// account keeps the queue it had). Returns how many moved.
    pub async fn transfer(&self, from: &Owner, to: &Owner) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE uploads SET owner = $1 WHERE owner = $2")
            .bind(to.as_str())
            .bind(from.as_str())
            .execute(self.db.pool())
            .await?;
        self.owners.invalidate();
        Ok(done.rows_affected())
    }

    /// Records the files a finished job wrote (again: replaces the list).
    pub async fn record_outputs(
        &self,
        guid: Guid,
        outputs: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        replace_outputs(&mut tx, guid, outputs).await?;
        tx.commit().await?;
        self.owners.invalidate();
        Ok(())
    }

    /// Every recorded output with its owner, by file name.
    pub async fn outputs(&self) -> Result<Vec<Output>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT o.guid, o.file_name, o.preset_name, u.owner \
             FROM upload_outputs o JOIN uploads u ON u.guid = o.guid",
        )
        .fetch_all(self.db.pool())
        .await?;
        let read = RowReader {
            table: "upload_outputs",
        };
        rows.into_iter()
            .map(|(guid, file_name, preset_name, owner)| {
                Ok(Output {
                    guid: read.guid(&guid)?,
                    file_name,
                    preset_name,
                    owner: read.owner(&owner)?,
                })
            })
            .collect()
    }

    /// Records the job's latest state as seen on the encoder, only if the
    /// row still holds the state `seen` was read with (compare-and-set): a
    /// slow poll never writes an older state over a newer one (a STOPPED
    /// the user just pressed). `false` when the row had moved on (or is
    /// gone) and nothing was written.
    pub async fn record_state(
        &self,
        seen: &Upload,
        status: JobStatus,
        progress: u32,
        description: &str,
    ) -> Result<bool, StoreError> {
        let done = Self::compare_and_set(seen, status, progress, description)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a job's completion together with the files it wrote, in one
    /// transaction and on the same compare-and-set terms as
    /// [`UploadStore::record_state`]: a job is never COMPLETED without its
    /// outputs (which link its videos to their owner).
    pub async fn record_completion(
        &self,
        seen: &Upload,
        progress: u32,
        description: &str,
        outputs: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let done = Self::compare_and_set(seen, JobStatus::Completed, progress, description)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        replace_outputs(&mut tx, seen.guid, outputs).await?;
        tx.commit().await?;
        self.owners.invalidate();
        Ok(true)
    }

    fn compare_and_set<'q>(
        seen: &'q Upload,
        status: JobStatus,
        progress: u32,
        description: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        sqlx::query(
            "UPDATE uploads SET status = $1, progress = $2, description = $3, updated_at = $4 \
             WHERE guid = $5 AND status = $6 AND progress = $7 AND description = $8",
        )
        .bind(status.as_str())
        .bind(i64::from(progress))
        .bind(description)
        .bind(now_ms())
        .bind(seen.guid.to_string())
        .bind(seen.status.as_str())
        .bind(i64::from(seen.progress))
        .bind(seen.description.as_str())
    }
}

/// Replaces the recorded outputs of job `guid`.
async fn replace_outputs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    guid: Guid,
    outputs: &[(String, String)],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM upload_outputs WHERE guid = $1")
        .bind(guid.to_string())
        .execute(&mut **tx)
        .await?;
    for (file_name, preset_name) in outputs {
        sqlx::query(
            "INSERT INTO upload_outputs (guid, file_name, preset_name) VALUES ($1, $2, $3) \
             ON CONFLICT (guid, file_name) DO UPDATE SET preset_name = excluded.preset_name",
        )
        .bind(guid.to_string())
        .bind(file_name)
        .bind(preset_name)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A fresh upload record, not yet stored.
pub fn new_upload(
    guid: Guid,
    original_name: String,
    stored_name: String,
    size: u64,
    owner: Owner,
    preset_name: String,
) -> Upload {
    Upload {
        owner: Some(owner),
        preset_name,
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

/// A resumable upload in progress (or just finished: then `guid` is set).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TusUpload {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub owner: Owner,
    pub length: i64,
    pub file_name: String,
    pub preset: Option<String>,
    pub created_at: i64,
    pub guid: Option<String>,
}

/// Queries on the `tus_uploads` table.
#[derive(Clone)]
pub struct TusStore {
    db: Db,
}

impl TusStore {
    pub fn new(db: Db) -> Self {
        TusStore { db }
    }

    pub async fn insert(&self, upload: &TusUpload) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tus_uploads (id, owner, length, file_name, preset, created_at, guid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&upload.id)
        .bind(upload.owner.as_str())
        .bind(upload.length)
        .bind(&upload.file_name)
        .bind(&upload.preset)
        .bind(upload.created_at)
        .bind(&upload.guid)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<TusUpload>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, owner, length, file_name, preset, created_at, guid FROM tus_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    pub async fn finish(&self, id: &str, guid: impl ToString) -> Result<(), StoreError> {
        sqlx::query("UPDATE tus_uploads SET guid = $1 WHERE id = $2")
            .bind(guid.to_string())
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tus_uploads WHERE id = $1")
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Forgets uploads created before `before` (unix ms); returns their ids
    /// so their files can go too.
    pub async fn expire(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("DELETE FROM tus_uploads WHERE created_at < $1 RETURNING id")
                .bind(before)
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Uploads still receiving bytes (no job yet).
    pub async fn unfinished(&self) -> Result<Vec<TusUpload>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, owner, length, file_name, preset, created_at, guid FROM tus_uploads \
             WHERE guid IS NULL",
        )
        .fetch_all(self.db.pool())
        .await?)
    }

    /// The job `upload`'s bytes became when a crash came between its
    /// submission and [`TusStore::finish`]: the oldest upload of the same
    /// owner, name and size since it began that no other resumable upload
    /// claims.
    pub async fn submitted_job(&self, upload: &TusUpload) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT guid FROM uploads WHERE owner = $1 AND original_name = $2 AND size = $3 \
             AND created_at >= $4 AND guid NOT IN \
             (SELECT guid FROM tus_uploads WHERE guid IS NOT NULL) \
             ORDER BY created_at LIMIT 1",
        )
        .bind(upload.owner.as_str())
        .bind(&upload.file_name)
        .bind(upload.length)
        .bind(upload.created_at)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(guid,)| guid))
    }

    /// Gives `from`'s resumable uploads to `to` (with the browser that
    /// signs in). Returns how many moved.
    pub async fn transfer(&self, from: &Owner, to: &Owner) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE tus_uploads SET owner = $1 WHERE owner = $2")
            .bind(to.as_str())
            .bind(from.as_str())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// How many of `owner`'s resumable uploads are not complete yet.
    pub async fn open_count_of(&self, owner: &Owner) -> Result<u32, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tus_uploads WHERE owner = $1 AND guid IS NULL")
                .bind(owner.as_str())
                .fetch_one(self.db.pool())
                .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Every id still known.
    pub async fn ids(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM tus_uploads")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// The statuses after which a job never changes.
fn terminal_statuses() -> Vec<JobStatus> {
    JobStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect()
}
