//! What each destination of a job wrote: its output (a file, or an HLS
//! ladder's master playlist, named while it is still encoded) and the
//! copies made of it, in the `destinations` table.

use std::path::{Path, PathBuf};

use super::lease::{Repair, bind_fence, fence_sql, scope_node, scope_sql};
use super::{JobStore, Lease, Placed, json, path_text};
use crate::carbon::{Guid, JobStatus};
use crate::store::{RowReader, StoreError, status_literals};

/// Writes each destination's output and copies, in order.
pub(super) async fn write_outputs(
    tx: &mut sqlx::AnyConnection,
    guid: Guid,
    outputs: &[Placed],
) -> Result<(), StoreError> {
    for (idx, placed) in outputs.iter().enumerate() {
        let copies: Vec<String> = placed.copies.iter().map(|p| path_text(p)).collect();
        sqlx::query(
            "UPDATE destinations SET output_path = $1, copied = $2 WHERE job_guid = $3 AND idx = $4",
        )
        .bind(path_text(&placed.output))
        .bind(json(&copies))
        .bind(guid.to_string())
        .bind(idx as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Clears every destination's output and copies.
pub(super) async fn forget_outputs(
    tx: &mut sqlx::AnyConnection,
    guid: Guid,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE destinations SET output_path = NULL, copied = '[]' WHERE job_guid = $1")
        .bind(guid.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// Whether `lease` still holds its job, inside `tx` (the row is written
/// again, so a sweeper cannot take it until `tx` ends).
async fn still_held(tx: &mut sqlx::AnyConnection, lease: &Lease) -> Result<bool, StoreError> {
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET attempts = attempts WHERE guid = $1{}",
        fence_sql(Some(lease), 2)
    )))
    .bind(lease.guid.to_string());
    let done = bind_fence(query, Some(lease)).execute(&mut *tx).await?;
    Ok(done.rows_affected() == 1)
}

impl JobStore {
    /// Records exactly the outputs a job placed before it failed or was
    /// stopped (the first destinations'); any other output recorded while
    /// it ran (a ladder's folder, since removed) is forgotten.
    /// Refused (`false`, nothing written) once `lease` is lost.
    pub async fn record_outputs(
        &self,
        lease: &Lease,
        outputs: &[Placed],
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        if !still_held(&mut tx, lease).await? {
            return Ok(false);
        }
        forget_outputs(&mut tx, lease.guid).await?;
        write_outputs(&mut tx, lease.guid, outputs).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records one destination's output while the job still runs (an HLS
    /// ladder's master playlist, named as soon as its folder is claimed so
    /// `TargetFiles` name it while it encodes).
    /// Refused (`false`) once `lease` is lost.
    pub async fn record_output(
        &self,
        lease: &Lease,
        index: usize,
        output: &Path,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        if !still_held(&mut tx, lease).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE destinations SET output_path = $1 WHERE job_guid = $2 AND idx = $3")
            .bind(path_text(output))
            .bind(lease.guid.to_string())
            .bind(index as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The outputs recorded for the held jobs `scope` names, which
    /// [`JobStore::repair`] is about to put right: only a ladder being
    /// encoded has one. `(job, output)` pairs.
    pub async fn interrupted_outputs(
        &self,
        scope: Repair<'_>,
    ) -> Result<Vec<(Guid, PathBuf)>, StoreError> {
        use JobStatus::*;
        let within = scope_sql(scope, self.db.backend(), "j.", 1);
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT d.job_guid, d.output_path FROM destinations d \
             JOIN jobs j ON j.guid = d.job_guid \
             WHERE d.output_path IS NOT NULL AND j.status IN ({}) AND {within} \
             ORDER BY j.seq, d.idx",
            status_literals(&[Starting, Started, Paused, Stopping])
        )))
        .bind(scope_node(scope))
        .fetch_all(self.db.pool())
        .await?;
        let read = RowReader {
            table: "destinations",
        };
        rows.into_iter()
            .map(|(guid, path)| Ok((read.guid(&guid)?, PathBuf::from(path))))
            .collect()
    }

    /// Forgets every output recorded for `guid` (its ladder folder was
    /// removed: nothing to name).
    pub async fn forget_outputs(&self, guid: Guid) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        forget_outputs(&mut tx, guid).await?;
        tx.commit().await?;
        Ok(())
    }
}
