//! How an encoder node takes a job and holds it: the claim, the lease its
//! worker renews, the writes only the lease's holder may make (fenced by
//! the claim's number), and the repair of jobs whose holder is gone.
//!
//! Lease times are on the database's clock (`lease_expires`, unix ms), so
//! the nodes' clocks may disagree without a lease ending early. The fencing
//! token is the job's `attempts`: every claim counts one, so a worker from
//! an earlier claim can never write over a later one.

use std::path::{Path, PathBuf};

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::order::QUEUE;
use super::outputs::write_outputs;
use super::rows::{COLUMNS, JobRow};
use super::{AllowedFrom, Job, JobStore, Placed, move_job};
use crate::carbon::{Guid, JobStatus};
use crate::store::{Backend, RowReader, StoreError, db_now, now_ms, status_literals};

/// A worker's hold on a job: the job, the node and which claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub guid: Guid,
    pub node: String,
    /// The job's `attempts` when it was claimed: the fencing token.
    pub attempt: i64,
}

/// Which held jobs [`JobStore::repair`] puts right.
#[derive(Debug, Clone, Copy)]
pub enum Repair<'a> {
    /// Those this node held (it is starting or stopping), and any held job
    /// with no lease at all (left by a version before leases).
    HeldBy(&'a str),
    /// Those whose lease ran out (their node died or lost the database).
    /// A job losing its lease for the `max_losses`th time ends in ERROR.
    Expired { max_losses: u32 },
}

/// A job [`JobStore::repair`] moved, and the node that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub guid: Guid,
    pub node: Option<String>,
    pub status: JobStatus,
}

/// How many queued jobs a node whose storage lacks their files passes
/// over in one claim before giving up until the next wake-up.
pub const CANDIDATES: usize = 8;

/// What [`JobStore::claim_visible`] got: a job, or none; and the files of
/// the jobs passed over because this node cannot see them.
#[derive(Debug)]
pub struct Claimed {
    pub job: Option<(Job, Lease)>,
    pub unseen: Vec<PathBuf>,
}

/// The `seq` of the first job in queue order that nobody else is claiming
/// and whose files `can_see` allows, locked in `tx`; the files of those
/// passed over are added to `unseen`.
async fn head_visible(
    tx: &mut sqlx::AnyConnection,
    allowed: &str,
    can_see: &(dyn Fn(&Path) -> bool + Sync),
    unseen: &mut Vec<PathBuf>,
) -> Result<Option<i64>, StoreError> {
    let mut passed: Vec<i64> = Vec::new();
    while passed.len() < CANDIDATES {
        let not_passed = match passed.is_empty() {
            true => String::new(),
            false => format!(
                " AND j.seq NOT IN ({})",
                passed
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let head: Option<(i64, String, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "WITH {} SELECT j.seq, j.source_path, j.audio_path \
                 FROM queue q JOIN jobs j ON j.seq = q.seq \
                 WHERE j.status IN ({allowed}){not_passed} ORDER BY q.place LIMIT 1 \
                 FOR UPDATE OF j SKIP LOCKED",
                &*QUEUE
            )))
            .fetch_optional(&mut *tx)
            .await?;
        let Some((seq, source, audio)) = head else {
            return Ok(None);
        };
        let missing = std::iter::once(source)
            .chain(audio)
            .map(PathBuf::from)
            .find(|file| !can_see(file));
        match missing {
            None => return Ok(Some(seq)),
            Some(file) => {
                unseen.push(file);
                passed.push(seq);
            }
        }
    }
    Ok(None)
}

/// Statuses in which a worker holds the job (and so a lease).
fn holds_lease(status: JobStatus) -> bool {
    use JobStatus::*;
    matches!(
        status,
        Preparing | Starting | Started | Pausing | Paused | Resuming | Stopping
    )
}

/// The SET assignment of `lease_expires` for a move to `to`: a job leaving
/// the held statuses is nobody's any more.
pub(super) fn lease_after(to: JobStatus) -> &'static str {
    if holds_lease(to) {
        "lease_expires = lease_expires"
    } else {
        "lease_expires = NULL"
    }
}

/// The condition that `fence` still holds the job, its two parameters
/// numbered from `first`; nothing without a fence.
pub(super) fn fence_sql(fence: Option<&Lease>, first: usize) -> String {
    match fence {
        Some(_) => format!(
            " AND node = ${first} AND attempts = ${} AND lease_expires IS NOT NULL",
            first + 1
        ),
        None => String::new(),
    }
}

/// Binds [`fence_sql`]'s parameters.
pub(super) fn bind_fence<'q>(
    query: Query<'q, Any, AnyArguments>,
    fence: Option<&Lease>,
) -> Query<'q, Any, AnyArguments> {
    match fence {
        Some(lease) => query.bind(lease.node.clone()).bind(lease.attempt),
        None => query,
    }
}

/// The jobs `scope` names, as a condition on the `jobs` columns named with
/// `prefix` (a table alias, or nothing); `$param` is [`scope_node`].
pub(super) fn scope_sql(scope: Repair<'_>, backend: Backend, prefix: &str, param: usize) -> String {
    match scope {
        Repair::HeldBy(_) => {
            format!("({prefix}node = ${param} OR {prefix}lease_expires IS NULL)")
        }
        Repair::Expired { .. } => format!(
            "{prefix}lease_expires < {} AND ${param} = ''",
            db_now(backend)
        ),
    }
}

pub(super) fn scope_node(scope: Repair<'_>) -> String {
    match scope {
        Repair::HeldBy(node) => node.to_owned(),
        Repair::Expired { .. } => String::new(),
    }
}

impl JobStore {
    /// Atomically takes the job at the head of the queue (see [`QUEUE`]:
    /// highest priority, then the owner served least, then the longest in
    /// the queue), marks it STARTING and leases it to `node` for
    /// `lease_ms`. Nodes racing for it never both get it: on PostgreSQL the
    /// loser skips the locked row and takes the next one.
    pub async fn claim(
        &self,
        node: &str,
        lease_ms: i64,
        allowed_from: AllowedFrom,
    ) -> Result<Option<(Job, Lease)>, StoreError> {
        let claimed = self
            .claim_visible(node, lease_ms, allowed_from, &|_: &Path| true)
            .await?;
        Ok(claimed.job)
    }

    /// [`JobStore::claim`] for a node of a farm, which takes only a job
    /// whose files `can_see` says it can read (on PostgreSQL; on SQLite
    /// there is one node, which takes every job: one whose source is gone
    /// fails).
    /// Passes over at most [`CANDIDATES`] jobs it cannot take, and names them.
    pub async fn claim_visible(
        &self,
        node: &str,
        lease_ms: i64,
        allowed_from: AllowedFrom,
        can_see: &(dyn Fn(&Path) -> bool + Sync),
    ) -> Result<Claimed, StoreError> {
        let allowed = status_literals(allowed_from(JobStatus::Starting));
        let mut unseen = Vec::new();
        let set = format!(
            "status = '{}', progress = 0, failure = '', start_time = $1, node = $2, \
             attempts = attempts + 1, lease_expires = {} + $3",
            JobStatus::Starting.as_str(),
            db_now(self.db.backend())
        );
        let row: Option<JobRow> = match self.db.backend() {
            // One writer at a time: the head of the queue in one statement.
            Backend::Sqlite => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE jobs SET {set} \
                     WHERE seq = (WITH {} SELECT seq FROM queue WHERE place = 1) \
                     AND status IN ({allowed}) RETURNING {COLUMNS}",
                    &*QUEUE
                )))
                .bind(now_ms())
                .bind(node)
                .bind(lease_ms)
                .fetch_optional(self.db.pool())
                .await?
            }
            Backend::Postgres => {
                let mut tx = self.db.pool().begin().await?;
                let Some(seq) = head_visible(&mut tx, &allowed, can_see, &mut unseen).await? else {
                    return Ok(Claimed { job: None, unseen });
                };
                let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE jobs SET {set} WHERE seq = $4 RETURNING {COLUMNS}"
                )))
                .bind(now_ms())
                .bind(node)
                .bind(lease_ms)
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row
            }
        };
        let Some(job) = row.map(Job::try_from).transpose()? else {
            return Ok(Claimed { job: None, unseen });
        };
        self.cache.forget(job.guid);
        let lease = Lease {
            guid: job.guid,
            node: node.to_owned(),
            attempt: i64::from(job.attempts),
        };
        Ok(Claimed {
            job: Some((job, lease)),
            unseen,
        })
    }

    /// Extends the leases `node` holds on `guids` by `lease_ms`, unless
    /// they already ran out. Returns the ones extended, with their claim
    /// number and status: a worker whose lease is not among them has lost
    /// its job.
    pub async fn renew(
        &self,
        node: &str,
        guids: &[Guid],
        lease_ms: i64,
    ) -> Result<Vec<(Guid, i64, JobStatus)>, StoreError> {
        if guids.is_empty() {
            return Ok(Vec::new());
        }
        // GUIDs are parsed values, never raw input: safe to inline.
        let listed = guids
            .iter()
            .map(|g| format!("'{g}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let now = db_now(self.db.backend());
        let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET lease_expires = {now} + $2 \
             WHERE node = $1 AND lease_expires >= {now} AND guid IN ({listed}) \
             RETURNING guid, attempts, status"
        )))
        .bind(node)
        .bind(lease_ms)
        .fetch_all(self.db.pool())
        .await?;
        let read = RowReader { table: "jobs" };
        rows.into_iter()
            .map(|(guid, attempt, status)| Ok((read.guid(&guid)?, attempt, read.status(&status)?)))
            .collect()
    }

    /// Extends one lease; `false` when it is lost (or ran out).
    pub async fn renew_one(&self, lease: &Lease, lease_ms: i64) -> Result<bool, StoreError> {
        let renewed = self.renew(&lease.node, &[lease.guid], lease_ms).await?;
        Ok(renewed
            .iter()
            .any(|(guid, attempt, _)| *guid == lease.guid && *attempt == lease.attempt))
    }

    /// Whether any job's lease ran out (what the sweeper asks first).
    pub async fn any_lease_expired(&self) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT guid FROM jobs WHERE lease_expires < {} LIMIT 1",
            db_now(self.db.backend())
        )))
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Records a job's outputs (and their copies) and moves it to COMPLETED
    /// at 100 %, in one transaction. Returns whether the job moved (it was
    /// in one of `from` and `lease` still held it).
    pub async fn complete(
        &self,
        lease: &Lease,
        from: &[JobStatus],
        outputs: &[Placed],
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let set = "progress = 100, failure = '', completed_time = $3";
        let to = (from, JobStatus::Completed);
        if !move_job(&mut tx, lease.guid, Some(lease), to, set).await? {
            return Ok(false);
        }
        write_outputs(&mut tx, lease.guid, outputs).await?;
        tx.commit().await?;
        self.cache.forget(lease.guid);
        Ok(true)
    }

    /// Raises a running job's progress; never lowers it.
    pub async fn raise_progress(&self, lease: &Lease, progress: u32) -> Result<(), StoreError> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET progress = CASE WHEN progress < $1 THEN $1 ELSE progress END \
             WHERE guid = $2 AND status = $3{}",
            fence_sql(Some(lease), 4)
        )))
        .bind(i64::from(progress.min(100)))
        .bind(lease.guid.to_string())
        .bind(JobStatus::Started.as_str());
        bind_fence(query, Some(lease))
            .execute(self.db.pool())
            .await?;
        self.cache.forget(lease.guid);
        Ok(())
    }

    /// Puts right the held jobs `scope` names, in one transaction: jobs
    /// being encoded go back to QUEUED keeping their place (or, past their
    /// last chance, end in ERROR); a paused encode stays PAUSED but starts
    /// over when resumed; a job being stopped is STOPPED (with
    /// `stopped_reason`). Every change of status is one the state machine
    /// (`allowed_from`) allows. Returns the jobs moved.
    pub async fn repair(
        &self,
        scope: Repair<'_>,
        stopped_reason: &str,
        allowed_from: AllowedFrom,
    ) -> Result<Vec<Swept>, StoreError> {
        use JobStatus::*;
        let (lost, max_losses) = match scope {
            Repair::Expired { max_losses } => ("lease_losses + 1", i64::from(max_losses)),
            Repair::HeldBy(_) => ("lease_losses", i64::MAX),
        };
        // Carbon's transient statuses are never entered here (see
        // `allowed_from`): only the statuses a worker holds are repaired.
        let allowed = |from: &[JobStatus], to: JobStatus| -> Vec<JobStatus> {
            let allowed = allowed_from(to);
            from.iter()
                .copied()
                .filter(|s| allowed.contains(s))
                .collect()
        };
        let encoding = allowed(&[Starting, Started], Queued);
        let fixes = [
            (
                allowed(&[Starting, Started], Error),
                Error,
                format!(
                    "completed_time = $3, lease_losses = {lost}, \
                     failure = $6 || COALESCE(node, 'unknown')"
                ),
                " AND lease_losses + 1 >= $5",
            ),
            (
                encoding,
                Queued,
                format!("progress = 0, start_time = NULL, lease_losses = {lost}"),
                "",
            ),
            // Not a change of status: a suspended encode only loses its
            // progress and start, so it starts over when resumed.
            (
                vec![Paused],
                Paused,
                "progress = 0, start_time = NULL".to_owned(),
                " AND start_time IS NOT NULL",
            ),
            (
                allowed(&[Stopping], Stopped),
                Stopped,
                "completed_time = $3, failure = CASE WHEN failure = '' THEN $1 ELSE failure END"
                    .to_owned(),
                "",
            ),
        ];
        let within = scope_sql(scope, self.db.backend(), "", 4);
        let mut tx = self.db.pool().begin().await?;
        let mut swept = Vec::new();
        for (from, to, also, only) in fixes {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE jobs SET status = $2, {also}, lease_expires = NULL \
                 WHERE status IN ({}) AND {within}{only} RETURNING guid, node",
                status_literals(&from)
            )))
            .bind(stopped_reason)
            .bind(to.as_str())
            .bind(now_ms())
            .bind(scope_node(scope))
            .bind(max_losses)
            .bind(format!(
                "its encoder node stopped answering {max_losses} times; the last: "
            ))
            .fetch_all(&mut *tx)
            .await?;
            let read = RowReader { table: "jobs" };
            for (guid, node) in rows {
                swept.push(Swept {
                    guid: read.guid(&guid)?,
                    node,
                    status: to,
                });
            }
        }
        tx.commit().await?;
        self.cache.forget_all();
        Ok(swept)
    }
}
