//! Durable state through sqlx: embedded SQLite (schema in `migrations/`)
//! or a shared PostgreSQL (schema in `migrations/postgres/`).
//!
//! Owns tables and queries: the encoder's job queue (`jobs`), the chunks a
//! long job is split into (`chunks`), the farm's nodes and their tokens, and
//! the portal's record of uploads (`uploads`). Knows nothing of HTTP, XML or ffmpeg; the
//! rules for *which* status may follow which live with the encoder, which
//! passes them in.

pub mod accounts;
pub mod chunks;
pub mod jobs;
pub mod node_tokens;
pub mod nodes;
pub mod notify;
pub mod sessions;
#[doc(hidden)]
pub mod testing;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::carbon::guid::InvalidGuid;
use crate::carbon::status::UnknownStatus;
use crate::carbon::{Guid, JobStatus};
use crate::owner::Owner;

pub use chunks::{
    Chunk, ChunkKind, ChunkLease, ChunkPlan, ChunkRate, ChunkRepair, ChunkState, ChunkStore,
    ChunkTotals, NewChunk,
};
pub use jobs::{Job, JobStore, NewJob};
pub use node_tokens::NodeTokens;
pub use nodes::{Node, NodeInfo, NodeStore};
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

/// Where the database is: `--database` as parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An embedded SQLite file (the default: `<data>/videoshare.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://user@host:port/db`), which many
    /// encoder nodes can share.
    Postgres(String),
}

/// Why a `--database` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--database must be `sqlite:` (the data folder's own file), `sqlite:PATH` or \
     `postgres://USER@HOST:PORT/NAME`, not {0:?}"
)]
pub struct BadDatabaseUrl(String);

impl DatabaseUrl {
    /// Reads a `--database` value; `sqlite:` alone means `default_file`.
    pub fn parse(text: &str, default_file: &Path) -> Result<DatabaseUrl, BadDatabaseUrl> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_owned()));
        }
        match text.strip_prefix("sqlite:") {
            Some("") => Ok(DatabaseUrl::Sqlite(default_file.to_owned())),
            Some(path) => Ok(DatabaseUrl::Sqlite(PathBuf::from(
                path.strip_prefix("//").unwrap_or(path),
            ))),
            None => Err(BadDatabaseUrl(text.to_owned())),
        }
    }

    /// The URL without its password, for logs and error messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => without_password(url),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((credentials, _)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            let host_and_rest = &rest[credentials.len()..];
            format!("{scheme}://{user}:***{host_and_rest}")
        }
        _ => url.to_owned(),
    }
}

/// Which engine a [`Db`] runs on, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open database: one pool over either engine. Every query is written
/// once, with `$n` placeholders, in SQL both engines read.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The server's URL, for the connection that listens (PostgreSQL).
    url: Option<std::sync::Arc<str>>,
}

impl Db {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for queries (and for tests that look under the stores).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (tests that drop a database first).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Opens (creating if needed) the database and brings its schema up to
/// date: `migrations/` on SQLite, `migrations/postgres/` on PostgreSQL.
pub async fn open_url(url: &DatabaseUrl) -> Result<Db, StoreError> {
    sqlx::any::install_default_drivers();
    match url {
        DatabaseUrl::Sqlite(path) => open(path).await,
        DatabaseUrl::Postgres(text) => {
            let options = AnyConnectOptions::from_str(text)?;
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(Db {
                pool,
                backend: Backend::Postgres,
                url: Some(text.as_str().into()),
            })
        }
    }
}

/// Opens (creating if needed) the SQLite database at `path` and brings its
/// schema up to date.
///
/// WAL with `synchronous=FULL`: a job acknowledged to a client survives a
/// power cut, not only a process crash.
pub async fn open(path: &Path) -> Result<Db, StoreError> {
    sqlx::any::install_default_drivers();
    // The file name travels in a URL: escape what a URL would read.
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'?');
    let name = percent_encoding::percent_encode(path.as_os_str().as_encoded_bytes(), PATH);
    let url = format!("sqlite://{name}?mode=rwc");
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // busy_timeout first: the WAL switch may wait for a lock.
                conn.execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(AnyConnectOptions::from_str(&url)?)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(Db {
        pool,
        backend: Backend::Sqlite,
        url: None,
    })
}

/// The database's own clock in unix milliseconds, as SQL: what leases are
/// timed by, so the nodes' clocks never matter.
fn db_now(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// Milliseconds since the Unix epoch, the time format of every table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Statuses as SQL string literals (`'QUEUED', 'STARTED'`). Safe to inline:
/// they come from [`JobStatus::as_str`], never from input.
/// An empty list gives `NULL`, which matches nothing (`IN ()` is not
/// SQL PostgreSQL reads).
fn status_literals(statuses: &[JobStatus]) -> String {
    if statuses.is_empty() {
        return "NULL".to_owned();
    }
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row of `table` with this GUID, if any.
async fn fetch_by_guid<R>(
    db: &Db,
    table: &str,
    columns: &str,
    guid: Guid,
) -> Result<Option<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE guid = $1"
    )))
    .bind(guid.to_string())
    .fetch_optional(db.pool())
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
