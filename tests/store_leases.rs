//! Claims, leases and fencing, on both engines: what keeps a farm's job
//! from running twice or being lost. A lease of a few milliseconds stands
//! for a node that died (its lease runs out without renewal).

use std::path::PathBuf;
use std::time::Duration;

use videoshare::carbon::JobStatus;
use videoshare::encoder::job::allowed_from;
use videoshare::store::jobs::{Change, Lease, Placed, Repair};
use videoshare::store::testing::TestDb;
use videoshare::store::{Backend, DatabaseUrl, Job, JobStore, NewJob, NodeInfo, NodeStore};

const LONG: i64 = 60_000;
const GONE: Duration = Duration::from_millis(20);

fn new_job() -> NewJob {
    videoshare::store::testing::new_job("", 100)
}

async fn claim(jobs: &JobStore, node: &str, lease_ms: i64) -> (Job, Lease) {
    jobs.claim(node, lease_ms, allowed_from)
        .await
        .expect("claim")
        .expect("a queued job")
}

/// Lets `lease`'s node die: its lease runs out, a sweep puts the job back.
async fn expire(jobs: &JobStore) -> Vec<videoshare::store::jobs::Swept> {
    tokio::time::sleep(GONE).await;
    jobs.repair(Repair::Expired { max_losses: 3 }, "stopped", allowed_from)
        .await
        .expect("sweep")
}

videoshare::store_test!(a_stale_lease_writes_nothing, |db| async move {
    let jobs = JobStore::new(db);
    let job = jobs.insert(new_job()).await.expect("insert");
    let (_, dead) = claim(&jobs, "node-a", 1).await;
    let swept = expire(&jobs).await;
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].node.as_deref(), Some("node-a"));
    assert_eq!(swept[0].status, JobStatus::Queued);
    let (again, alive) = claim(&jobs, "node-b", LONG).await;
    assert_eq!((again.guid, again.attempts), (job.guid, 2));
    // Node A wakes up and carries on as if it still held the job.
    let (from, to) = ([JobStatus::Starting], JobStatus::Started);
    assert!(
        !jobs
            .transition_held(&dead, &from, to, Change::default())
            .await
            .expect("write")
    );
    assert!(
        jobs.transition_held(&alive, &from, to, Change::default())
            .await
            .expect("write")
    );
    jobs.raise_progress(&dead, 90).await.expect("write");
    jobs.raise_progress(&alive, 10).await.expect("write");
    let output = [Placed {
        output: PathBuf::from("/srv/a.mp4"),
        copies: Vec::new(),
    }];
    let done = allowed_from(JobStatus::Completed);
    assert!(!jobs.complete(&dead, done, &output).await.expect("write"));
    assert!(
        !jobs
            .record_output(&dead, 0, &output[0].output)
            .await
            .expect("write")
    );
    assert!(!jobs.renew_one(&dead, LONG).await.expect("renew"));
    assert!(jobs.renew_one(&alive, LONG).await.expect("renew"));
    let now = jobs.get(job.guid).await.expect("get").expect("row");
    assert_eq!((now.status, now.progress), (JobStatus::Started, 10));
    assert_eq!(now.node.as_deref(), Some("node-b"));
    assert!(jobs.complete(&alive, done, &output).await.expect("write"));
    // Finished: nothing left for a sweep to take.
    assert_eq!(expire(&jobs).await, []);
});

videoshare::store_test!(
    a_job_that_kills_three_nodes_ends_in_error,
    |db| async move {
        let jobs = JobStore::new(db);
        let job = jobs.insert(new_job()).await.expect("insert");
        for node in ["node-a", "node-b"] {
            claim(&jobs, node, 1).await;
            let swept = expire(&jobs).await;
            assert_eq!(
                swept[0].status,
                JobStatus::Queued,
                "{node}: back in the queue"
            );
        }
        claim(&jobs, "node-c", 1).await;
        let swept = expire(&jobs).await;
        assert_eq!(swept[0].status, JobStatus::Error);
        let failed = jobs.get(job.guid).await.expect("get").expect("row");
        assert_eq!(failed.status, JobStatus::Error);
        assert_eq!(failed.attempts, 3);
        assert!(
            failed.failure.contains("stopped answering 3 times")
                && failed.failure.contains("node-c"),
            "{}",
            failed.failure
        );
    }
);

videoshare::store_test!(held_pauses_and_stops_are_settled, |db| async move {
    let jobs = JobStore::new(db);
    let paused = jobs.insert(new_job()).await.expect("insert");
    let stopping = jobs.insert(new_job()).await.expect("insert");
    let renewed = jobs.insert(new_job()).await.expect("insert");
    let (_, a) = claim(&jobs, "node-a", 1).await;
    let (_, b) = claim(&jobs, "node-a", 1).await;
    // Still renewed by its node: not swept (a 1 ms lease could run out
    // before the renewal below).
    let (_, kept) = claim(&jobs, "node-a", LONG).await;
    let (from, to) = ([JobStatus::Starting], JobStatus::Paused);
    assert!(
        jobs.transition(a.guid, &from, to, Change::default())
            .await
            .expect("pause")
    );
    let to = JobStatus::Stopping;
    assert!(
        jobs.transition(b.guid, &from, to, Change::default())
            .await
            .expect("stop")
    );
    // The node renews only the job it still runs.
    let leases = jobs
        .renew("node-a", &[kept.guid], LONG)
        .await
        .expect("renew");
    assert_eq!(leases, [(kept.guid, 1, JobStatus::Starting)]);
    let swept = expire(&jobs).await;
    assert_eq!(swept.len(), 2);
    let paused = jobs.get(paused.guid).await.expect("get").expect("row");
    assert_eq!(paused.status, JobStatus::Paused);
    assert_eq!(paused.start_time, None, "starts over when resumed");
    let stopped = jobs.get(stopping.guid).await.expect("get").expect("row");
    assert_eq!(stopped.status, JobStatus::Stopped);
    let running = jobs.get(renewed.guid).await.expect("get").expect("row");
    assert_eq!(running.status, JobStatus::Starting);
});

videoshare::store_test!(a_node_name_is_held_by_one_live_process, |db| async move {
    let nodes = NodeStore::new(db);
    let info = |instance: &str| NodeInfo {
        name: "node-a".into(),
        instance: instance.into(),
        address: "127.0.0.1:1547".into(),
        slots: 2,
        version: "1.0.0".into(),
        encoders: vec!["aac".into(), "libx264".into()],
    };
    assert!(nodes.register(&info("one"), LONG).await.expect("register"));
    assert!(
        !nodes.register(&info("two"), LONG).await.expect("register"),
        "the first process is alive"
    );
    assert!(nodes.heartbeat("node-a", "one").await.expect("heartbeat"));
    nodes.leave("node-a", "one").await.expect("leave");
    assert!(
        nodes.register(&info("two"), LONG).await.expect("register"),
        "the name is free once its process left"
    );
    assert!(
        !nodes.heartbeat("node-a", "one").await.expect("heartbeat"),
        "the old process learns its name was taken"
    );
    assert!(nodes.set_enabled("node-a", false).await.expect("disable"));
    let listed = nodes.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].slots, 2);
    assert!(!listed[0].enabled);
    assert_eq!(listed[0].encoders, ["aac", "libx264"]);
    assert_eq!(listed[0].state, "up");
});

/// Two nodes (two pools) race for each of 100 jobs: each is claimed once.
async fn race(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let url = match backend {
        Backend::Sqlite => {
            DatabaseUrl::parse(&test_db.url(), std::path::Path::new("/")).expect("url")
        }
        Backend::Postgres => DatabaseUrl::Postgres(test_db.url()),
    };
    let a = JobStore::new(test_db.db());
    let b = JobStore::new(
        videoshare::store::open_url(&url)
            .await
            .expect("second pool"),
    );
    for round in 0..100 {
        let job = a.insert(new_job()).await.expect("insert");
        let (got_a, got_b) = tokio::join!(
            a.claim("node-a", LONG, allowed_from),
            b.claim("node-b", LONG, allowed_from)
        );
        let winners: Vec<Job> = [got_a, got_b]
            .into_iter()
            .filter_map(|claimed| claimed.expect("claim").map(|(job, _)| job))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].guid, job.guid);
        assert_eq!(winners[0].attempts, 1);
    }
}

#[tokio::test]
async fn two_nodes_racing_for_a_job_run_it_once_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_a_job_run_it_once_postgres() {
    race(Backend::Postgres).await;
}
