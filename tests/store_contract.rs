//! The stores behave the same on both engines: every test here runs once on
//! SQLite and once on PostgreSQL (`store_test!`), through the public store
//! API only. Each covers SQL that had to be written for both: quoted
//! `"user"`, `$n` placeholders reused, upserts, `IS DISTINCT FROM`, empty
//! status lists, integers read back as they were written.

use std::path::PathBuf;

use videoshare::carbon::message::Trim;
use videoshare::carbon::{Guid, JobStatus};
use videoshare::encoder::job::allowed_from;
use videoshare::owner::Owner;
use videoshare::store::jobs::{AudioSource, Change, CopySpec, Destination, Placed, Repair};
use videoshare::store::{AccountStore, JobStore, NewJob, SessionStore, TusStore, TusUpload};
use videoshare::store::{UploadStore, uploads::new_upload};

const PRESET: &str = "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}";

fn new_job(user: &str) -> NewJob {
    NewJob {
        guid: Guid::new_random(),
        name: "clip.mp4".into(),
        user: user.into(),
        description: "a description".into(),
        priority: 120,
        source_path: PathBuf::from("/srv/uploaded/clip.mp4"),
        audio: AudioSource::Absent,
        trim: Some(Trim {
            in_ticks: 27_000_000,
            out_ticks: Some(54_000_000),
        }),
        source_copies: vec![CopySpec {
            dir: PathBuf::from("/srv/copies"),
            file: None,
            overwrite: true,
        }],
        notes: vec!["a note".into()],
        destinations: vec![Destination {
            preset_guid: PRESET.parse::<Guid>().expect("guid").into(),
            dest_dir: PathBuf::from("/srv/streams"),
            base_name: "clip".into(),
            output_path: None,
            name: Some("web".into()),
            copies: Vec::new(),
            copied: Vec::new(),
        }],
        request_xml: "<cnpsXML/>".into(),
    }
}

videoshare::store_test!(a_job_reads_back_as_written, |db| async move {
    let jobs = JobStore::new(db);
    let stored = jobs.insert(new_job("ann")).await.expect("insert");
    let read = jobs.get(stored.guid).await.expect("get").expect("row");
    assert_eq!(read, stored);
    // A bare `user` on PostgreSQL is the role's name: quoted, it is Ann's.
    assert_eq!(read.user, "ann");
    assert_eq!(read.audio, AudioSource::Absent);
    assert_eq!(read.priority, 120);
    assert_eq!(read.trim.map(|t| t.out_ticks), Some(Some(54_000_000)));
    assert_eq!(read.notes, ["a note"]);
    assert_eq!(read.source_copies.len(), 1);
    let destinations = jobs.destinations(stored.guid).await.expect("destinations");
    assert_eq!(destinations.len(), 1);
    assert_eq!(destinations[0].name.as_deref(), Some("web"));
    assert_eq!(
        jobs.request_xml(stored.guid).await.expect("xml").as_deref(),
        Some("<cnpsXML/>")
    );
    assert_eq!(jobs.guids().await.expect("guids"), [stored.guid]);
    assert_eq!(jobs.all().await.expect("all"), [stored]);
});

videoshare::store_test!(a_job_moves_through_its_life, |db| async move {
    let jobs = JobStore::new(db);
    let job = jobs.insert(new_job("ann")).await.expect("insert");
    assert_eq!(jobs.queue_position(job.guid).await.expect("place"), Some(1));
    let (claimed, lease) = jobs
        .claim("node-a", 10_000, allowed_from)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(claimed.node.as_deref(), Some("node-a"));
    assert_eq!(claimed.attempts, 1);
    assert_eq!(
        (claimed.guid, claimed.status),
        (job.guid, JobStatus::Starting)
    );
    assert_eq!(jobs.queue_position(job.guid).await.expect("place"), None);
    let started = jobs
        .transition_held(
            &lease,
            &[JobStatus::Starting],
            JobStatus::Started,
            Change::default(),
        )
        .await
        .expect("start");
    assert!(started);
    jobs.raise_progress(&lease, 40).await.expect("progress");
    jobs.raise_progress(&lease, 30).await.expect("progress");
    let now = jobs.get(job.guid).await.expect("get").expect("row");
    assert_eq!(now.progress, 40, "progress never goes down");
    let outputs = [Placed {
        output: PathBuf::from("/srv/streams/clip.mp4"),
        copies: vec![PathBuf::from("/srv/copies/clip.mp4")],
    }];
    assert!(
        jobs.complete(&lease, allowed_from(JobStatus::Completed), &outputs)
            .await
            .expect("complete")
    );
    let done = jobs.get(job.guid).await.expect("get").expect("row");
    assert_eq!((done.status, done.progress), (JobStatus::Completed, 100));
    assert!(done.completed_time.is_some());
    let destinations = jobs.destinations(job.guid).await.expect("destinations");
    assert_eq!(destinations[0].output_path, Some(outputs[0].output.clone()));
    assert_eq!(destinations[0].copied, outputs[0].copies);
    // A second completion finds it moved on.
    assert!(
        !jobs
            .complete(&lease, allowed_from(JobStatus::Completed), &outputs)
            .await
            .expect("complete")
    );
    assert!(
        jobs.requeue(job.guid, &[JobStatus::Completed])
            .await
            .expect("requeue")
    );
    let again = jobs.get(job.guid).await.expect("get").expect("row");
    assert_eq!((again.status, again.progress), (JobStatus::Queued, 0));
    let destinations = jobs.destinations(job.guid).await.expect("destinations");
    assert_eq!(
        destinations[0].output_path, None,
        "requeued: outputs forgotten"
    );
    assert!(jobs.set_priority(job.guid, 7).await.expect("priority"));
    assert!(jobs.remove(job.guid).await.expect("remove"));
    assert!(!jobs.remove(job.guid).await.expect("remove"));
    assert_eq!(jobs.get(job.guid).await.expect("get"), None);
});

videoshare::store_test!(counts_and_failures_read_back, |db| async move {
    let jobs = JobStore::new(db);
    let a = jobs.insert(new_job("ann")).await.expect("insert");
    jobs.insert(new_job("bob")).await.expect("insert");
    let failed = jobs
        .transition(
            a.guid,
            &[JobStatus::Queued],
            JobStatus::Error,
            Change {
                failure: Some("why it failed".into()),
                ..Change::default()
            },
        )
        .await
        .expect("fail");
    assert!(failed);
    let row = jobs.get(a.guid).await.expect("get").expect("row");
    assert_eq!(row.failure, "why it failed");
    assert!(row.completed_time.is_some(), "terminal: completed_time set");
    assert_eq!(jobs.count(&[JobStatus::Queued]).await.expect("count"), 1);
    assert_eq!(jobs.count(&[]).await.expect("an empty list"), 0);
    let mut counts = jobs.counts_by_status().await.expect("counts");
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, [(JobStatus::Error, 1), (JobStatus::Queued, 1)]);
    // No status may move from nothing: an empty list matches no job.
    let moved = jobs
        .transition(a.guid, &[], JobStatus::Queued, Change::default())
        .await
        .expect("empty list");
    assert!(!moved);
});

videoshare::store_test!(an_interrupted_run_is_repaired, |db| async move {
    let jobs = JobStore::new(db);
    let running = jobs.insert(new_job("ann")).await.expect("insert");
    let stopping = jobs.insert(new_job("bob")).await.expect("insert");
    for _ in 0..2 {
        jobs.claim("node-a", 10_000, allowed_from)
            .await
            .expect("claim");
    }
    jobs.transition(
        stopping.guid,
        &[JobStatus::Starting],
        JobStatus::Stopping,
        Change::default(),
    )
    .await
    .expect("stopping");
    // Another node's restart leaves them alone...
    let theirs = jobs
        .repair(
            Repair::HeldBy("node-b"),
            "stopped by a command",
            allowed_from,
        )
        .await
        .expect("recover");
    assert_eq!(theirs, []);
    // ...node A's restart puts them right.
    let repaired = jobs
        .repair(
            Repair::HeldBy("node-a"),
            "stopped by a command",
            allowed_from,
        )
        .await
        .expect("recover");
    assert_eq!(repaired.len(), 2);
    let running = jobs.get(running.guid).await.expect("get").expect("row");
    assert_eq!(running.status, JobStatus::Queued);
    assert_eq!(running.start_time, None);
    let stopped = jobs.get(stopping.guid).await.expect("get").expect("row");
    assert_eq!(stopped.status, JobStatus::Stopped);
    assert_eq!(stopped.failure, "stopped by a command");
    assert!(stopped.completed_time.is_some());
});

videoshare::store_test!(upload_outputs_are_replaced_not_doubled, |db| async move {
    let uploads = UploadStore::new(db);
    let upload = new_upload(
        Guid::new_random(),
        "clip.mp4".into(),
        "clip.mp4".into(),
        10,
        Owner::account("ann"),
        "480p".into(),
    );
    uploads.insert(&upload).await.expect("insert");
    let outputs = [("clip.mp4".to_owned(), "480p".to_owned())];
    uploads
        .record_outputs(upload.guid, &outputs)
        .await
        .expect("once");
    let renamed = [("clip.mp4".to_owned(), "720p".to_owned())];
    uploads
        .record_outputs(upload.guid, &renamed)
        .await
        .expect("twice");
    let all = uploads.outputs().await.expect("outputs");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].preset_name, "720p");
    uploads.touch_health().await.expect("health");
    uploads.touch_health().await.expect("health again");
    let mine = uploads
        .of_owner(&Owner::account("ann"), 10)
        .await
        .expect("mine");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].size, 10);
});

videoshare::store_test!(resumable_uploads_round_trip, |db| async move {
    let tus = TusStore::new(db.clone());
    let uploads = UploadStore::new(db);
    let owner = Owner::account("ann");
    let upload = TusUpload {
        id: "abc".into(),
        owner: owner.clone(),
        length: 1 << 40,
        file_name: "big.mp4".into(),
        preset: None,
        created_at: 1_000,
        guid: None,
    };
    tus.insert(&upload).await.expect("insert");
    assert_eq!(tus.get("abc").await.expect("get"), Some(upload.clone()));
    assert_eq!(tus.open_count_of(&owner).await.expect("count"), 1);
    // Its job was recorded before a crash, the link to it was not.
    let mut job = new_upload(
        Guid::new_random(),
        "big.mp4".into(),
        "big.mp4".into(),
        1 << 40,
        owner.clone(),
        String::new(),
    );
    job.created_at = 2_000;
    uploads.insert(&job).await.expect("upload");
    assert_eq!(
        tus.submitted_job(&upload).await.expect("find"),
        Some(job.guid.to_string())
    );
    tus.finish("abc", job.guid).await.expect("finish");
    assert_eq!(tus.unfinished().await.expect("unfinished"), []);
    assert_eq!(tus.expire(1_001).await.expect("expire"), ["abc"]);
    assert_eq!(tus.ids().await.expect("ids"), Vec::<String>::new());
});

videoshare::store_test!(sessions_and_accounts, |db| async move {
    let accounts = AccountStore::new(db.clone());
    assert!(accounts.create("Ann", "hash-1").await.expect("create"));
    assert!(!accounts.create("ANN", "hash-2").await.expect("taken"));
    assert_eq!(
        accounts.find("aNn").await.expect("find"),
        Some(("Ann".to_owned(), "hash-1".to_owned()))
    );
    let sessions = SessionStore::new(db);
    for id in ["s1", "s2", "s3"] {
        sessions.create(id, "Ann").await.expect("session");
    }
    assert_eq!(
        sessions.account("s1", 60_000).await.expect("account"),
        Some("Ann".to_owned())
    );
    // Keep one...
    assert_eq!(sessions.end_all("Ann", Some("s1")).await.expect("end"), 2);
    // ...then none (`IS DISTINCT FROM NULL` matches every row).
    assert_eq!(sessions.end_all("Ann", None).await.expect("end"), 1);
    assert_eq!(sessions.account("s1", 60_000).await.expect("account"), None);
});
