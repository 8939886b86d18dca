//! Operations: `/healthz` says whether the portal can work, and names what
//! is wrong when it cannot.

mod common;

use serde_json::Value;

use common::spawn_app;

async fn health(base: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("GET /healthz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn healthz_checks_the_encoder_the_database_and_the_disk() {
    let app = spawn_app().await;
    let (status, body) = health(&app.base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["encoder"]["ok"], true);
    assert!(
        body["encoder"]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("videoshare "))
    );
    assert_eq!(body["database"]["ok"], true);
    assert!(body["disk"]["free_bytes"].as_u64().is_some_and(|n| n > 0));

    // The same portal data, served by a portal whose encoder is gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let nobody = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let args = videoshare::config::PortalArgs {
        data: videoshare::config::DataArgs {
            data: dir.path().to_path_buf(),
        },
        database: Default::default(),
        portal: videoshare::config::PortalOptions {
            http: "127.0.0.1:0".into(),
            max_upload: 1 << 20,
            http_header_secs: 10,
            http_body_secs: 30,
            poll_ms: 250,
            accounts: false,
            private_library: false,
            ws_per_client: 16,
            security: Default::default(),
        },
        connect: videoshare::config::ConnectArgs {
            encoder: nobody.clone(),
            timeout_secs: 2,
        },
        encoder_uploaded: None,
        encoder_streams: None,
        encoder_connection: videoshare::config::EncoderConnection::OnePerRequest,
    };
    let portal = videoshare::app::App::build_portal(&args)
        .await
        .expect("portal starts");
    let base = format!("http://{}", portal.http_addr().expect("http"));
    let (status, body) = health(&base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["encoder"]["ok"], false);
    assert!(
        body["encoder"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&nobody)),
        "{body}"
    );
    assert_eq!(body["database"]["ok"], true, "only the encoder is named");
    portal.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_pages_are_compressed() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(format!("{}/", app.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("page");
    let headers = page.headers();
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(
        headers["content-encoding"], "gzip",
        "the page is compressed"
    );

    // A video: byte ranges, never compressed; a folder: no listing.
    let clip = common::make_clip(&app.uploaded_dir(), "range.mp4", 1, 160, 120);
    std::fs::copy(&clip, app.streams_dir().join("range.mp4")).expect("copy");
    std::fs::create_dir(app.streams_dir().join("sub")).expect("mkdir");
    let part = app
        .http
        .get(format!("{}/streams/range.mp4", app.base))
        .header("Accept-Encoding", "gzip")
        .header("Range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert!(part.headers().get("content-encoding").is_none());
    assert!(part.headers().get("content-security-policy").is_some());
    assert_eq!(part.bytes().await.expect("body").len(), 100);
    // Folders and escapes, sent as raw bytes (an HTTP client would tidy
    // `..` away before sending): never a listing, never the database that
    // sits beside streams/.
    for path in [
        "/streams/",
        "/streams/sub/",
        "/streams/../videoshare.db",
        "/streams/%2e%2e/videoshare.db",
        "/streams/..%2fvideoshare.db",
        "/streams//etc/passwd",
    ] {
        let status = raw_get_status(app.http_addr, path).await;
        assert!(status == 404 || status == 400, "{path} gave {status}");
    }
    app.stop().await;
}

/// The status code of a `GET` of `path` written byte for byte.
async fn raw_get_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = vec![0u8; 12];
    stream.read_exact(&mut head).await.expect("status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("a status code")
}

#[tokio::test]
async fn metrics_count_jobs_requests_uploads_and_sockets() {
    let app = spawn_app().await;
    let clip = common::make_clip(&app.data, "counted.mp4", 1, 160, 120);
    let guid = app.upload_ok(&clip).await;
    app.follow_job(&guid).await;
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.http_addr))
        .await
        .expect("websocket");
    let size = std::fs::metadata(&clip).expect("clip").len();
    let wanted = [
        "videoshare_jobs{status=\"COMPLETED\"} 1".to_owned(),
        "videoshare_jobs{status=\"QUEUED\"} 0".to_owned(),
        format!("videoshare_upload_bytes_total {size}"),
        "videoshare_encode_seconds_count 1".to_owned(),
        "videoshare_queue_wait_seconds_count 1".to_owned(),
        "videoshare_websocket_clients 1".to_owned(),
        "videoshare_carbon_requests_total{task=\"JobQueue\",result=\"ok\"} 1".to_owned(),
    ];
    // Job gauges are refreshed every 2 s and a closed socket is counted
    // out when the server sees it close: poll.
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let response = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("GET /metrics");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.expect("text");
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !text.contains(w.as_str()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing:?} missing from\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(socket);
    app.stop().await;
}

/// Sends `bytes` and then nothing; returns what the server said before it
/// closed the connection and how long that took (failing after 10 s).
async fn send_then_stall(
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> (Vec<u8>, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(bytes).await.expect("send");
    let started = tokio::time::Instant::now();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut reply),
    )
    .await;
    assert!(read.is_ok(), "still connected after 10 s");
    (reply, started.elapsed())
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let app = common::spawn_app_with(|a| a.portal.http_header_secs = 1).await;
    let (_, waited) = send_then_stall(app.http_addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert!(waited < std::time::Duration::from_secs(5));
    // Everyone else is served as usual.
    let (status, _) = health(&app.base).await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_upload_whose_body_stalls_is_ended_and_leaves_nothing() {
    let app = common::spawn_app_with(|a| a.portal.http_body_secs = 1).await;
    let head = "POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
                Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100000\r\n\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n";
    // The headers and 4 KB of the body, then nothing.
    let mut sent = head.as_bytes().to_vec();
    sent.extend_from_slice(&[0u8; 4000]);
    let (reply, waited) = send_then_stall(app.http_addr, &sent).await;
    assert!(waited < std::time::Duration::from_secs(8));
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 4"), "{reply}");
    assert!(
        reply.contains("bad_upload") || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    assert!(
        common::names_in(&app.tmp_uploads_dir()).is_empty(),
        "no half upload is left"
    );
    assert!(common::names_in(&app.uploaded_dir()).is_empty());
    app.stop().await;
}
