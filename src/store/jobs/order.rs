//! The order the queue is served in, as SQL: one text that claiming the
//! next job and reporting queue positions share.

use crate::carbon::JobStatus;
use crate::store::status_literals;

/// Statuses in which a started job holds an encode slot (a paused encode
/// keeps its slot).
const HOLDING_A_SLOT: [JobStatus; 7] = [
    JobStatus::Preparing,
    JobStatus::Starting,
    JobStatus::Started,
    JobStatus::Pausing,
    JobStatus::Paused,
    JobStatus::Resuming,
    JobStatus::Stopping,
];

/// The queue in the order its jobs start, as the common table `queue`
/// (`seq`, `guid`, `place`; place 1 starts next): the one order that
/// [`JobStore::claim`](super::JobStore::claim) takes from and the queue positions report.
///
/// Highest priority first; within a priority, owners (the job's `User`)
/// take turns: each owner's oldest job comes before anyone's second
/// (`turn`), and among owners the one with the fewest encodes running goes
/// first, then the one served longest ago (never served: first), then the
/// job longest in the queue. So one owner's fifty jobs do not hold up
/// another owner's one: with one slot it starts next.
pub(super) static QUEUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let queued = JobStatus::Queued.as_str();
    let holding = status_literals(&HOLDING_A_SLOT);
    format!(
        "waiting AS (\
           SELECT seq, guid, \"user\", priority, queued_at, \
             ROW_NUMBER() OVER (PARTITION BY \"user\", priority ORDER BY queued_at, seq) AS turn \
           FROM jobs WHERE status = '{queued}'), \
         owners AS (\
           SELECT o.\"user\", \
             (SELECT COUNT(*) FROM jobs a WHERE a.\"user\" = o.\"user\" AND a.status IN ({holding}) \
                AND a.start_time IS NOT NULL) AS running, \
             (SELECT MAX(s.start_time) FROM jobs s WHERE s.\"user\" = o.\"user\") AS last_start \
           FROM (SELECT DISTINCT \"user\" FROM waiting) o), \
         queue AS (\
           SELECT w.seq, w.guid, ROW_NUMBER() OVER (ORDER BY w.priority DESC, w.turn, \
             o.running, o.last_start NULLS FIRST, w.queued_at, w.seq) AS place \
           FROM waiting w JOIN owners o ON o.\"user\" = w.\"user\")"
    )
});

#[cfg(test)]
mod tests {
    use super::super::JobStore;

    crate::store_test!(owners_take_turns_within_a_priority, |db| async move {
        let jobs = JobStore::new(db);
        let mut queued = Vec::new();
        for (user, priority) in [
            ("ann", 100),
            ("ann", 100),
            ("ann", 100),
            ("bob", 100),
            ("bob", 100),
            ("cy", 50),
            ("cy", 200),
        ] {
            queued.push(
                jobs.insert(crate::store::testing::new_job(user, priority))
                    .await
                    .expect("insert")
                    .guid,
            );
        }
        let [a1, a2, a3, b1, b2, c_low, c_high] = queued[..] else {
            panic!("seven jobs");
        };
        let expected = [c_high, a1, b1, a2, b2, a3, c_low];
        let positions = jobs.queue_positions().await.expect("positions");
        for (place, guid) in (1u32..).zip(expected) {
            assert_eq!(positions.get(&guid), Some(&place));
            assert_eq!(jobs.queue_position(guid).await.expect("one"), Some(place));
        }
        // Claiming follows the positions: after Cy's urgent job, Ann's
        // first; Bob's next, since Ann was just served.
        for guid in [c_high, a1, b1] {
            let claimed = jobs
                .claim("node", 10_000, crate::encoder::job::allowed_from)
                .await
                .expect("claim")
                .map(|(j, _)| j.guid);
            assert_eq!(claimed, Some(guid));
        }
    });
}
