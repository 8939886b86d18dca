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
        portal: videoshare::config::PortalOptions {
            http: "127.0.0.1:0".into(),
            max_upload: 1 << 20,
            poll_ms: 250,
        },
        connect: videoshare::config::ConnectArgs {
            encoder: nobody.clone(),
            timeout_secs: 2,
        },
        encoder_uploaded: None,
        encoder_streams: None,
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
