//! Owners take turns in the encoder's queue: at equal priority one owner's
//! many jobs do not hold up another owner's one, and the queue positions
//! reported say so.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{DEADLINE, make_clip, spawn_app, wait_until};
use videoshare::carbon::message::{Command, JobQueue, JobStatusList};
use videoshare::carbon::{Client, Guid, JobStatus};
use videoshare::encoder::preset::SEED_PRESET;

async fn submit(client: &Client, source: &Path, streams: &Path, user: &str) -> Guid {
    let job = JobQueue {
        user: Some(user.to_owned()),
        ..JobQueue::single(
            &source.to_string_lossy(),
            SEED_PRESET,
            &streams.to_string_lossy(),
        )
    };
    client.queue(job).await.expect("queued")
}

#[tokio::test]
async fn one_owners_many_jobs_do_not_hold_up_anothers_one() {
    let app = spawn_app().await; // one slot
    let client = Client::new(app.carbon.to_string());
    let (uploaded, streams) = (app.uploaded_dir(), app.streams_dir());
    // Ann's first job holds the slot (paused) while the rest queue up.
    let long = make_clip(&uploaded, "long.mp4", 30, 320, 240);
    let first = submit(&client, &long, &streams, "ann").await;
    wait_until(&client, first, "encoding", |j| {
        j.status == JobStatus::Started && j.progress > 0
    })
    .await;
    client.command(first, Command::Pause).await.expect("pause");
    let mut ann = Vec::new();
    for n in 0..4 {
        let clip = make_clip(&uploaded, &format!("ann{n}.mp4"), 1, 160, 120);
        ann.push(submit(&client, &clip, &streams, "ann").await);
    }
    let bob_clip = make_clip(&uploaded, "bob.mp4", 1, 160, 120);
    let bob = submit(&client, &bob_clip, &streams, "bob").await;

    // Both ways of asking (the whole list, one job) put Bob's job next.
    let listed: HashMap<Guid, Option<u32>> = client
        .list(JobStatusList::default())
        .await
        .expect("list")
        .into_iter()
        .map(|j| (j.guid, j.queue_position))
        .collect();
    let expected: Vec<Option<u32>> = (1..=5).map(Some).collect();
    let mut order = vec![bob];
    order.extend(&ann);
    let shown: Vec<Option<u32>> = order.iter().map(|g| listed[g]).collect();
    assert_eq!(shown, expected, "positions in the whole list");
    for (guid, place) in order.iter().zip(&expected) {
        let one = client.statuses(&[*guid]).await.expect("status");
        let position = one[0].1.as_ref().and_then(|j| j.queue_position);
        assert_eq!(position, *place, "position of {guid} alone");
    }

    // Freed, the slot serves Bob second, then Ann's others in turn.
    client.command(first, Command::Stop).await.expect("stop");
    let mut started: Vec<Guid> = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while started.len() < order.len() {
        for (guid, entry) in client.statuses(&order).await.expect("statuses") {
            let status = entry.map(|j| j.status).unwrap_or(JobStatus::Invalid);
            if status != JobStatus::Queued && !started.contains(&guid) {
                started.push(guid);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "started {started:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        started, order,
        "Bob's job ran second (ann: {ann:?}, bob: {bob})"
    );
    for guid in &order {
        wait_until(&client, *guid, "done", |j| j.status.is_terminal()).await;
    }
    app.stop().await;
}
