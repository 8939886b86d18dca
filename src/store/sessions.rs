//! Signed-in sessions: which account a session id belongs to and when it was
//! last renewed. Deleting a row ends that session wherever its cookie is.
//! What a session id looks like and how it reaches the browser is the
//! portal's; this is storage only.

use crate::store::Db;

use super::{StoreError, now_ms};

/// Queries on the `sessions` table.
#[derive(Clone)]
pub struct SessionStore {
    db: Db,
}

impl SessionStore {
    pub fn new(db: Db) -> Self {
        SessionStore { db }
    }

    /// Records a new session of `account`.
    pub async fn create(&self, id: &str, account: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (id, account, created_at, seen_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(account)
        .bind(now)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The account of session `id`, if it exists and was renewed within
    /// `lifetime_ms`.
    pub async fn account(&self, id: &str, lifetime_ms: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT account FROM sessions WHERE id = $1 AND seen_at > $2")
                .bind(id)
                .bind(now_ms().saturating_sub(lifetime_ms))
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|(account,)| account))
    }

    /// Marks session `id` as seen now (sliding expiry).
    pub async fn renew(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET seen_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Ends session `id`.
    pub async fn end(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of `account` but `keep` (when given); returns how
    /// many ended.
    pub async fn end_all(&self, account: &str, keep: Option<&str>) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE account = $1 AND id IS DISTINCT FROM $2")
                .bind(account)
                .bind(keep)
                .execute(self.db.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// Removes sessions idle for longer than `lifetime_ms`.
    pub async fn sweep(&self, lifetime_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE seen_at <= $1")
            .bind(now_ms().saturating_sub(lifetime_ms))
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
