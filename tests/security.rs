//! The portal on the open internet: a foreign page cannot act for a visitor
//! or replace their session; sessions end for real; one client cannot take
//! what the others need (connections, sign-in attempts, upload time, queue
//! room). Each test runs the real app on port 0.

mod common;

use std::time::Duration;

use common::{Visitor, make_clip, spawn_app, spawn_app_in, spawn_app_with};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client with no cookie jar: it sends exactly the headers it is given.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn sets_cookie(response: &reqwest::Response) -> bool {
    response.headers().contains_key("set-cookie")
}

/// Posts `clip` to `/upload` with `cookie` and the `headers` a page sends.
async fn post_video(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    clip: &std::path::Path,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(clip).expect("clip")).file_name("clip.mp4"),
    );
    let mut request = http
        .post(format!("{base}/upload"))
        .header("cookie", cookie)
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.multipart(form).send().await.expect("upload")
}

#[tokio::test]
async fn a_foreign_page_can_neither_act_for_a_visitor_nor_replace_their_session() {
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 1, 160, 120);
    let me = app.me();
    let guid = me.upload_ok(&clip).await;
    let cookie = me.cookie_header().expect("a session");
    let http = bare_client();

    // A form on another site posting to any path (one that does not exist
    // too), with the visitor's cookie or without: 403, and never a cookie.
    let foreign: [(&str, &str); 3] = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
    ];
    for path in [
        "/no/such/page",
        "/account/logout",
        &format!("/api/jobs/{guid}/stop"),
    ] {
        for (name, value) in foreign {
            for with_cookie in [true, false] {
                let mut request = http.post(format!("{}{path}", app.base)).header(name, value);
                if with_cookie {
                    request = request.header("cookie", &cookie);
                }
                let response = request.send().await.expect("post");
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {name}");
                assert!(!sets_cookie(&response), "{path} {name}: a cookie was set");
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["code"], "foreign_origin");
            }
        }
    }
    // The same for a real video posted to /upload: refused, nothing queued.
    let foreign_upload = [("origin", "http://evil.example")];
    let response = post_video(&http, &app.base, &cookie, &clip, &foreign_upload).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!sets_cookie(&response));
    assert_eq!(me.queue().await, vec![guid.clone()]);
    // A foreign page's image or script request (a GET) gets no cookie either.
    let response = http
        .get(format!("{}/api/videos", app.base))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!sets_cookie(&response));

    // The page's own requests pass: same origin, by both headers.
    let own_page = [
        ("origin", app.base.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let response = post_video(&http, &app.base, &cookie, &clip, &own_page).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(me.queue().await.len(), 2);
}

#[tokio::test]
async fn signing_out_a_password_change_and_sign_out_everywhere_end_sessions_for_real() {
    let app = spawn_app_with(|a| a.portal.accounts = true).await;
    let laptop = app.me();
    let password = [("name", "ann"), ("password", "correct horse")];
    let (status, _) = laptop.form("/account/register", &password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("ann"));

    // A copy of the cookie works only as long as its session does.
    let stolen = laptop.cookie_header().expect("cookie");
    let thief = bare_client();
    let thief_sees = || async {
        let page = thief
            .get(format!("{}/account", app.base))
            .header("cookie", &stolen)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("page");
        page.contains("Signed in as")
    };
    assert!(thief_sees().await);
    let (status, _) = laptop.form("/account/logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(laptop.signed_in_as().await, None);
    assert!(!thief_sees().await, "a signed-out session still works");

    // Signing in always gives a fresh session, never the one held before.
    let before = laptop.cookie_header().expect("anonymous cookie");
    laptop.form("/account/login", &password).await;
    let after = laptop.cookie_header().expect("signed-in cookie");
    assert_ne!(before, after);
    assert_ne!(stolen, after);

    // A password change ends every other session; this browser stays in.
    let phone = app.visitor();
    phone.form("/account/login", &password).await;
    assert_eq!(phone.signed_in_as().await.as_deref(), Some("ann"));
    let wrong = [("current", "not it at all"), ("new", "battery staple")];
    let (status, page) = laptop.form("/account/password", &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("current password is wrong"), "{page}");
    assert_eq!(phone.signed_in_as().await.as_deref(), Some("ann"));
    let change = [("current", "correct horse"), ("new", "battery staple")];
    let (status, _) = laptop.form("/account/password", &change).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("ann"));
    assert_eq!(
        phone.signed_in_as().await,
        None,
        "the phone stayed signed in"
    );
    let (status, _) = phone.form("/account/login", &password).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old password still works"
    );
    let new_password = [("name", "ann"), ("password", "battery staple")];
    phone.form("/account/login", &new_password).await;
    assert_eq!(phone.signed_in_as().await.as_deref(), Some("ann"));

    // "Sign out everywhere" ends them all.
    let (status, _) = phone.form("/account/logout-everywhere", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.signed_in_as().await, None);
    assert_eq!(laptop.signed_in_as().await, None);
}

#[tokio::test]
async fn cookies_last_fourteen_days_and_are_secure_behind_https_or_when_asked() {
    let app = spawn_app().await;
    let cookie_of = |response: &reqwest::Response| {
        response.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let http = bare_client();
    let plain = http.get(&app.base).send().await.expect("get");
    let plain = cookie_of(&plain);
    assert!(plain.contains("Max-Age=1209600"), "{plain}");
    assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
    assert!(!plain.contains("Secure"), "{plain}");
    let proxied = http
        .get(&app.base)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("get");
    assert!(cookie_of(&proxied).contains("Secure"));

    let strict = spawn_app_with(|a| a.portal.security.secure_cookies = true).await;
    let response = http.get(&strict.base).send().await.expect("get");
    assert!(cookie_of(&response).contains("Secure"));
}

#[tokio::test]
async fn a_rotated_key_signs_nobody_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 1, 160, 120);
    let first = spawn_app_in(dir.path().to_path_buf(), |_| {}).await;
    let guid = first.me().upload_ok(&clip).await;
    let (http, cookies) = (first.http.clone(), first.cookies.clone());
    first.stop().await;

    videoshare::portal::session::keys::rotate(dir.path()).expect("rotate");
    let second = spawn_app_in(dir.path().to_path_buf(), |_| {}).await;
    let browser = Visitor {
        http,
        cookies,
        base: second.base.clone(),
        http_addr: second.http_addr,
    };
    let old_cookie = browser.cookie_header().expect("cookie");
    assert_eq!(browser.queue().await, vec![guid]);
    // ... and the cookie was signed again with the new key.
    assert_ne!(browser.cookie_header().expect("cookie"), old_cookie);
}

#[tokio::test]
async fn sign_in_floods_are_answered_429_with_retry_after() {
    let app = spawn_app_with(|a| {
        a.portal.accounts = true;
        a.portal.security.sign_in_per_minute = 3;
    })
    .await;
    let attacker = app.visitor();
    let guess = [("name", "ann"), ("password", "guess guess")];
    for _ in 0..3 {
        let (status, _) = attacker.form("/account/login", &guess).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = attacker
        .http
        .post(format!("{}/account/login", app.base))
        .form(&guess)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "too_many_attempts");
}

/// Reads what the server sends on `stream` until it closes (or `limit`).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut got)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_app_with(|a| a.portal.security.http_per_client = 3).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(
            tokio::net::TcpStream::connect(app.http_addr)
                .await
                .expect("connect"),
        );
    }
    // The fourth gets a clear answer and is closed; eventually, the first
    // three being counted, not racing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let mut extra = tokio::net::TcpStream::connect(app.http_addr)
            .await
            .expect("connect");
        let _ = extra.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let reply = read_until_closed(&mut extra, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        if reply.starts_with("HTTP/1.1 429") || tokio::time::Instant::now() > deadline {
            break reply;
        }
    };
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    // Closing one makes room again.
    drop(idle.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answered = bare_client()
            .get(format!("{}/healthz", app.base))
            .send()
            .await;
        if answered.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_upload_that_trickles_in_is_ended_and_leaves_nothing() {
    let app = spawn_app_with(|a| {
        a.portal.security.upload_window_secs = 1;
        a.portal.security.upload_min_bytes = 4096;
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    let boundary = "trickle";
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\ncontent-length: 100000\r\n\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"slow.mp4\"\r\n\
         content-type: video/mp4\r\n\r\n",
        app.http_addr
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    // One byte every 200 ms: far below 4 KiB a second. The server must end
    // it within a few windows (the test gives it 15 s, sending all along).
    let started = tokio::time::Instant::now();
    let ended = loop {
        if stream.write_all(b"x").await.is_err() {
            break true;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => {
                let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(reply.starts_with("HTTP/1.1 4"), "{reply}");
                break true;
            }
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(15) {
            break false;
        }
    };
    assert!(ended, "a trickling upload was still open after 15 s");
    // Nothing of it stays behind.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !common::names_in(&app.tmp_uploads_dir()).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "temp file left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(common::names_in(&app.uploaded_dir()).is_empty());
}

#[tokio::test]
async fn one_user_has_a_cap_on_unfinished_jobs_and_resumable_uploads() {
    use videoshare::carbon::message::{NodeCommand, NodeCommandKind, NodeSettings};
    let app = spawn_app_with(|a| {
        a.portal.security.max_queued_per_user = 2;
        a.portal.security.max_resumable_per_user = 2;
    })
    .await;
    // A node that takes nothing keeps jobs QUEUED.
    let carbon = videoshare::carbon::Client::new(app.carbon.to_string());
    carbon
        .node_command(NodeCommand {
            kind: NodeCommandKind::SetNodeStatus,
            node_ip: None,
            settings: NodeSettings {
                enabled: Some(false),
                ..NodeSettings::default()
            },
        })
        .await
        .expect("disable the node");
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "clip.mp4", 1, 160, 120);
    let me = app.me();
    me.upload_ok(&clip).await;
    me.upload_ok(&clip).await;
    let response = app.upload_file(&clip).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "too_many_jobs");
    assert!(body["message"].as_str().unwrap_or("").contains("2 videos"));
    // Someone else is not held back by it.
    app.visitor().upload_ok(&clip).await;

    let other = app.visitor();
    for expected in [
        StatusCode::CREATED,
        StatusCode::CREATED,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let response = other
            .http
            .post(format!("{}/files", other.base))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "1000")
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), expected);
    }
}

#[tokio::test]
async fn a_websocket_message_larger_than_a_request_ends_the_socket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app().await;
    let mut socket = app.websocket().await;
    let _queue = common::next_json(&mut socket).await;
    let huge = format!(r#"{{"type":"watch","guid":"{}"}}"#, "x".repeat(64 * 1024));
    let _ = socket.send(Message::Text(huge.into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true));
}

#[tokio::test]
async fn a_form_upload_still_arriving_when_the_browser_signs_in_lands_in_the_account() {
    let app = spawn_app_with(|a| a.portal.accounts = true).await;
    let files = tempfile::tempdir().expect("tempdir");
    let clip = std::fs::read(make_clip(files.path(), "clip.mp4", 1, 160, 120)).expect("clip");
    let browser = app.me();
    browser.get_json("/api/jobs").await;
    let cookie = browser.cookie_header().expect("anonymous cookie");

    // The upload starts under the anonymous identity ...
    let mut body = b"--b\r\ncontent-disposition: form-data; name=\"file\"; \
        filename=\"clip.mp4\"\r\ncontent-type: video/mp4\r\n\r\n"
        .to_vec();
    body.extend_from_slice(&clip);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {}\r\ncookie: {cookie}\r\naccept: application/json\r\n\
         content-type: multipart/form-data; boundary=b\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        app.http_addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.expect("first half");

    // ... the browser signs in (another tab) ...
    let account = [("name", "ann"), ("password", "correct horse")];
    let (status, _) = browser.form("/account/register", &account).await;
    assert_eq!(status, StatusCode::OK);

    // ... and the rest arrives: the job is the account's.
    stream.write_all(&body[half..]).await.expect("second half");
    let reply = read_until_closed(&mut stream, Duration::from_secs(60))
        .await
        .expect("a reply");
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    let json = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let accepted: Value = serde_json::from_str(json.trim()).expect("json reply");
    let guid = accepted["guid"].as_str().expect("guid").to_owned();
    assert_eq!(browser.queue().await, vec![guid.clone()]);
    let phone = app.visitor();
    phone.form("/account/login", &account).await;
    assert_eq!(phone.queue().await, vec![guid]);
}
