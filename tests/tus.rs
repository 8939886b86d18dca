//! Resumable uploads (tus 1.0 core + creation + termination) against the
//! real portal: an upload sent in pieces, interrupted, resumed after a
//! restart, refused when it breaks the protocol, and private to its session.

mod common;

use common::{Visitor, make_clip, spawn_app, spawn_app_in, spawn_app_with};
use reqwest::StatusCode;
use serde_json::Value;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");

/// Request headers of a test case.
type Headers = Vec<(&'static str, String)>;

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `POST /files` for `length` bytes named `name`; the upload's path.
async fn create(who: &Visitor, length: usize, name: &str) -> String {
    let response = who
        .http
        .post(format!("{}/files", who.base))
        .header(TUS.0, TUS.1)
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", format!("filename {}", b64(name)))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["tus-resumable"], "1.0.0");
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

/// `HEAD`: the server's offset, or the status when it has none.
async fn offset(who: &Visitor, path: &str) -> Result<usize, StatusCode> {
    let response = who
        .http
        .head(format!("{}{path}", who.base))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .expect("head");
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    assert_eq!(response.headers()["cache-control"], "no-store");
    Ok(response.headers()["upload-offset"]
        .to_str()
        .expect("offset")
        .parse()
        .expect("number"))
}

fn job_of(response: &reqwest::Response) -> String {
    response.headers()["upload-job"]
        .to_str()
        .expect("Upload-Job")
        .to_owned()
}

#[tokio::test]
async fn an_upload_in_pieces_survives_a_restart_and_becomes_a_job() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let clip = std::fs::read(make_clip(files.path(), "trip.mp4", 2, 320, 240)).expect("clip");
    let third = clip.len() / 3;

    let first = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    let me = first.me();
    let options = me
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/files", me.base))
        .send()
        .await
        .expect("options");
    assert_eq!(options.status(), StatusCode::NO_CONTENT);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    assert_eq!(options.headers()["tus-extension"], "creation,termination");

    let path = create(&me, clip.len(), "Trip (day 1).mp4").await;
    assert_eq!(offset(&me, &path).await, Ok(0));
    let response = me.tus_patch(&path, 0, &clip[..third]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()["upload-offset"],
        third.to_string().as_str()
    );
    // Nothing half-received is visible where users look.
    assert!(common::names_in(&first.uploaded_dir()).is_empty());

    // Another browser cannot see, feed or cancel it.
    let other = first.visitor();
    assert_eq!(offset(&other, &path).await, Err(StatusCode::NOT_FOUND));
    let stolen = other.tus_patch(&path, third, &clip[third..]).await;
    assert_eq!(stolen.status(), StatusCode::NOT_FOUND);

    // A restart keeps what was received.
    let (http, cookies) = (me.http.clone(), me.cookies.clone());
    first.stop().await;
    let mut second = spawn_app_in(data.path().to_path_buf(), |_| {}).await;
    (second.http, second.cookies) = (http, cookies);
    let me = second.me();
    assert_eq!(offset(&me, &path).await, Ok(third));

    // A PATCH at the wrong offset is refused and changes nothing.
    let wrong = me.tus_patch(&path, 0, &clip[..10]).await;
    assert_eq!(wrong.status(), StatusCode::CONFLICT);
    assert_eq!(offset(&me, &path).await, Ok(third));

    let response = me.tus_patch(&path, third, &clip[third..]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let guid = job_of(&response);
    // Asking again after the end says the same (a retried last PATCH).
    let again = me.tus_patch(&path, clip.len(), &[]).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(job_of(&again), guid);

    let messages = second.follow_job(&guid).await;
    let last = common::job_updates(&messages)
        .last()
        .map(|j| (*j).clone())
        .expect("updates");
    assert_eq!(last["status"], "COMPLETED", "{last}");
    assert_eq!(last["file"], "Trip (day 1).mp4");
    assert_eq!(common::names_in(&second.uploaded_dir()), ["Trip_day_1.mp4"]);
    second.stop().await;
}

#[tokio::test]
async fn protocol_mistakes_get_clear_refusals() {
    let app = spawn_app_with(|a| a.portal.max_upload = 1 << 20).await;
    let me = app.me();
    let post = |headers: Headers| {
        let mut request = me.http.post(format!("{}/files", me.base));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let cases: Vec<(Headers, StatusCode, &str)> = vec![
        (
            vec![("Upload-Length", "10".into())],
            StatusCode::PRECONDITION_FAILED,
            "tus_version",
        ),
        (
            vec![(TUS.0, "0.2.2".into()), ("Upload-Length", "10".into())],
            StatusCode::PRECONDITION_FAILED,
            "tus_version",
        ),
        (
            vec![(TUS.0, TUS.1.into())],
            StatusCode::BAD_REQUEST,
            "missing_length",
        ),
        (
            vec![(TUS.0, TUS.1.into()), ("Upload-Length", "-5".into())],
            StatusCode::BAD_REQUEST,
            "bad_header",
        ),
        (
            vec![(TUS.0, TUS.1.into()), ("Upload-Length", "0".into())],
            StatusCode::BAD_REQUEST,
            "empty_file",
        ),
        (
            vec![
                (TUS.0, TUS.1.into()),
                ("Upload-Length", (2u64 << 20).to_string()),
            ],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            vec![
                (TUS.0, TUS.1.into()),
                ("Upload-Length", "10".into()),
                ("Upload-Metadata", "filename not*base64".into()),
            ],
            StatusCode::BAD_REQUEST,
            "bad_metadata",
        ),
        (
            vec![
                (TUS.0, TUS.1.into()),
                ("Upload-Length", "10".into()),
                (
                    "Upload-Metadata",
                    format!("preset {}", b64("{00000000-0000-0000-0000-000000000000}")),
                ),
            ],
            StatusCode::BAD_REQUEST,
            "bad_field",
        ),
    ];
    for (headers, status, code) in cases {
        let shown = format!("{headers:?}");
        let response = post(headers).await.expect("post");
        assert_eq!(response.status(), status, "{shown}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], code, "{shown}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // PATCH mistakes: wrong type, too many bytes, unknown upload.
    let path = create(&me, 10, "x.mp4").await;
    let wrong_type = me
        .http
        .patch(format!("{}{path}", me.base))
        .header(TUS.0, TUS.1)
        .header("Upload-Offset", "0")
        .header("Content-Type", "video/mp4")
        .body(vec![0u8; 4])
        .send()
        .await
        .expect("patch");
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let too_many = me.tus_patch(&path, 0, &[1u8; 11]).await;
    assert_eq!(too_many.status(), StatusCode::BAD_REQUEST);
    let nowhere = me
        .tus_patch("/files/0123456789abcdef0123456789abcdef", 0, b"x")
        .await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    let traversal = me
        .tus_patch("/files/..%2F..%2Fvideoshare.db", 0, b"x")
        .await;
    assert_eq!(traversal.status(), StatusCode::NOT_FOUND);

    // Ten bytes that are not a video: complete, then refused with the reason.
    let path = create(&me, 10, "notes.mp4").await;
    let refused = me.tus_patch(&path, 0, b"plain text").await;
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["code"], "not_a_video", "{body}");
    assert_eq!(offset(&me, &path).await, Err(StatusCode::NOT_FOUND));
    assert!(common::names_in(&app.uploaded_dir()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_upload_leaves_nothing() {
    let app = spawn_app().await;
    let me = app.me();
    let path = create(&me, 1000, "gone.mp4").await;
    assert_eq!(
        me.tus_patch(&path, 0, &[7u8; 400]).await.status(),
        StatusCode::NO_CONTENT
    );
    let other = app.visitor();
    let foreign = other
        .http
        .delete(format!("{}{path}", other.base))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .expect("delete");
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let deleted = me
        .http
        .delete(format!("{}{path}", me.base))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(offset(&me, &path).await, Err(StatusCode::NOT_FOUND));
    assert!(common::names_in(&app.data.join("tus")).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_upload_in_flight_when_the_browser_signs_in_lands_in_the_account() {
    let app = spawn_app_with(|a| a.portal.accounts = true).await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = std::fs::read(make_clip(files.path(), "clip.mp4", 1, 160, 120)).expect("clip");
    let browser = app.me();
    let path = create(&browser, clip.len(), "clip.mp4").await;
    let half = clip.len() / 2;
    let response = browser.tus_patch(&path, 0, &clip[..half]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Signing in half way: the rest goes on under the account.
    let account = [("name", "ann"), ("password", "correct horse")];
    let (status, _) = browser.form("/account/register", &account).await;
    assert_eq!(status, StatusCode::OK);
    let response = browser.tus_patch(&path, half, &clip[half..]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let guid = response.headers()["upload-job"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(browser.queue().await, vec![guid.clone()]);
    // The same account in another browser sees it too.
    let phone = app.visitor();
    phone.form("/account/login", &account).await;
    assert_eq!(phone.queue().await, vec![guid]);
}
