//! Durable state in SQLite through sqlx, schema in `migrations/`.
//!
//! Owns tables and queries: the encoder's job queue (`jobs`) and the portal's
//! record of uploads (`uploads`). Knows nothing of HTTP, XML or ffmpeg; the
//! rules for *which* status may follow which live with the encoder, which
//! passes them in.

pub mod accounts;
pub mod jobs;
pub mod sessions;
pub mod uploads;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::carbon::guid::InvalidGuid;
use crate::carbon::status::UnknownStatus;
use crate::carbon::{Guid, JobStatus};
use crate::owner::Owner;

pub use jobs::{Job, JobStore, NewJob};
// `jobs::Destination` stays qualified: the Carbon message has one too.
pub use accounts::AccountStore;
pub use sessions::SessionStore;
pub use uploads::{TusStore, TusUpload, Upload, UploadStore};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

/// Opens (creating if needed) the database at `path` and brings its schema
/// up to date.
///
/// WAL with `synchronous=FULL`: a job acknowledged to a client survives a
/// power cut, not only a process crash.
pub async fn open(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Milliseconds since the Unix epoch, the time format of every table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Statuses as SQL string literals (`'QUEUED', 'STARTED'`). Safe to inline:
/// they come from [`JobStatus::as_str`], never from input.
fn status_literals(statuses: &[JobStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row of `table` with this GUID, if any.
async fn fetch_by_guid<R>(
    pool: &SqlitePool,
    table: &str,
    columns: &str,
    guid: Guid,
) -> Result<Option<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE guid = ?"
    )))
    .bind(guid.to_string())
    .fetch_optional(pool)
    .await
}

/// Reads typed values out of a row's text and integer columns, naming the
/// table when a value is not what the schema promises.
struct RowReader {
    table: &'static str,
}

impl RowReader {
    fn corrupt(&self, reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            reason: reason.to_string(),
        }
    }

    fn guid(&self, text: &str) -> Result<Guid, StoreError> {
        text.parse().map_err(|e: InvalidGuid| self.corrupt(e))
    }

    fn status(&self, text: &str) -> Result<JobStatus, StoreError> {
        text.parse().map_err(|e: UnknownStatus| self.corrupt(e))
    }

    /// The owner column: `''` for an upload from before owners were
    /// recorded (nobody's), otherwise an identity [`Owner::parse`] reads.
    fn owner(&self, text: &str) -> Result<Option<Owner>, StoreError> {
        if text.is_empty() {
            return Ok(None);
        }
        Owner::try_from(text.to_owned())
            .map(Some)
            .map_err(|e| self.corrupt(e))
    }

    fn unsigned<T: TryFrom<i64>>(&self, value: i64) -> Result<T, StoreError> {
        T::try_from(value).map_err(|_| self.corrupt(format!("{value} is out of range")))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| self.corrupt(format!("JSON column: {e}")))
    }
}
