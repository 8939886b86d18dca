//! The browser-facing WebSocket protocol: what a page may send and the
//! errors it gets back.

mod common;

use std::time::Duration;

use common::spawn_app;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn bad_watch_requests_get_coded_errors_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut socket = app.websocket().await;
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the queue")
        .expect("open")
        .expect("message");
    let queue: Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(queue, json!({"type": "queue", "jobs": []}));
    let unknown = "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}";
    let cases = [
        (
            json!({"type": "watch", "guid": unknown}).to_string(),
            "unknown_job",
            Some(unknown),
        ),
        (
            json!({"type": "watch", "guid": "nope"}).to_string(),
            "bad_guid",
            Some("nope"),
        ),
        ("not json".to_owned(), "bad_message", None),
        (json!({"type": "reboot"}).to_string(), "bad_message", None),
    ];
    for (sent, code, guid) in cases {
        socket
            .send(Message::Text(sent.clone().into()))
            .await
            .expect("send");
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a reply")
            .expect("open")
            .expect("message");
        let Message::Text(text) = reply else {
            panic!("{reply:?}")
        };
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["type"], "error", "{sent} → {value}");
        assert_eq!(value["code"], code, "{sent} → {value}");
        assert_eq!(value["guid"].as_str(), guid, "{sent} → {value}");
        assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    app.stop().await;
}

#[tokio::test]
async fn one_client_may_hold_only_so_many_sockets() {
    use videoshare::portal::ws::MAX_SOCKETS_PER_CLIENT;
    let app = spawn_app().await;
    let url = format!("ws://{}/ws", app.http_addr);
    let mut held = Vec::new();
    for _ in 0..MAX_SOCKETS_PER_CLIENT {
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect");
        held.push(socket);
    }
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("too_many_sockets"), "{body}");
        }
        other => panic!("the socket over the cap was accepted: {other:?}"),
    }
    // A closed one frees its place.
    let mut first = held.remove(0);
    first.close(None).await.expect("close");
    drop(first);
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        if tokio_tungstenite::connect_async(&url).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.stop().await;
}
