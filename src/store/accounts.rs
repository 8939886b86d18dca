//! The portal's optional accounts: a name and an argon2 password hash.
//! Hashing and checking passwords is the caller's; this is storage only.

use crate::store::Db;

use super::{StoreError, now_ms};

/// Queries on the `accounts` table.
#[derive(Clone)]
pub struct AccountStore {
    db: Db,
}

impl AccountStore {
    pub fn new(db: Db) -> Self {
        AccountStore { db }
    }

    /// Adds an account; `false` when the name (in any case) is taken.
    pub async fn create(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO accounts (name, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The account's name as registered and its password hash.
    pub async fn find(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT name, password_hash FROM accounts WHERE lower(name) = lower($1)",
            )
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?,
        )
    }

    /// Replaces the password hash of account `name`.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
