//! The uploads store's guarantees (R1, R2 of issue 14): a state write is a
//! compare-and-set on the state it replaces, a completion is recorded only
//! together with its outputs, and the owner index follows every change.
//! Each test runs on SQLite and on PostgreSQL.

use videoshare::carbon::JobStatus;
use videoshare::owner::Owner;
use videoshare::store::uploads::new_upload;
use videoshare::store::{Upload, UploadStore};

fn sample(guid: &str) -> Upload {
    new_upload(
        guid.parse().expect("guid"),
        "clip.mp4".into(),
        "clip.mp4".into(),
        10,
        Owner::account("owner-a"),
        "480p".into(),
    )
}

videoshare::store_test!(
    a_stale_state_write_after_stopped_is_refused,
    |db| async move {
        let uploads = UploadStore::new(db);
        let queued = sample("{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}");
        uploads.insert(&queued).await.expect("insert");
        // The poll reads the row, then a control stops the job...
        let polled = uploads.get(queued.guid).await.expect("get").expect("row");
        let stopped = uploads
            .record_state(&polled, JobStatus::Stopped, 0, "stopped by the user")
            .await
            .expect("write");
        assert!(stopped, "the control's write is applied");
        // ...and the poll's older answer arrives: refused.
        let stale = uploads
            .record_state(&polled, JobStatus::Started, 40, "")
            .await
            .expect("write");
        assert!(!stale, "a write based on an older state is refused");
        let row = uploads.get(queued.guid).await.expect("get").expect("row");
        assert_eq!(
            (row.status, row.progress),
            (JobStatus::Stopped, 0),
            "STOPPED stays"
        );
        // A write based on the current state goes through (a retry).
        assert!(
            uploads
                .record_state(&row, JobStatus::Queued, 0, "")
                .await
                .expect("write")
        );
    }
);

videoshare::store_test!(
    completion_is_recorded_with_its_outputs_and_indexed_by_name,
    |db| async move {
        let uploads = UploadStore::new(db);
        let upload = sample("{1F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C41}");
        uploads.insert(&upload).await.expect("insert");
        assert!(uploads.owner_index().await.expect("index").is_empty());
        // Completed before outputs were required with it: found for a relink.
        let orphan = sample("{2F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C42}");
        uploads.insert(&orphan).await.expect("insert");
        assert!(
            uploads
                .record_state(&orphan, JobStatus::Completed, 100, "")
                .await
                .expect("write")
        );
        let orphans = uploads.completed_without_outputs().await.expect("query");
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].guid, orphan.guid);
        let outputs = [("clip.mp4".to_owned(), "480p".to_owned())];
        assert!(
            uploads
                .record_completion(&upload, 100, "", &outputs)
                .await
                .expect("write")
        );
        let index = uploads.owner_index().await.expect("index");
        assert_eq!(
            index.get("clip.mp4").and_then(|o| o.owner.clone()),
            Some(Owner::account("owner-a")),
            "the cached index was refreshed by the write"
        );
        // Completion against a state that is gone: nothing written.
        assert!(
            !uploads
                .record_completion(&upload, 100, "", &[])
                .await
                .expect("write")
        );
        assert_eq!(uploads.outputs().await.expect("outputs").len(), 1);
        uploads
            .transfer(&Owner::account("owner-a"), &Owner::account("owner-b"))
            .await
            .expect("move");
        let index = uploads.owner_index().await.expect("index");
        assert_eq!(
            index.get("clip.mp4").and_then(|o| o.owner.clone()),
            Some(Owner::account("owner-b")),
            "a transfer refreshes the index"
        );
    }
);
