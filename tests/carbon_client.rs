//! `carbon::Client` against a scripted Carbon peer written here (the frame
//! codec and reply types are the real ones): it reuses one connection,
//! reconnects when the server hung up, gives up after its timeout, and
//! retries only what is safe to repeat.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use videoshare::carbon::message::VersionInfo;
use videoshare::carbon::{CarbonCodec, Client, ClientError, Reply};

/// How the scripted server behaves on each connection.
#[derive(Clone, Copy)]
enum Script {
    /// Answer every request with a `Version` reply.
    AnswerAll,
    /// Answer one request, then hang up.
    AnswerOneThenClose,
    /// Read requests, never answer.
    Silent,
}

/// Starts the peer; returns its address and how many connections it took.
async fn peer(script: Script) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut conn = Framed::new(stream, CarbonCodec::default());
                while let Some(Ok(_request)) = conn.next().await {
                    if matches!(script, Script::Silent) {
                        continue;
                    }
                    let reply = Reply::Version(VersionInfo {
                        product: "peer".into(),
                        version: "1".into(),
                        api_version: "1".into(),
                    });
                    if conn.send(Bytes::from(reply.to_payload())).await.is_err() {
                        return;
                    }
                    if matches!(script, Script::AnswerOneThenClose) {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn one_connection_serves_many_requests() {
    let (addr, accepted) = peer(Script::AnswerAll).await;
    let client = Client::new(addr);
    for _ in 0..5 {
        assert_eq!(client.version().await.expect("version").product, "peer");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_closed_connection_is_replaced() {
    let (addr, accepted) = peer(Script::AnswerOneThenClose).await;
    let client = Client::new(addr);
    for _ in 0..3 {
        assert_eq!(client.version().await.expect("version").product, "peer");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one connection per request"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (addr, _) = peer(Script::Silent).await;
    let client = Client::new(addr).with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = client.version().await.expect_err("no answer");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_absent_server_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let err = Client::new(addr.clone())
        .version()
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(&err, ClientError::Connect { .. }) && err.to_string().contains(&addr),
        "{err}"
    );
}
