//! Chunked encoding's store, on both engines: plans and chunks, claims of
//! chunks of STARTED jobs only, leases and fencing as for jobs, repairs,
//! totals, PostgreSQL's wake-ups. A lease of a millisecond stands for a
//! node that died. (The nodes' tokens are tested in `store::node_tokens`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use videoshare::carbon::{Guid, JobStatus};
use videoshare::encoder::job::allowed_from;
use videoshare::store::jobs::Change;
use videoshare::store::notify::Event;
use videoshare::store::testing::TestDb;
use videoshare::store::{
    Backend, ChunkKind, ChunkLease, ChunkPlan, ChunkRate, ChunkRepair, ChunkState, ChunkStore,
    ChunkTotals, DatabaseUrl, Db, JobStore, NewChunk,
};

const LONG: i64 = 60_000;
const GONE: Duration = Duration::from_millis(20);

/// A plan of the sound and three picture chunks (weights 10, 20, 30, 40).
const SOUND_AND_THREE_PICTURES: [ChunkKind; 4] = [
    ChunkKind::Audio,
    ChunkKind::Video,
    ChunkKind::Video,
    ChunkKind::Video,
];

fn everything(_: &Path) -> bool {
    true
}

fn chunk(kind: ChunkKind, start_s: i64, weight: i64) -> NewChunk {
    NewChunk {
        kind,
        start_us: start_s * 1_000_000,
        end_us: (start_s + 10) * 1_000_000,
        frames: (kind == ChunkKind::Video).then_some(250),
        first_segment: start_s / 2,
        weight,
    }
}

fn plan_for(job: Guid) -> ChunkPlan {
    ChunkPlan {
        job,
        source_size: 1_234_567,
        source_mtime_ns: 1_700_000_000_123_456_789,
        recipe: "hls-ladder".into(),
        spec: r#"{"rungs":[1080,720]}"#.into(),
        work_dir: PathBuf::from("/srv/work/chunks"),
        created_at: 42,
    }
}

/// A job of `priority` reading `source`, queued (not claimed).
async fn queued_job(jobs: &JobStore, priority: u32, source: &str) -> Guid {
    let mut new = videoshare::store::testing::new_job("", priority);
    new.source_path = PathBuf::from(source);
    jobs.insert(new).await.expect("insert").guid
}

/// Claims the head of the job queue and moves it to STARTED, as the node
/// that splits a job does.
async fn start_next(jobs: &JobStore) -> Guid {
    let (job, lease) = jobs
        .claim("planner", LONG, allowed_from)
        .await
        .expect("claim")
        .expect("a queued job");
    let (from, to) = ([JobStatus::Starting], JobStatus::Started);
    assert!(
        jobs.transition_held(&lease, &from, to, Change::default())
            .await
            .expect("start")
    );
    job.guid
}

/// A STARTED job with a plan of `kinds` (weights 10, 20, 30, …).
async fn started_with(jobs: &JobStore, chunks: &ChunkStore, kinds: &[ChunkKind]) -> Guid {
    queued_job(jobs, 100, "/srv/clip.mp4").await;
    let job = start_next(jobs).await;
    let planned: Vec<NewChunk> = (0i64..)
        .zip(kinds)
        .map(|(i, kind)| chunk(*kind, i * 10, (i + 1) * 10))
        .collect();
    chunks.plan(&plan_for(job), &planned).await.expect("plan");
    job
}

async fn claim(chunks: &ChunkStore, node: &str, lease_ms: i64) -> Option<(Guid, u32, ChunkLease)> {
    chunks
        .claim(node, lease_ms, None, &everything)
        .await
        .expect("claim")
        .map(|(chunk, lease, _)| (chunk.job, chunk.idx, lease))
}

async fn state_of(chunks: &ChunkStore, job: Guid, idx: u32) -> videoshare::store::Chunk {
    chunks
        .list(job)
        .await
        .expect("list")
        .into_iter()
        .find(|c| c.idx == idx)
        .expect("the chunk")
}

fn stores(db: Db) -> (JobStore, ChunkStore) {
    (JobStore::new(db.clone()), ChunkStore::new(db))
}

videoshare::store_test!(a_plan_is_stored_replaced_and_forgotten, |db| async move {
    let (jobs, chunks) = stores(db);
    let job = queued_job(&jobs, 100, "/srv/clip.mp4").await;
    let first = [
        chunk(ChunkKind::Audio, 0, 5),
        chunk(ChunkKind::Video, 0, 50),
    ];
    chunks.plan(&plan_for(job), &first).await.expect("plan");
    assert_eq!(
        chunks.plan_of(job).await.expect("plan_of"),
        Some(plan_for(job))
    );
    let listed = chunks.list(job).await.expect("list");
    assert_eq!(listed.len(), 2);
    // Each chunk comes back as it was planned, at its place.
    for (n, (stored, planned)) in listed.iter().zip(&first).enumerate() {
        assert_eq!((stored.idx as usize, &stored.planned), (n, planned));
    }
    let video = &listed[1];
    assert_eq!(
        (video.state, video.progress, video.attempts),
        (ChunkState::Queued, 0, 0)
    );
    assert_eq!(
        (video.node.as_deref(), video.output.as_deref()),
        (None, None)
    );
    // A new plan replaces the old one whole.
    let mut replanned = plan_for(job);
    replanned.recipe = "mp4".into();
    let second = [
        chunk(ChunkKind::Video, 0, 1),
        chunk(ChunkKind::Video, 10, 1),
        chunk(ChunkKind::Video, 20, 1),
    ];
    chunks.plan(&replanned, &second).await.expect("replan");
    assert_eq!(
        chunks
            .plan_of(job)
            .await
            .expect("plan_of")
            .expect("plan")
            .recipe,
        "mp4"
    );
    let idxs: Vec<u32> = chunks
        .list(job)
        .await
        .expect("list")
        .iter()
        .map(|c| c.idx)
        .collect();
    assert_eq!(idxs, [0, 1, 2]);
    chunks.forget(job).await.expect("forget");
    assert_eq!(chunks.plan_of(job).await.expect("plan_of"), None);
    assert_eq!(chunks.list(job).await.expect("list"), []);
    // Deleting the job deletes its plan and chunks (foreign keys are on).
    chunks.plan(&plan_for(job), &first).await.expect("plan");
    assert!(jobs.remove(job).await.expect("remove"));
    assert_eq!(chunks.plan_of(job).await.expect("plan_of"), None);
    assert_eq!(chunks.list(job).await.expect("list"), []);
});

videoshare::store_test!(only_chunks_of_started_jobs_are_claimed, |db| async move {
    let (jobs, chunks) = stores(db);
    // Queued, not started: its chunks wait.
    let waiting = queued_job(&jobs, 100, "/srv/clip.mp4").await;
    chunks
        .plan(&plan_for(waiting), &[chunk(ChunkKind::Video, 0, 1)])
        .await
        .expect("plan");
    assert!(claim(&chunks, "node-a", LONG).await.is_none());
    // Started: claimable. Paused: not any more.
    let started = start_next(&jobs).await;
    assert_eq!(started, waiting);
    let (job, idx, lease) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    assert_eq!((job, idx, lease.attempt), (started, 0, 1));
    assert!(chunks.release(&lease).await.expect("release"));
    let (from, to) = ([JobStatus::Started], JobStatus::Paused);
    assert!(
        jobs.transition(started, &from, to, Change::default())
            .await
            .expect("pause")
    );
    assert!(claim(&chunks, "node-a", LONG).await.is_none());
});

videoshare::store_test!(claims_follow_priority_then_sound_first, |db| async move {
    let (jobs, chunks) = stores(db);
    let low = queued_job(&jobs, 50, "/srv/low.mp4").await;
    let high = queued_job(&jobs, 200, "/srv/high.mp4").await;
    assert_eq!(start_next(&jobs).await, high);
    assert_eq!(start_next(&jobs).await, low);
    let kinds = [
        chunk(ChunkKind::Video, 0, 1),
        chunk(ChunkKind::Video, 10, 1),
        chunk(ChunkKind::Audio, 0, 1),
    ];
    chunks.plan(&plan_for(low), &kinds).await.expect("plan");
    chunks.plan(&plan_for(high), &kinds).await.expect("plan");
    // `only` keeps to one job, whatever its priority.
    let (only, _, source) = chunks
        .claim("node-a", LONG, Some(low), &everything)
        .await
        .expect("claim")
        .expect("a chunk");
    assert_eq!(
        (only.job, only.idx, only.planned.kind),
        (low, 2, ChunkKind::Audio)
    );
    assert_eq!(only.state, ChunkState::Running);
    assert_eq!(source, PathBuf::from("/srv/low.mp4"));
    let mut order = Vec::new();
    while let Some((job, idx, _)) = claim(&chunks, "node-a", LONG).await {
        order.push((job, idx));
    }
    assert_eq!(order, [(high, 2), (high, 0), (high, 1), (low, 0), (low, 1)]);
});

videoshare::store_test!(jobs_a_node_cannot_see_are_passed_over, |db| async move {
    let (jobs, chunks) = stores(db);
    let hidden = queued_job(&jobs, 200, "/mnt/elsewhere/a.mp4").await;
    let seen = queued_job(&jobs, 100, "/srv/b.mp4").await;
    start_next(&jobs).await;
    start_next(&jobs).await;
    for job in [hidden, seen] {
        chunks
            .plan(&plan_for(job), &[chunk(ChunkKind::Video, 0, 1)])
            .await
            .expect("plan");
    }
    let local = |file: &Path| file.starts_with("/srv");
    let (got, _, source) = chunks
        .claim("node-a", LONG, None, &local)
        .await
        .expect("claim")
        .expect("a chunk");
    assert_eq!((got.job, source), (seen, PathBuf::from("/srv/b.mp4")));
    assert!(
        chunks
            .claim("node-a", LONG, None, &local)
            .await
            .expect("claim")
            .is_none()
    );
    let (other, _, _) = claim(&chunks, "node-b", LONG).await.expect("a chunk");
    assert_eq!(other, hidden);
});

videoshare::store_test!(a_stale_chunk_lease_writes_nothing, |db| async move {
    let (jobs, chunks) = stores(db);
    let job = started_with(&jobs, &chunks, &[ChunkKind::Video]).await;
    let (_, _, dead) = claim(&chunks, "node-a", 1).await.expect("a chunk");
    assert!(chunks.started_run(&dead).await.expect("run"));
    tokio::time::sleep(GONE).await;
    let moved = chunks
        .repair(ChunkRepair::Expired { max_losses: 3 })
        .await
        .expect("sweep");
    assert_eq!(moved, [(job, 0, ChunkState::Queued)]);
    let (_, _, alive) = claim(&chunks, "node-b", LONG)
        .await
        .expect("the chunk again");
    assert_eq!(alive.attempt, 2);
    // What the file service asks: only the live lease holds.
    let holds = |node: &'static str, chunk| chunks.holds(node, job, chunk);
    assert!(!holds("node-a", None).await.expect("read"));
    assert!(!holds("node-a", Some((0, 1))).await.expect("read"));
    assert!(holds("node-b", None).await.expect("read"));
    assert!(holds("node-b", Some((0, 2))).await.expect("read"));
    assert!(!holds("node-b", Some((0, 1))).await.expect("read"));
    // Node A wakes up and carries on as if it still held the chunk.
    assert!(!chunks.started_run(&dead).await.expect("write"));
    assert!(!chunks.raise_progress(&dead, 90, None).await.expect("write"));
    assert!(
        !chunks
            .deliver(&dead, "/srv/work/a.mp4")
            .await
            .expect("write")
    );
    assert!(!chunks.fail(&dead, "broken").await.expect("write"));
    assert!(!chunks.release(&dead).await.expect("write"));
    let now = state_of(&chunks, job, 0).await;
    assert_eq!(
        (now.state, now.progress, now.runs),
        (ChunkState::Running, 0, 1)
    );
    assert_eq!((now.node.as_deref(), now.lease_losses), (Some("node-b"), 1));
    // Node B's writes land; progress never goes back.
    assert!(chunks.started_run(&alive).await.expect("write"));
    assert!(
        chunks
            .raise_progress(&alive, 40, None)
            .await
            .expect("write")
    );
    assert!(
        chunks
            .raise_progress(&alive, 20, None)
            .await
            .expect("write")
    );
    assert_eq!(state_of(&chunks, job, 0).await.progress, 40);
    assert!(
        chunks
            .deliver(&alive, "/srv/work/b.mp4")
            .await
            .expect("write")
    );
    let done = state_of(&chunks, job, 0).await;
    assert_eq!(
        (done.state, done.progress, done.runs),
        (ChunkState::Done, 100, 2)
    );
    assert_eq!(done.output.as_deref(), Some("/srv/work/b.mp4"));
    assert!(done.done_at.is_some());
    // Done is done: no more writes, nothing for a sweep.
    assert!(!chunks.release(&alive).await.expect("write"));
    tokio::time::sleep(GONE).await;
    assert_eq!(
        chunks
            .repair(ChunkRepair::Expired { max_losses: 3 })
            .await
            .expect("sweep"),
        []
    );
});

videoshare::store_test!(
    a_jobs_rate_is_the_sum_of_its_running_video_chunks,
    |db| async move {
        let (jobs, chunks) = stores(db);
        let job = started_with(&jobs, &chunks, &SOUND_AND_THREE_PICTURES).await;
        let rate_of = || async { chunks.rate(job).await.expect("rate") };
        assert_eq!(rate_of().await, None, "nothing runs");
        let mut leases = Vec::new();
        for node in ["node-a", "node-b", "node-c"] {
            let (_, _, lease) = claim(&chunks, node, LONG).await.expect("a chunk");
            assert!(chunks.started_run(&lease).await.expect("run"));
            leases.push(lease);
        }
        let claimed: Vec<u32> = leases.iter().map(|l| l.idx).collect();
        assert_eq!(claimed, [0, 1, 2], "the sound first, then the picture");
        assert_eq!(rate_of().await, None, "no encoder has reported yet");
        let rate = |fps, speed| Some(ChunkRate { fps, speed });
        let reports = [rate(0.0, 60.0), rate(50.0, 2.0), rate(30.5, 1.25)];
        for (lease, reported) in leases.iter().zip(reports) {
            assert!(
                chunks
                    .raise_progress(lease, 10, reported)
                    .await
                    .expect("write")
            );
        }
        assert_eq!(rate_of().await, rate(80.5, 3.25), "the sound is left out");
        // A report without a rate (ffmpeg suspended) keeps the last one.
        assert!(
            chunks
                .raise_progress(&leases[1], 20, None)
                .await
                .expect("write")
        );
        assert_eq!(rate_of().await, rate(80.5, 3.25));
        // A finished chunk no longer counts.
        assert!(chunks.deliver(&leases[1], "c1").await.expect("deliver"));
        assert_eq!(rate_of().await, rate(30.5, 1.25));
        // A chunk put back and claimed again starts unrated.
        assert!(chunks.release(&leases[2]).await.expect("release"));
        let (_, idx, again) = claim(&chunks, "node-d", LONG).await.expect("a chunk");
        assert_eq!(idx, 2);
        assert!(chunks.started_run(&again).await.expect("run"));
        assert_eq!(rate_of().await, None);
    }
);

videoshare::store_test!(
    renew_keeps_held_chunks_and_names_the_job_status,
    |db| async move {
        let (jobs, chunks) = stores(db);
        let job = started_with(
            &jobs,
            &chunks,
            &[ChunkKind::Video, ChunkKind::Video, ChunkKind::Video],
        )
        .await;
        let (_, kept, lease) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
        let (_, released, gone) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
        let (_, other, _) = claim(&chunks, "node-b", LONG).await.expect("a chunk");
        assert!(chunks.release(&gone).await.expect("release"));
        let held = [
            (job, kept),
            (job, released),
            (job, other),
            (Guid::new_random(), 0),
        ];
        let renewed = chunks.renew("node-a", &held, LONG).await.expect("renew");
        assert_eq!(renewed, [(lease.clone(), Some(JobStatus::Started))]);
        assert_eq!(chunks.renew("node-a", &[], LONG).await.expect("renew"), []);
        // The job paused: the holder learns it at its next renewal.
        let (from, to) = ([JobStatus::Started], JobStatus::Paused);
        assert!(
            jobs.transition(job, &from, to, Change::default())
                .await
                .expect("pause")
        );
        let renewed = chunks.renew("node-a", &held, LONG).await.expect("renew");
        assert_eq!(renewed, [(lease, Some(JobStatus::Paused))]);
        // A lease that ran out is not renewed.
        let (_, _, short) = claim_of(&chunks, &jobs, job).await;
        tokio::time::sleep(GONE).await;
        let renewed = chunks
            .renew("node-c", &[(job, short.idx)], LONG)
            .await
            .expect("renew");
        assert_eq!(renewed, []);
    }
);

/// Restarts `job` and claims one of its chunks with a 1 ms lease.
async fn claim_of(chunks: &ChunkStore, jobs: &JobStore, job: Guid) -> (Guid, u32, ChunkLease) {
    let (from, to) = ([JobStatus::Paused], JobStatus::Started);
    assert!(
        jobs.transition(job, &from, to, Change::default())
            .await
            .expect("resume")
    );
    let (chunk, lease, _) = chunks
        .claim("node-c", 1, Some(job), &everything)
        .await
        .expect("claim")
        .expect("a chunk");
    (chunk.job, chunk.idx, lease)
}

videoshare::store_test!(a_chunk_that_loses_too_many_leases_fails, |db| async move {
    let (jobs, chunks) = stores(db);
    let job = started_with(&jobs, &chunks, &[ChunkKind::Video]).await;
    let expire = || async {
        tokio::time::sleep(GONE).await;
        chunks
            .repair(ChunkRepair::Expired { max_losses: 2 })
            .await
            .expect("sweep")
    };
    claim(&chunks, "node-a", 1).await.expect("a chunk");
    assert_eq!(expire().await, [(job, 0, ChunkState::Queued)]);
    let requeued = state_of(&chunks, job, 0).await;
    assert_eq!((requeued.node, requeued.lease_losses), (None, 1));
    claim(&chunks, "node-b", 1).await.expect("a chunk");
    assert_eq!(expire().await, [(job, 0, ChunkState::Failed)]);
    let failed = state_of(&chunks, job, 0).await;
    assert_eq!(
        (failed.state, failed.lease_losses, failed.attempts),
        (ChunkState::Failed, 2, 2)
    );
    assert!(
        failed.failure.contains("stopped answering 2 times") && failed.failure.contains("node-b"),
        "{}",
        failed.failure
    );
    assert!(claim(&chunks, "node-c", LONG).await.is_none());
    // The job requeued: its failed chunks get a clean record.
    assert_eq!(chunks.requeue_failed(job).await.expect("requeue"), 1);
    let again = state_of(&chunks, job, 0).await;
    assert_eq!(
        (again.state, again.lease_losses, again.failure.as_str()),
        (ChunkState::Queued, 0, "")
    );
    assert_eq!(chunks.requeue_failed(job).await.expect("requeue"), 0);
});

videoshare::store_test!(
    a_node_starting_gives_back_only_its_chunks,
    |db| async move {
        let (jobs, chunks) = stores(db);
        let job = started_with(&jobs, &chunks, &[ChunkKind::Video, ChunkKind::Video]).await;
        let (_, mine, _) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
        let (_, theirs, _) = claim(&chunks, "node-b", LONG).await.expect("a chunk");
        let moved = chunks
            .repair(ChunkRepair::HeldBy("node-a"))
            .await
            .expect("repair");
        assert_eq!(moved, [(job, mine, ChunkState::Queued)]);
        let back = state_of(&chunks, job, mine).await;
        assert_eq!(
            (back.state, back.lease_losses, back.node),
            (ChunkState::Queued, 0, None)
        );
        assert_eq!(
            state_of(&chunks, job, theirs).await.state,
            ChunkState::Running
        );
        // A failed chunk keeps its reason; a fresh one is untouched.
        let (_, _, lease) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
        assert!(chunks.fail(&lease, "ffmpeg said no").await.expect("fail"));
        let failed = state_of(&chunks, job, lease.idx).await;
        assert_eq!(
            (failed.state, failed.failure.as_str()),
            (ChunkState::Failed, "ffmpeg said no")
        );
        assert_eq!(
            chunks
                .repair(ChunkRepair::HeldBy("node-a"))
                .await
                .expect("repair"),
            []
        );
    }
);

videoshare::store_test!(totals_sum_a_jobs_chunks, |db| async move {
    let (jobs, chunks) = stores(db);
    let job = started_with(&jobs, &chunks, &SOUND_AND_THREE_PICTURES).await;
    let empty = chunks.totals(Guid::new_random()).await.expect("totals");
    assert_eq!(empty, ChunkTotals::default());
    let (_, _, audio) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    let (_, _, first) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    let (_, _, second) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    assert!(
        chunks
            .deliver(&audio, "/srv/work/audio.m4a")
            .await
            .expect("deliver")
    );
    assert!(
        chunks
            .raise_progress(&first, 55, None)
            .await
            .expect("progress")
    );
    assert!(chunks.fail(&second, "no").await.expect("fail"));
    let totals = chunks.totals(job).await.expect("totals");
    // 10 × 100 % + 20 × 55 % + 30 × 0 % (failed) + 40 × 0 %.
    let expected = ChunkTotals {
        weight: 100,
        worked: 21,
        queued: 1,
        running: 1,
        done: 1,
        failed: 1,
    };
    assert_eq!(totals, expected);
});

/// Two nodes (two pools) race over 50 chunks: each is claimed exactly once.
async fn race(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let url = match backend {
        Backend::Sqlite => DatabaseUrl::parse(&test_db.url(), Path::new("/")).expect("url"),
        Backend::Postgres => DatabaseUrl::Postgres(test_db.url()),
    };
    let (jobs, a) = stores(test_db.db());
    let b = ChunkStore::new(
        videoshare::store::open_url(&url)
            .await
            .expect("second pool"),
    );
    let job = started_with(&jobs, &a, &[ChunkKind::Video; 50]).await;
    let mut taken = Vec::new();
    loop {
        let (got_a, got_b) = tokio::join!(claim(&a, "node-a", LONG), claim(&b, "node-b", LONG));
        let got: Vec<u32> = [got_a, got_b]
            .into_iter()
            .flatten()
            .map(|(_, idx, _)| idx)
            .collect();
        if got.is_empty() {
            break;
        }
        taken.extend(got);
    }
    taken.sort_unstable();
    assert_eq!(taken, (0..50).collect::<Vec<u32>>());
    let totals = a.totals(job).await.expect("totals");
    assert_eq!((totals.running, totals.queued), (50, 0));
    assert!(
        a.list(job)
            .await
            .expect("list")
            .iter()
            .all(|c| c.attempts == 1)
    );
}

#[tokio::test]
async fn two_nodes_racing_for_chunks_take_each_once_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_chunks_take_each_once_postgres() {
    race(Backend::Postgres).await;
}

/// The next event `listener` hears that `wanted` accepts, within 10 s.
async fn heard(
    listener: &mut videoshare::store::notify::Listener,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, listener.next())
            .await
            .expect("the event within 10 s")
            .expect("listen");
        if wanted(&event) {
            return event;
        }
    }
}

/// PostgreSQL wakes idle nodes when chunks are queued and tells the job's
/// node when one is done or failed.
#[tokio::test]
async fn chunk_changes_are_notified_postgres() {
    let test_db = TestDb::postgres().await;
    let (jobs, chunks) = stores(test_db.db());
    let mut listener = videoshare::store::notify::Listener::open(&test_db.db())
        .await
        .expect("listen")
        .expect("a listener on PostgreSQL");
    queued_job(&jobs, 100, "/srv/clip.mp4").await;
    heard(&mut listener, |e| *e == Event::Queued).await;
    let job = start_next(&jobs).await;
    let kinds = [
        chunk(ChunkKind::Video, 0, 1),
        chunk(ChunkKind::Video, 10, 1),
    ];
    chunks.plan(&plan_for(job), &kinds).await.expect("plan");
    heard(&mut listener, |e| *e == Event::Queued).await;
    let (_, _, first) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    let (_, _, second) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    let done = |e: &Event| matches!(e, Event::ChunkDone { .. });
    assert!(
        chunks
            .raise_progress(&first, 50, None)
            .await
            .expect("progress")
    );
    assert!(
        chunks
            .deliver(&first, "/srv/work/0.mp4")
            .await
            .expect("deliver")
    );
    assert_eq!(
        heard(&mut listener, done).await,
        Event::ChunkDone { guid: job }
    );
    assert!(chunks.release(&second).await.expect("release"));
    heard(&mut listener, |e| *e == Event::Queued).await;
    let (_, _, second) = claim(&chunks, "node-a", LONG).await.expect("a chunk");
    assert!(chunks.fail(&second, "no").await.expect("fail"));
    assert_eq!(
        heard(&mut listener, done).await,
        Event::ChunkDone { guid: job }
    );
}
