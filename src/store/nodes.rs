//! The encoder nodes of a farm (the `nodes` table): who they are, what they
//! can do, when each was last seen. Each node's process registers and
//! heartbeats its own row; any node reads them all (Carbon `NodeCommand`,
//! `/metrics`). Times are on the database's clock, like leases.

use super::{Db, RowReader, StoreError, db_now};

/// What a node says of itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// Random per process: which process holds the name now.
    pub instance: String,
    /// Where its Carbon listener is.
    pub address: String,
    pub slots: u32,
    pub version: String,
    /// The ffmpeg encoders it has (`libx264`, `aac`, …).
    pub encoders: Vec<String>,
}

/// A node as the table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub address: String,
    pub slots: u32,
    pub enabled: bool,
    pub version: String,
    pub encoders: Vec<String>,
    pub started_at: i64,
    /// When it last heartbeat, on the database's clock.
    pub last_seen: i64,
    /// Milliseconds since then, on the same clock.
    pub silent_ms: i64,
    /// `up` while it runs, `left` once it stopped cleanly.
    pub state: String,
    pub note: String,
    /// How many of its leases ran out (jobs taken back from it).
    pub lease_expiries: u64,
    /// Jobs it holds now.
    pub busy: u32,
}

#[derive(sqlx::FromRow)]
struct NodeRow {
    name: String,
    address: String,
    slots: i64,
    enabled: i64,
    version: String,
    encoders: String,
    started_at: i64,
    last_seen: i64,
    silent_ms: i64,
    state: String,
    note: String,
    lease_expiries: i64,
    busy: i64,
}

/// Queries on the `nodes` table.
#[derive(Clone)]
pub struct NodeStore {
    db: Db,
}

impl NodeStore {
    pub fn new(db: Db) -> Self {
        NodeStore { db }
    }

    /// Registers (or re-registers) a node under `info.name`. `false` when
    /// another process holds that name and was seen less than `alive_ms`
    /// ago: two live nodes must not share a name.
    pub async fn register(&self, info: &NodeInfo, alive_ms: i64) -> Result<bool, StoreError> {
        let now = db_now(self.db.backend());
        let encoders = serde_json::to_string(&info.encoders).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO nodes (name, instance, address, slots, enabled, version, encoders, \
             started_at, last_seen, state) VALUES ($1, $2, $3, $4, 1, $5, $6, {now}, {now}, 'up') \
             ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, \
             address = excluded.address, slots = excluded.slots, version = excluded.version, \
             encoders = excluded.encoders, started_at = excluded.started_at, \
             last_seen = excluded.last_seen, state = 'up', note = '' \
             WHERE nodes.instance = excluded.instance OR nodes.state = 'left' \
             OR nodes.last_seen <= {now} - $7"
        )))
        .bind(&info.name)
        .bind(&info.instance)
        .bind(&info.address)
        .bind(i64::from(info.slots))
        .bind(&info.version)
        .bind(encoders)
        .bind(alive_ms)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Says the node is alive. `false` when another process has taken its
    /// name since (this one was presumed dead).
    pub async fn heartbeat(&self, name: &str, instance: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE nodes SET last_seen = {}, state = 'up' WHERE name = $1 AND instance = $2",
            db_now(self.db.backend())
        )))
        .bind(name)
        .bind(instance)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the node as gone on purpose (a clean shutdown).
    pub async fn leave(&self, name: &str, instance: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET state = 'left' WHERE name = $1 AND instance = $2")
            .bind(name)
            .bind(instance)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Enables or disables a node (a disabled node finishes what it runs
    /// and takes nothing new). `false` when there is no such node.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE nodes SET enabled = $1 WHERE name = $2")
            .bind(i64::from(enabled))
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the node is enabled (`None`: not registered).
    pub async fn is_enabled(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT enabled FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|(enabled,)| enabled != 0))
    }

    /// What the node wants an operator to know ('' for nothing).
    pub async fn set_note(&self, name: &str, note: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET note = $1 WHERE name = $2 AND note <> $1")
            .bind(note)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Counts leases of `name`'s that ran out.
    pub async fn count_expiries(&self, name: &str, expired: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET lease_expiries = lease_expiries + $1 WHERE name = $2")
            .bind(i64::try_from(expired).unwrap_or(i64::MAX))
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Every node, by name, with how many jobs each holds now.
    pub async fn list(&self) -> Result<Vec<Node>, StoreError> {
        let now = db_now(self.db.backend());
        let rows: Vec<NodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT n.name, n.address, n.slots, n.enabled, n.version, n.encoders, n.started_at, \
             n.last_seen, {now} - n.last_seen AS silent_ms, n.state, n.note, n.lease_expiries, \
             (SELECT COUNT(*) FROM jobs j WHERE j.node = n.name \
                AND j.lease_expires IS NOT NULL) AS busy \
             FROM nodes n ORDER BY n.name"
        )))
        .fetch_all(self.db.pool())
        .await?;
        let read = RowReader { table: "nodes" };
        rows.into_iter()
            .map(|row| {
                Ok(Node {
                    name: row.name,
                    address: row.address,
                    slots: read.unsigned(row.slots)?,
                    enabled: row.enabled != 0,
                    version: row.version,
                    encoders: read.json(&row.encoders)?,
                    started_at: row.started_at,
                    last_seen: row.last_seen,
                    silent_ms: row.silent_ms,
                    state: row.state,
                    note: row.note,
                    lease_expiries: read.unsigned(row.lease_expiries)?,
                    busy: read.unsigned(row.busy)?,
                })
            })
            .collect()
    }
}
