//! Operating a farm, on the one node `serve` runs: `videoshare nodes`
//! lists, drains and enables it; `/healthz` and `/metrics` show the farm as
//! the portal sees it through Carbon.

mod common;

use common::cli::{fails, ok};
use common::spawn_app_with;
use serde_json::Value;

async fn health(app: &common::TestApp) -> (u16, Value) {
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn metrics(app: &common::TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_node_is_listed_drained_and_enabled_again() {
    let app = spawn_app_with(|args| args.encoder.node = Some("solo".into())).await;
    let encoder = app.carbon.to_string();

    let listed = ok(&["nodes"], &encoder).await;
    let row = listed
        .lines()
        .find(|l| l.starts_with("solo"))
        .unwrap_or_else(|| panic!("the node is listed:\n{listed}"));
    assert!(row.contains("127.0.0.1") && row.contains(" up "), "{row}");
    let (status, body) = health(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["farm"]["nodes_up"], 1);
    assert_eq!(body["farm"]["slots"], 1);
    assert!(
        metrics(&app)
            .await
            .contains("videoshare_farm_nodes{state=\"up\"} 1")
    );

    let drained = ok(&["nodes", "disable", "solo"], &encoder).await;
    let row = drained
        .lines()
        .find(|l| l.starts_with("solo"))
        .unwrap_or_else(|| panic!("the node after:\n{drained}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        columns[2..5],
        ["disabled", "1", "1"],
        "state, slots, free: {row}"
    );
    // The cached view is at most two seconds old.
    tokio::time::sleep(videoshare::portal::farm::FRESH_FOR).await;
    let (status, body) = health(&app).await;
    assert_eq!(status, 503, "no node takes jobs: {body}");
    assert_eq!(body["farm"]["ok"], false);
    assert!(
        metrics(&app)
            .await
            .contains("videoshare_farm_nodes{state=\"disabled\"} 1")
    );

    let enabled = ok(&["nodes", "enable", "127.0.0.1"], &encoder).await;
    assert!(enabled.contains(" up "), "by IP too: {enabled}");
    let refused = fails(&["nodes", "disable", "ghost"], &encoder).await;
    assert!(
        refused.contains("no node with IP or name \"ghost\""),
        "{refused}"
    );
}
