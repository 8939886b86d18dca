//! Resumable uploads a crash left half-made (R6 of issue 14): a record
//! whose file is missing — never created, or renamed away by `finish`
//! before its job was recorded — answers clearly (410 while running, 404
//! or its job after a restart), never 500.

mod common;

use std::path::Path;

use common::{TestApp, Visitor, spawn_app_in};
use reqwest::StatusCode;
use videoshare::owner::Owner;
use videoshare::store::{UploadStore, uploads::new_upload};

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");

/// `POST /files` for `length` bytes named `name`; the upload's path.
async fn create(who: &Visitor, length: usize, name: &str) -> String {
    use base64::Engine;
    let name = base64::engine::general_purpose::STANDARD.encode(name);
    let response = who
        .http
        .post(format!("{}/files", who.base))
        .header(TUS.0, TUS.1)
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", format!("filename {name}"))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

async fn head(who: &Visitor, path: &str) -> reqwest::Response {
    who.http
        .head(format!("{}{path}", who.base))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .expect("head")
}

/// The file holding an upload's bytes.
fn bytes_of(app: &TestApp, path: &str) -> std::path::PathBuf {
    app.data
        .join("tus")
        .join(path.trim_start_matches("/files/"))
}

/// Stops `app`, runs `meanwhile` on its database, and starts it again over
/// `data`, as the same browser (its cookies).
async fn restart<F: Future<Output = ()>>(
    app: TestApp,
    data: &Path,
    meanwhile: impl FnOnce(videoshare::store::Db) -> F,
) -> (TestApp, Visitor) {
    let me = app.me();
    let database = app.data.clone();
    app.stop().await;
    meanwhile(common::db::open_app_db(&database).await).await;
    let mut again = spawn_app_in(data.to_path_buf(), |_| {}).await;
    (again.http, again.cookies) = (me.http, me.cookies);
    let me = again.me();
    (again, me)
}

#[tokio::test]
async fn an_upload_whose_file_vanished_while_running_is_gone_not_an_error() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    let me = app.me();
    let path = create(&me, 1000, "lost.mp4").await;
    assert_eq!(me.tus_patch(&path, 0, &[0; 100]).await.status(), 204);
    std::fs::remove_file(bytes_of(&app, &path)).expect("remove");

    let response = me.tus_patch(&path, 100, &[0; 100]).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(response.headers()["tus-resumable"], "1.0.0");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "upload_lost", "{body}");
    // Forgotten: from now on it is simply unknown.
    assert_eq!(head(&me, &path).await.status(), StatusCode::NOT_FOUND);

    let other = create(&me, 1000, "also-lost.mp4").await;
    std::fs::remove_file(bytes_of(&app, &other)).expect("remove");
    assert_eq!(head(&me, &other).await.status(), StatusCode::GONE);
    assert_eq!(
        me.tus_patch(&other, 0, &[0; 10]).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn a_restart_settles_uploads_a_crash_left_without_their_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let app = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    let me = app.me();

    // A crash between the record and its file, or after `finish` renamed
    // the file away and before a job was submitted.
    let orphan = create(&me, 1000, "orphan.mp4").await;
    assert_eq!(me.tus_patch(&orphan, 0, &[0; 100]).await.status(), 204);
    std::fs::remove_file(bytes_of(&app, &orphan)).expect("remove");

    // A crash after `finish` submitted the job, before it was recorded on
    // the upload: the job is in the uploads table, the file is gone.
    let submitted = create(&me, 2000, "submitted.mp4").await;
    std::fs::remove_file(bytes_of(&app, &submitted)).expect("remove");
    let guid = "{7B3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C47}";
    let (app, me) = restart(app, data.path(), |pool| async move {
        let owner: String =
            sqlx::query_scalar("SELECT owner FROM tus_uploads WHERE file_name = 'submitted.mp4'")
                .fetch_one(pool.pool())
                .await
                .expect("the upload's owner");
        let job = new_upload(
            guid.parse().expect("guid"),
            "submitted.mp4".into(),
            "submitted.mp4".into(),
            2000,
            Owner::parse(&owner).expect("a stored owner"),
            String::new(),
        );
        UploadStore::new(pool.clone())
            .insert(&job)
            .await
            .expect("insert");
        pool.close().await;
    })
    .await;

    let answer = head(&me, &orphan).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND, "removed at start");
    assert_eq!(
        me.tus_patch(&orphan, 0, &[0; 10]).await.status(),
        StatusCode::NOT_FOUND
    );
    let answer = head(&me, &submitted).await;
    assert_eq!(answer.status(), StatusCode::OK, "completed at start");
    assert_eq!(answer.headers()["upload-offset"], "2000");
    assert_eq!(answer.headers()["upload-job"], guid);
    let again = me.tus_patch(&submitted, 2000, &[]).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(again.headers()["upload-job"], guid);
    app.stop().await;
}
