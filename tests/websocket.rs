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
    let url = format!("ws://{}/ws", app.http_addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
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
