//! Private queues and their controls, over HTTP and the WebSocket: each
//! browser session sees and controls only its own jobs; the live queue
//! carries speed, ETA and queue position; pause, resume, stop and retry go
//! through the encoder's Carbon `JobCommand`.

mod common;

use std::time::Duration;

use common::{DEADLINE, Visitor, make_clip, next_json, spawn_app, spawn_app_with};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Polls `guid` in `who`'s queue until `check` holds.
async fn wait_job(who: &Visitor, guid: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, job) = who.get_json(&format!("/api/jobs/{guid}")).await;
        assert_eq!(status, 200, "{job}");
        if check(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_browser_sees_and_controls_only_its_own_jobs() {
    let app = spawn_app_with(|a| a.encoder.encode_slots = 2).await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 2, 160, 120);
    let ann = app.me();
    let bob = app.visitor();

    let ann_job = ann.upload_ok(&clip).await;
    let bob_job = bob.upload_ok(&clip).await;
    assert_eq!(ann.queue().await, std::slice::from_ref(&ann_job));
    assert_eq!(bob.queue().await, std::slice::from_ref(&bob_job));

    // Over HTTP: Ann's job does not exist for Bob, whatever he tries.
    let (status, body) = bob.get_json(&format!("/api/jobs/{ann_job}")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_job")));
    for action in ["pause", "resume", "stop", "retry"] {
        let (status, body) = bob.control(&ann_job, action).await;
        assert_eq!(status, 404, "{action}: {body}");
    }

    // Over the WebSocket: Bob's snapshot holds only his job, and asking
    // for Ann's is refused.
    let mut bobs_socket = bob.websocket().await;
    let snapshot = next_json(&mut bobs_socket).await;
    assert_eq!(snapshot["type"], "queue");
    let guids: Vec<_> = snapshot["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["guid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(guids, [bob_job.as_str()]);
    bobs_socket
        .send(Message::Text(
            json!({"type": "watch", "guid": ann_job}).to_string().into(),
        ))
        .await
        .expect("send");
    let refused = loop {
        let message = next_json(&mut bobs_socket).await;
        if message["type"] == "error" {
            break message;
        }
        assert_ne!(message["job"]["guid"], ann_job.as_str(), "{message}");
    };
    assert_eq!(refused["code"], "unknown_job");
    assert_eq!(refused["guid"], ann_job.as_str());

    // The encoder records each session as the job's Carbon User.
    let ann_user = app.carbon_status(&ann_job).await.user;
    let bob_user = app.carbon_status(&bob_job).await.user;
    assert!(ann_user.starts_with("anon:"), "{ann_user}");
    assert_ne!(ann_user, bob_user);

    // Both jobs run to the end; Bob's socket never carried Ann's job.
    for (who, guid) in [(&ann, &ann_job), (&bob, &bob_job)] {
        wait_job(who, guid, "completion", |j| j["status"] == "COMPLETED").await;
    }
    let mut bob_saw = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(
        Duration::from_millis(700),
        futures_util::StreamExt::next(&mut bobs_socket),
    )
    .await
    {
        bob_saw.push(message.to_text().unwrap_or_default().to_owned());
    }
    assert!(
        bob_saw.iter().any(|m| m.contains(&bob_job)),
        "Bob saw his own job change: {bob_saw:?}"
    );
    assert!(
        !bob_saw.iter().any(|m| m.contains(&ann_job)),
        "Bob saw Ann's job: {bob_saw:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_live_queue_shows_speed_eta_and_place_and_obeys_its_controls() {
    let app = spawn_app_with(|a| a.encoder.encode_slots = 1).await;
    let files = tempfile::tempdir().expect("tempdir");
    let long = make_clip(files.path(), "long.mp4", 60, 320, 240);
    let short = make_clip(files.path(), "short.mp4", 1, 160, 120);
    let me = app.me();
    let mut socket = me.websocket().await;
    assert_eq!(next_json(&mut socket).await["type"], "queue");

    let long_job = me.upload_ok(&long).await;
    let short_job = me.upload_ok(&short).await;

    // Pushed while encoding: fps, × realtime and ETA; the short job waits
    // first in line.
    let mut waiting_place = None;
    let encoding = loop {
        let message = next_json(&mut socket).await;
        let job = &message["job"];
        if job["guid"] == short_job.as_str() && job["status"] == "QUEUED" {
            waiting_place = waiting_place.or(job["queue_position"].as_u64());
        }
        if job["guid"] == long_job.as_str()
            && job["status"] == "STARTED"
            && job["progress"].as_u64() > Some(0)
            && job["fps"].as_f64() > Some(0.0)
            && job["eta_secs"].as_u64().is_some()
        {
            break job.clone();
        }
    };
    assert!(encoding["fps"].as_f64() > Some(0.0), "{encoding}");
    assert!(encoding["speed"].as_f64() > Some(0.0), "{encoding}");
    assert_eq!(encoding["actions"], json!(["pause", "stop"]));
    let (_, short_now) = me.get_json(&format!("/api/jobs/{short_job}")).await;
    assert_eq!(
        waiting_place.or(short_now["queue_position"].as_u64()),
        Some(1),
        "{short_now}"
    );

    // Pause: the reply shows it at once and the bar holds still.
    let (status, paused) = me.control(&long_job, "pause").await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (200, Some("PAUSED")),
        "{paused}"
    );
    assert_eq!(paused["actions"], json!(["resume", "stop"]));
    assert!(
        paused["label"]
            .as_str()
            .is_some_and(|l| l.starts_with("Paused at"))
    );
    let held = paused["progress"].as_u64().expect("progress");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, still) = me.get_json(&format!("/api/jobs/{long_job}")).await;
    assert_eq!(still["progress"].as_u64(), Some(held), "{still}");
    assert!(
        still["fps"].is_null() && still["eta_secs"].is_null(),
        "{still}"
    );

    // Resume: it goes on from there.
    let (status, resumed) = me.control(&long_job, "resume").await;
    assert_eq!(status, 200, "{resumed}");
    wait_job(&me, &long_job, "progress after resume", |j| {
        j["progress"].as_u64() > Some(held)
    })
    .await;

    // Stop, then retry: it runs again to the end.
    let (status, stopped) = me.control(&long_job, "stop").await;
    assert_eq!(
        (status, stopped["status"].as_str()),
        (200, Some("STOPPED")),
        "{stopped}"
    );
    assert_eq!(stopped["actions"], json!(["retry"]));
    let (status, body) = me.control(&long_job, "resume").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("refused")),
        "{body}"
    );
    let (status, body) = me.control(&long_job, "explode").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_action"))
    );
    let (status, retried) = me.control(&long_job, "retry").await;
    assert_eq!(status, 200, "{retried}");
    assert!(!retried["done"].as_bool().unwrap_or(true), "{retried}");
    let done = wait_job(&me, &long_job, "the retried job to finish", |j| {
        j["done"] == true
    })
    .await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["outputs"].as_array().map(Vec::len), Some(1), "{done}");
    app.stop().await;
}

#[tokio::test]
async fn a_websocket_from_another_origin_is_refused() {
    let app = spawn_app().await;
    let me = app.me();
    let host = app.http_addr.to_string();
    for foreign in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        match me.websocket_with(&[("origin", foreign)]).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{foreign}");
            }
            Err(other) => panic!("{foreign}: {other}"),
            Ok(_) => panic!("a socket from {foreign} was accepted"),
        }
    }
    let own = format!("http://{host}");
    let mut socket = me
        .websocket_with(&[("origin", &own)])
        .await
        .expect("the page's own origin is accepted");
    assert_eq!(next_json(&mut socket).await["type"], "queue");

    // Job controls check it too.
    let response = me
        .http
        .post(format!(
            "{}/api/jobs/{{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}}/stop",
            app.base
        ))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
    app.stop().await;
}
