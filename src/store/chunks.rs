//! Chunked encoding's tables: a job's plan (`chunk_plans`) and its chunks
//! (`chunks`), each chunk a sub-job that encoder nodes claim and hold under
//! a lease exactly as they hold jobs (see `jobs::lease`): `node` and
//! `lease_expires` on the database's clock, `attempts` as the fencing token.
//!
//! Carbon sees only the parent job; nothing here changes a job's row. Only
//! chunks of a job in STARTED are claimed (the node running the job made
//! the plan and assembles the result). Knows nothing of ffmpeg: a plan's
//! `spec` is the encoder's own JSON text.

use std::path::{Path, PathBuf};

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::jobs::CANDIDATES;
use super::{Backend, Db, StoreError, db_now};
use crate::carbon::{Guid, JobStatus};
use types::{COLUMNS, ChunkRow, READ};
pub use types::{
    Chunk, ChunkKind, ChunkLease, ChunkPlan, ChunkRate, ChunkRepair, ChunkState, ChunkTotals,
    NewChunk,
};

mod types;

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// The state literal for SQL (from [`ChunkState::as_str`], never input).
fn lit(state: ChunkState) -> String {
    format!("'{}'", state.as_str())
}

/// What one claim attempt found.
enum Attempt {
    Took(Box<(Chunk, PathBuf)>),
    Empty,
    /// Another claimer took the chunk between the look and the take
    /// (SQLite, which has no row locks): look again.
    Lost,
}

/// How many times a claim on SQLite looks again after losing a race.
const RACES: usize = 16;

/// Queries on `chunk_plans` and `chunks`.
#[derive(Clone)]
pub struct ChunkStore {
    db: Db,
}

impl ChunkStore {
    pub fn new(db: Db) -> Self {
        ChunkStore { db }
    }

    /// Stores `job`'s plan and its chunks (idx = place in `chunks`) in one
    /// transaction, replacing any earlier plan of that job.
    pub async fn plan(&self, plan: &ChunkPlan, chunks: &[NewChunk]) -> Result<(), StoreError> {
        let job = plan.job.to_string();
        let mut tx = self.db.pool().begin().await?;
        forget_in(&mut tx, &job).await?;
        sqlx::query(
            "INSERT INTO chunk_plans (job_guid, source_size, source_mtime_ns, recipe, spec, \
             work_dir, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&job)
        .bind(plan.source_size)
        .bind(plan.source_mtime_ns)
        .bind(&plan.recipe)
        .bind(&plan.spec)
        .bind(plan.work_dir.to_string_lossy().into_owned())
        .bind(plan.created_at)
        .execute(&mut *tx)
        .await?;
        for (idx, chunk) in (0i64..).zip(chunks) {
            sqlx::query(
                "INSERT INTO chunks (job_guid, idx, kind, start_us, end_us, frames, \
                 first_segment, weight) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&job)
            .bind(idx)
            .bind(chunk.kind.as_str())
            .bind(chunk.start_us)
            .bind(chunk.end_us)
            .bind(chunk.frames)
            .bind(chunk.first_segment)
            .bind(chunk.weight)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `job`'s plan, if it has one.
    pub async fn plan_of(&self, job: Guid) -> Result<Option<ChunkPlan>, StoreError> {
        let row: Option<(i64, i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT source_size, source_mtime_ns, recipe, spec, work_dir, created_at \
             FROM chunk_plans WHERE job_guid = $1",
        )
        .bind(job.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(
            |(source_size, source_mtime_ns, recipe, spec, work_dir, created_at)| ChunkPlan {
                job,
                source_size,
                source_mtime_ns,
                recipe,
                spec,
                work_dir: PathBuf::from(work_dir),
                created_at,
            },
        ))
    }

    /// `job`'s chunks, by index.
    pub async fn list(&self, job: Guid) -> Result<Vec<Chunk>, StoreError> {
        let rows: Vec<ChunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chunks WHERE job_guid = $1 ORDER BY idx"
        )))
        .bind(job.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(Chunk::try_from).collect()
    }

    /// Deletes `job`'s plan and chunks.
    pub async fn forget(&self, job: Guid) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        forget_in(&mut tx, &job.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes `job`'s plan but keeps its chunks' rows, as the history of
    /// a finished job (which node encoded what, in how many runs); a later
    /// run plans afresh, replacing them.
    pub async fn finish(&self, job: Guid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM chunk_plans WHERE job_guid = $1")
            .bind(job.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Takes the first queued chunk of a STARTED job (of `only`, if given)
    /// and leases it to `node` for `lease_ms`; with it, the job's source.
    ///
    /// Order: the job's priority (highest first), then its place in the
    /// queue (queued time, then arrival), then sound before picture, then
    /// index. Jobs whose files `can_see` refuses are passed over, at most
    /// [`CANDIDATES`] of them. Claimers racing never get the same chunk: on
    /// PostgreSQL the loser skips the locked row, on SQLite it looks again.
    pub async fn claim(
        &self,
        node: &str,
        lease_ms: i64,
        only: Option<Guid>,
        can_see: &(dyn Fn(&Path) -> bool + Sync),
    ) -> Result<Option<(Chunk, ChunkLease, PathBuf)>, StoreError> {
        for _ in 0..RACES {
            let attempt = match self.db.backend() {
                Backend::Postgres => {
                    let mut tx = self.db.pool().begin().await?;
                    let attempt = self.take(&mut tx, node, lease_ms, only, can_see).await?;
                    tx.commit().await?;
                    attempt
                }
                Backend::Sqlite => {
                    let mut conn = self.db.pool().acquire().await?;
                    self.take(&mut conn, node, lease_ms, only, can_see).await?
                }
            };
            match attempt {
                Attempt::Took(took) => {
                    let (chunk, source) = *took;
                    let lease = ChunkLease {
                        job: chunk.job,
                        idx: chunk.idx,
                        node: node.to_owned(),
                        attempt: chunk.attempts,
                    };
                    return Ok(Some((chunk, lease, source)));
                }
                Attempt::Empty => return Ok(None),
                Attempt::Lost => continue,
            }
        }
        Ok(None)
    }

    /// One claim attempt on `conn` (a transaction on PostgreSQL, whose row
    /// lock holds the chunk until the take commits).
    async fn take(
        &self,
        conn: &mut sqlx::AnyConnection,
        node: &str,
        lease_ms: i64,
        only: Option<Guid>,
        can_see: &(dyn Fn(&Path) -> bool + Sync),
    ) -> Result<Attempt, StoreError> {
        let Some((job, idx, source)) = self.head_visible(conn, only, can_see).await? else {
            return Ok(Attempt::Empty);
        };
        let row: Option<ChunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE chunks SET state = {}, node = $1, attempts = attempts + 1, progress = 0, \
             lease_expires = {} + $2 WHERE job_guid = $3 AND idx = $4 AND state = {} \
             RETURNING {COLUMNS}",
            lit(ChunkState::Running),
            db_now(self.db.backend()),
            lit(ChunkState::Queued)
        )))
        .bind(node)
        .bind(lease_ms)
        .bind(job)
        .bind(idx)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            Some(row) => Attempt::Took(Box::new((row.try_into()?, source))),
            None => Attempt::Lost,
        })
    }

    /// The first claimable chunk (`job_guid`, `idx`) and its job's source,
    /// passing over jobs whose files `can_see` refuses; locked on PostgreSQL.
    async fn head_visible(
        &self,
        conn: &mut sqlx::AnyConnection,
        only: Option<Guid>,
        can_see: &(dyn Fn(&Path) -> bool + Sync),
    ) -> Result<Option<(String, i64, PathBuf)>, StoreError> {
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE OF c SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // GUIDs are parsed values, never raw input: safe to inline.
        let mut within = match only {
            Some(job) => format!(" AND c.job_guid = '{job}'"),
            None => String::new(),
        };
        for _ in 0..CANDIDATES {
            let head: Option<(String, i64, String, Option<String>)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT c.job_guid, c.idx, j.source_path, j.audio_path \
                     FROM chunks c JOIN jobs j ON j.guid = c.job_guid \
                     WHERE c.state = {} AND j.status = '{}'{within} \
                     ORDER BY j.priority DESC, j.queued_at, j.seq, \
                     CASE WHEN c.kind = '{}' THEN 0 ELSE 1 END, c.idx LIMIT 1{lock}",
                    lit(ChunkState::Queued),
                    JobStatus::Started.as_str(),
                    ChunkKind::Audio.as_str()
                )))
                .fetch_optional(&mut *conn)
                .await?;
            let Some((job, idx, source, audio)) = head else {
                return Ok(None);
            };
            let source = PathBuf::from(source);
            let files = std::iter::once(source.clone()).chain(audio.map(PathBuf::from));
            if files.into_iter().all(|file| can_see(&file)) {
                return Ok(Some((job, idx, source)));
            }
            // Read back from the table: a GUID in canonical form.
            within.push_str(&format!(" AND c.job_guid <> '{}'", READ.guid(&job)?));
        }
        Ok(None)
    }

    /// A write by the holder of `lease`: `set` (SQL assignments; `bind`
    /// binds `$5` on) applies only while the lease holds. Returns whether
    /// it did.
    async fn fenced(
        &self,
        lease: &ChunkLease,
        set: &str,
        bind: impl for<'q> FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chunks SET {set} WHERE job_guid = $1 AND idx = $2 AND state = {} \
             AND node = $3 AND attempts = $4",
            lit(ChunkState::Running)
        )))
        .bind(lease.job.to_string())
        .bind(i64::from(lease.idx))
        .bind(lease.node.clone())
        .bind(lease.attempt);
        let done = bind(query).execute(self.db.pool()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `node` holds a live lease on a chunk of `job` (on the chunk
    /// `idx` at `attempt`, when given): what a node fetching over the farm's
    /// file service may read and write.
    pub async fn holds(
        &self,
        node: &str,
        job: Guid,
        chunk: Option<(u32, i64)>,
    ) -> Result<bool, StoreError> {
        let (idx, attempt) = chunk.map_or((-1, -1), |(i, a)| (i64::from(i), a));
        let sql = format!(
            "SELECT COUNT(*) FROM chunks WHERE job_guid = $1 AND node = $2 AND state = {} \
             AND lease_expires >= {} AND ($3 < 0 OR (idx = $3 AND attempts = $4))",
            lit(ChunkState::Running),
            db_now(self.db.backend())
        );
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(job.to_string())
            .bind(node.to_owned())
            .bind(idx)
            .bind(attempt)
            .fetch_one(self.db.pool())
            .await?;
        Ok(count > 0)
    }

    /// Counts an encoder run started on the chunk.
    pub async fn started_run(&self, lease: &ChunkLease) -> Result<bool, StoreError> {
        let set = "runs = runs + 1, fps = NULL, speed = NULL";
        self.fenced(lease, set, |q| q).await
    }

    /// Raises the chunk's progress (percent; never lowered) and records
    /// its encoder's rate, when known.
    pub async fn raise_progress(
        &self,
        lease: &ChunkLease,
        percent: u32,
        rate: Option<ChunkRate>,
    ) -> Result<bool, StoreError> {
        let progress = "progress = CASE WHEN progress < $5 THEN $5 ELSE progress END";
        let percent = i64::from(percent.min(100));
        match rate {
            Some(rate) => {
                let set = format!("{progress}, fps = $6, speed = $7");
                self.fenced(lease, &set, |q| {
                    q.bind(percent).bind(rate.fps).bind(rate.speed)
                })
                .await
            }
            None => self.fenced(lease, progress, |q| q.bind(percent)).await,
        }
    }

    /// The summed rate of `job`'s running video chunks that reported one:
    /// the job's own rate when it is encoded in chunks across the farm
    /// (the sound chunk, much faster than the picture, is left out).
    /// `None` when none has.
    pub async fn rate(&self, job: Guid) -> Result<Option<ChunkRate>, StoreError> {
        let (fps, speed, reported): (f64, f64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(SUM(fps), 0.0), COALESCE(SUM(speed), 0.0), COUNT(fps) \
             FROM chunks WHERE job_guid = $1 AND state = {} AND kind = '{}'",
            lit(ChunkState::Running),
            ChunkKind::Video.as_str()
        )))
        .bind(job.to_string())
        .fetch_one(self.db.pool())
        .await?;
        Ok((reported > 0).then_some(ChunkRate { fps, speed }))
    }

    /// The chunk is written (to `output`): done at 100 %, lease ended.
    pub async fn deliver(&self, lease: &ChunkLease, output: &str) -> Result<bool, StoreError> {
        let set = format!(
            "state = {}, progress = 100, output = $5, done_at = {}, lease_expires = NULL",
            lit(ChunkState::Done),
            db_now(self.db.backend())
        );
        let output = output.to_owned();
        self.fenced(lease, &set, |q| q.bind(output)).await
    }

    /// Gives the chunk back untouched (a stop or a shutdown, not a loss):
    /// queued again, from the start.
    pub async fn release(&self, lease: &ChunkLease) -> Result<bool, StoreError> {
        let set = format!(
            "state = {}, node = NULL, lease_expires = NULL, progress = 0",
            lit(ChunkState::Queued)
        );
        self.fenced(lease, &set, |q| q).await
    }

    /// The chunk cannot be encoded, for `reason`.
    pub async fn fail(&self, lease: &ChunkLease, reason: &str) -> Result<bool, StoreError> {
        let set = format!(
            "state = {}, failure = $5, lease_expires = NULL",
            lit(ChunkState::Failed)
        );
        let reason = reason.to_owned();
        self.fenced(lease, &set, |q| q.bind(reason)).await
    }

    /// Extends by `lease_ms` the leases `node` still holds among `held`
    /// (job, idx), unless they already ran out; returns them with their
    /// job's status (`None`: the job is gone). A chunk of `held` not
    /// returned is lost to its worker.
    pub async fn renew(
        &self,
        node: &str,
        held: &[(Guid, u32)],
        lease_ms: i64,
    ) -> Result<Vec<(ChunkLease, Option<JobStatus>)>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        // GUIDs are parsed values and indexes numbers: safe to inline.
        let listed = held
            .iter()
            .map(|(job, idx)| format!("(job_guid = '{job}' AND idx = {idx})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let now = db_now(self.db.backend());
        let rows: Vec<(String, i64, i64, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE chunks SET lease_expires = {now} + $2 \
                 WHERE node = $1 AND state = {} AND lease_expires >= {now} AND ({listed}) \
                 RETURNING job_guid, idx, attempts, \
                 (SELECT j.status FROM jobs j WHERE j.guid = chunks.job_guid)",
                lit(ChunkState::Running)
            )))
            .bind(node)
            .bind(lease_ms)
            .fetch_all(self.db.pool())
            .await?;
        rows.into_iter()
            .map(|(job, idx, attempt, status)| {
                let lease = ChunkLease {
                    job: READ.guid(&job)?,
                    idx: READ.unsigned(idx)?,
                    node: node.to_owned(),
                    attempt,
                };
                Ok((lease, status.map(|s| READ.status(&s)).transpose()?))
            })
            .collect()
    }

    /// Puts right the running chunks `scope` names, in one transaction
    /// (see [`ChunkRepair`]). Returns each chunk moved and where to.
    pub async fn repair(
        &self,
        scope: ChunkRepair<'_>,
    ) -> Result<Vec<(Guid, u32, ChunkState)>, StoreError> {
        let requeue = format!(
            "state = {}, node = NULL, progress = 0",
            lit(ChunkState::Queued)
        );
        let expired = format!("lease_expires < {}", db_now(self.db.backend()));
        // $1: the node (HeldBy) or the failure's text; $2: max_losses.
        let (param, max_losses, fixes) = match scope {
            ChunkRepair::HeldBy(node) => (
                node.to_owned(),
                i64::MAX,
                vec![(ChunkState::Queued, requeue, "node = $1".to_owned())],
            ),
            ChunkRepair::Expired { max_losses } => (
                format!("its encoder node stopped answering {max_losses} times; the last: "),
                i64::from(max_losses),
                vec![
                    (
                        ChunkState::Failed,
                        format!(
                            "state = {}, lease_losses = lease_losses + 1, \
                             failure = $1 || COALESCE(node, 'unknown')",
                            lit(ChunkState::Failed)
                        ),
                        format!("{expired} AND lease_losses + 1 >= $2"),
                    ),
                    // A lease that runs out between the two statements
                    // waits for the next sweep rather than skip its end.
                    (
                        ChunkState::Queued,
                        format!("{requeue}, lease_losses = lease_losses + 1"),
                        format!("{expired} AND lease_losses + 1 < $2"),
                    ),
                ],
            ),
        };
        let mut tx = self.db.pool().begin().await?;
        let mut moved = Vec::new();
        for (to, set, only) in fixes {
            let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE chunks SET {set}, lease_expires = NULL \
                 WHERE state = {} AND {only} RETURNING job_guid, idx",
                lit(ChunkState::Running)
            )))
            .bind(&param)
            .bind(max_losses)
            .fetch_all(&mut *tx)
            .await?;
            for (job, idx) in rows {
                moved.push((READ.guid(&job)?, READ.unsigned(idx)?, to));
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Queues `job`'s failed chunks again with a clean record (the job is
    /// being requeued). Returns how many.
    pub async fn requeue_failed(&self, job: Guid) -> Result<u64, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chunks SET state = {}, lease_losses = 0, failure = '', progress = 0, \
             node = NULL, lease_expires = NULL WHERE job_guid = $1 AND state = {}",
            lit(ChunkState::Queued),
            lit(ChunkState::Failed)
        )))
        .bind(job.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// `job`'s chunks summed up (all zero when it has none).
    pub async fn totals(&self, job: Guid) -> Result<ChunkTotals, StoreError> {
        // SUM is NUMERIC on PostgreSQL: cast back to an integer both read.
        let sum = |what: &str| format!("CAST(COALESCE(SUM({what}), 0) AS BIGINT)");
        let count = |state: ChunkState| {
            sum(&format!(
                "CASE WHEN state = {} THEN 1 ELSE 0 END",
                lit(state)
            ))
        };
        let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {}, {} / 100, {}, {}, {}, {} FROM chunks WHERE job_guid = $1",
            sum("weight"),
            sum("weight * progress"),
            count(ChunkState::Queued),
            count(ChunkState::Running),
            count(ChunkState::Done),
            count(ChunkState::Failed)
        )))
        .bind(job.to_string())
        .fetch_one(self.db.pool())
        .await?;
        let (weight, worked, queued, running, done, failed) = row;
        Ok(ChunkTotals {
            weight,
            worked,
            queued: READ.unsigned(queued)?,
            running: READ.unsigned(running)?,
            done: READ.unsigned(done)?,
            failed: READ.unsigned(failed)?,
        })
    }
}

/// Deletes a job's chunks and plan inside `tx`.
async fn forget_in(tx: &mut sqlx::AnyConnection, job: &str) -> Result<(), StoreError> {
    for table in ["chunks", "chunk_plans"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE job_guid = $1"
        )))
        .bind(job)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
