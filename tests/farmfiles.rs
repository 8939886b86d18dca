//! The farm's file service and its client, over real sockets: a fetch node
//! downloads a job's source (verified, cached, resumed after a cut, fetched
//! again after a flipped byte) and uploads a chunk's output (placed whole
//! at its target, resumed after a cut, a corrupt file sent again, a stale
//! chunk leaving nothing, at most four files at once), a dead service is
//! passed over, and nodes without a token, a lease or a plain path are
//! refused.
//!
//! The `Authority` is an in-memory one here (`tests/common/farmfiles.rs`): the encoder's (over its
//! store) is tested with the chunk store.

mod common;
#[path = "common/farmfiles.rs"]
mod kit;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use videoshare::farmfiles::{FarmFiles, FetchError, SourceKind, sweep_incoming};

use common::proxy::{Direction, Fault, Proxy};
use kit::{CHUNK, JOB, NODE, Service, TOKEN, body_of, chunk_output, files_under, raw};

#[tokio::test]
async fn a_source_is_downloaded_verified_and_then_served_from_the_cache() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(600_000);
    let cache = service.path("node/fetch");
    let client = service.client();

    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(got, cache.join(&sha));
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    assert!(!cache.join(format!("{sha}.part")).exists());
    assert_eq!(service.seen("GET").len(), 1);

    let again = client
        .fetch_source(JOB, SourceKind::Video, &sha.to_uppercase(), &cache)
        .await
        .expect("cached");
    assert_eq!(again, got);
    assert_eq!(
        service.seen("GET").len(),
        1,
        "the second fetch asked nothing"
    );

    // The answer names the file by its digest and serves ranges.
    let url = format!("http://{}/farm/v1/jobs/{JOB}/source", service.addr);
    let response = reqwest::Client::new()
        .get(&url)
        .header("x-videoshare-node", NODE)
        .bearer_auth(TOKEN)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("range request");
    assert_eq!(response.status(), 206);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("etag"), format!("\"sha256-{sha}\""));
    assert!(
        header("repr-digest").starts_with("sha-256=:"),
        "{}",
        header("repr-digest")
    );
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        &bytes[100..200]
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_download_is_caught_and_fetched_again() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(600_000);
    let flip = Fault::Flip {
        direction: Direction::Download,
        at: 100_000,
    };
    let proxy = Proxy::start(service.addr, flip).await;
    let cache = service.path("node/fetch");

    let client = service.client_via(proxy.addr);
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched after a retry");
    assert!(proxy.fired(), "a byte was flipped");
    assert_eq!(client.retries().downloads, 1);
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let gets = service.seen("GET");
    assert_eq!(gets.len(), 2, "fetched twice: {gets:?}");
    assert!(
        gets.iter().all(|g| g.range.is_none()),
        "both from byte 0: {gets:?}"
    );
}

#[tokio::test]
async fn a_download_cut_midway_resumes_with_a_range_request() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(900_000);
    let cut = Fault::Cut {
        direction: Direction::Download,
        after: 300_000,
    };
    let proxy = Proxy::start(service.addr, cut).await;
    let cache = service.path("node/fetch");

    let got = service
        .client_via(proxy.addr)
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched after a resume");
    assert!(proxy.fired(), "the download was cut");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let gets = service.seen("GET");
    let resumed = gets
        .iter()
        .find(|g| g.range.is_some())
        .expect("a Range request");
    let from: u64 = resumed
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .expect("bytes=N-");
    assert!(from > 0 && from <= 300_000, "resumed from {from}");
    assert_eq!(resumed.status, 206);
}

#[tokio::test]
async fn a_partial_download_left_by_a_crash_is_resumed_and_still_verified() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(200_000);
    let cache = service.path("node/fetch");
    std::fs::create_dir_all(&cache).expect("cache");
    // The crash left 1000 bytes, one of them wrong.
    let mut left = bytes[..1000].to_vec();
    left[10] ^= 0xff;
    std::fs::write(cache.join(format!("{sha}.part")), &left).expect("part");

    let client = service.client();
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let ranges: Vec<Option<String>> = service.seen("GET").into_iter().map(|g| g.range).collect();
    assert_eq!(
        ranges,
        [Some("bytes=1000-".to_owned()), None],
        "resumed, then anew"
    );
    assert_eq!(client.retries().downloads, 1);

    // A whole file left before its rename: one request (416), no download.
    std::fs::remove_file(&got).expect("remove");
    std::fs::write(cache.join(format!("{sha}.part")), &bytes).expect("part");
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &cache)
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(&got).expect("cached"), bytes);
    let last = service.seen("GET").pop().expect("a request");
    assert_eq!(last.status, 416);
}

#[tokio::test]
async fn an_uploaded_chunk_lands_whole_at_its_target() {
    lands_whole(Service::start().await).await;
}

#[tokio::test]
async fn an_upload_waiting_on_another_file_system_is_copied_whole_into_place() {
    let service = Service::start_with_incoming_on_tmpfs().await;
    let device = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").dev();
    assert_ne!(
        device(&service.incoming),
        device(service.dir.path()),
        "the test needs /dev/shm on a file system of its own"
    );
    let work = lands_whole(service).await;
    assert_eq!(
        work,
        ["v00003.1"],
        "no staging copy is left beside the target"
    );
}

/// Uploads `CHUNK` through `service` and checks it landed whole, once, with
/// nothing left waiting; returns what is in the targets' folder.
async fn lands_whole(service: Service) -> Vec<String> {
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);

    let client = service.client();
    client.upload_chunk(CHUNK, &output).await.expect("uploaded");
    assert_eq!(files_under(&target), files);
    assert_eq!(client.retries(), Default::default());
    let delivered = service.authority.delivered.lock().clone();
    assert_eq!(delivered.len(), 1);
    let (chunk, folder, present) = &delivered[0];
    assert_eq!((chunk, folder), (&CHUNK, &target));
    assert_eq!(
        present,
        &files.keys().cloned().collect::<Vec<_>>(),
        "every file was in place when the delivery was recorded"
    );
    assert!(
        service.only_placed_record_left(),
        "{:?}",
        service.incoming()
    );
    assert_eq!(
        service.complete_again().await,
        200,
        "a lost answer is given again"
    );
    assert_eq!(
        service.authority.delivered.lock().len(),
        1,
        "delivered once"
    );
    assert_eq!(
        sweep_incoming(&service.incoming, Duration::from_secs(3600)).await,
        0
    );
    assert_eq!(sweep_incoming(&service.incoming, Duration::ZERO).await, 1);
    assert!(service.incoming_is_empty());
    let mut work: Vec<String> = std::fs::read_dir(service.path("shared/work"))
        .expect("the targets' folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    work.sort();
    work
}

#[tokio::test]
async fn an_upload_cut_midway_resumes_where_the_service_stopped() {
    let service = Service::start().await;
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);
    let cut = Fault::Cut {
        direction: Direction::Upload,
        after: 150_000,
    };
    let proxy = Proxy::start(service.addr, cut).await;

    let client = service.client_via(proxy.addr);
    client
        .upload_chunk(CHUNK, &output)
        .await
        .expect("uploaded after a resume");
    assert!(proxy.fired(), "the upload was cut");
    assert!(
        proxy.sent_after_fault(b"HEAD /farm/v1/chunks/"),
        "asked where to go on"
    );
    assert!(client.retries().uploads >= 1);
    assert_eq!(files_under(&target), files);
    let patches = service.seen("PATCH");
    assert!(
        patches.iter().any(|p| p.status == 400),
        "one PATCH broke off: {patches:?}"
    );
}

#[tokio::test]
async fn a_flipped_byte_in_an_upload_is_refused_and_the_file_sent_again() {
    let service = Service::start().await;
    let target = service.lease_chunk(CHUNK, "v00003.1");
    let output = service.path("node/out");
    let files = chunk_output(&output);
    // Past the manifest and the first PATCH's headers: inside the first
    // file's bytes.
    let flip = Fault::Flip {
        direction: Direction::Upload,
        at: 100_000,
    };
    let proxy = Proxy::start(service.addr, flip).await;

    let client = service.client_via(proxy.addr);
    client
        .upload_chunk(CHUNK, &output)
        .await
        .expect("uploaded after a retry");
    assert!(proxy.fired(), "a byte was flipped");
    assert_eq!(client.retries().uploads, 1);
    let completes: Vec<u16> = service
        .seen("POST")
        .iter()
        .filter(|s| s.path.ends_with("/complete"))
        .map(|s| s.status)
        .collect();
    assert_eq!(completes, [422, 200]);
    assert_eq!(files_under(&target), files);
    assert!(
        service.only_placed_record_left(),
        "{:?}",
        service.incoming()
    );
}

#[tokio::test]
async fn a_stale_chunk_is_told_so_and_leaves_nothing_behind() {
    let service = Service::start().await;
    let output = service.path("node/out");
    chunk_output(&output);
    let client = service.client();

    // Not held at all: refused at the manifest.
    let not_held = client.upload_chunk(CHUNK, &output).await;
    assert!(
        matches!(not_held, Err(FetchError::Stale(_))),
        "{not_held:?}"
    );

    // Held, but lost before the delivery was recorded.
    let target = service.lease_chunk(CHUNK, "v00003.1");
    service.authority.lost_lease.store(true, Ordering::SeqCst);
    let lost = client.upload_chunk(CHUNK, &output).await;
    assert!(matches!(lost, Err(FetchError::Stale(_))), "{lost:?}");
    assert!(!target.exists(), "the placed folder was removed");
    assert!(service.incoming_is_empty(), "nothing left in incoming");
    assert!(service.authority.delivered.lock().is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_401() {
    let service = Service::start().await;
    let (_, sha) = service.lease_source(1000);
    let url = format!("http://{}/farm/v1/jobs/{JOB}/source", service.addr);
    let http = reqwest::Client::new();
    for (node, token) in [(NODE, "vsn_wrong"), ("enc3", TOKEN), ("", TOKEN)] {
        let response = http
            .get(&url)
            .header("x-videoshare-node", node)
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 401, "{node} {token}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized");
    }
    let client = FarmFiles::new(vec![format!("http://{}", service.addr)], NODE, "vsn_wrong")
        .expect("client");
    let refused = client
        .fetch_source(JOB, SourceKind::Video, &sha, &service.path("node/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 401, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_node_without_a_lease_may_not_read_a_source() {
    let service = Service::start().await;
    let (_, sha) = service.lease_source(1000);
    let other = FarmFiles::new(vec![format!("http://{}", service.addr)], "enc3", "vsn_enc3")
        .expect("client");
    let refused = other
        .fetch_source(JOB, SourceKind::Video, &sha, &service.path("enc3/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 403, ref code, .. }) if code == "no_lease"),
        "{refused:?}"
    );
    // Nor the audio, which NODE does not hold either.
    let refused = service
        .client()
        .fetch_source(JOB, SourceKind::Audio, &sha, &service.path("node/fetch"))
        .await;
    assert!(
        matches!(refused, Err(FetchError::Refused { status: 403, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_manifest_path_that_leaves_the_folder_is_refused_with_400() {
    let service = Service::start().await;
    service.lease_chunk(CHUNK, "v00003.1");
    let url = format!("http://{}/farm/v1/chunks/{JOB}/3/1", service.addr);
    let http = reqwest::Client::new();
    for path in [
        "../escape.m4s",
        "/etc/passwd",
        "720p/./seg.m4s",
        "a/../../b",
    ] {
        let manifest = serde_json::json!([{"path": path, "size": 1, "sha256": "0".repeat(64)}]);
        let response = http
            .post(&url)
            .header("x-videoshare-node", NODE)
            .bearer_auth(TOKEN)
            .json(&manifest)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "bad_manifest", "{path}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(path)),
            "{body}"
        );
    }
    assert!(service.incoming_is_empty());
    assert!(!service.path("escape.m4s").exists());
}

#[tokio::test]
async fn upload_protocol_mistakes_get_clear_refusals() {
    use reqwest::Method;
    let service = Service::start().await;
    service.lease_chunk(CHUNK, "v00003.1");
    let chunk = format!("/farm/v1/chunks/{JOB}/3/1");
    let file = format!("{chunk}/files/720p/seg00001.m4s");
    let manifest = serde_json::json!([
        {"path": "720p/seg00001.m4s", "size": 4, "sha256": kit::sha256_hex(b"abcd")},
    ]);
    let created = raw(&service, Method::POST, &chunk, NODE, TOKEN)
        .json(&manifest)
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    let patch = |offset: Option<&str>, body: &'static [u8]| {
        let request = raw(&service, Method::PATCH, &file, NODE, TOKEN).body(body);
        match offset {
            Some(offset) => request.header("upload-offset", offset),
            None => request,
        }
    };
    let error = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let offset = response
            .headers()
            .get("upload-offset")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body: serde_json::Value = response.json().await.expect("json error");
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
            offset,
        )
    };

    let sent = patch(None, b"ab").send().await.expect("answer");
    assert_eq!(error(sent).await, (400, "missing_offset".into(), None));
    let sent = patch(Some("0"), b"ab").send().await.expect("answer");
    assert_eq!(sent.status(), 204);
    let sent = patch(Some("0"), b"cd").send().await.expect("answer");
    assert_eq!(
        error(sent).await,
        (409, "offset_mismatch".into(), Some("2".into()))
    );

    // Before every byte is in, complete names the file and empties it.
    let complete = format!("{chunk}/complete");
    let early = raw(&service, Method::POST, &complete, NODE, TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(early.status(), 422);
    let body: serde_json::Value = early.json().await.expect("json");
    assert_eq!(body["path"], "720p/seg00001.m4s");
    let head = raw(&service, Method::HEAD, &file, NODE, TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(head.headers()["upload-offset"], "0");

    // Past the declared size: refused (a piece that does not fit is not
    // written), then the right bytes go in.
    let sent = patch(Some("0"), b"abcdef").send().await.expect("answer");
    assert_eq!(
        error(sent).await,
        (400, "upload_interrupted".into(), Some("0".into()))
    );
    let sent = patch(Some("0"), b"abcd").send().await.expect("answer");
    assert_eq!(sent.status(), 204);
    assert_eq!(sent.headers()["upload-offset"], "4");

    let unknown = format!("{chunk}/files/720p/other.m4s");
    let head = raw(&service, Method::HEAD, &unknown, NODE, TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 404);
    let theirs = raw(&service, Method::HEAD, &file, "enc3", "vsn_enc3")
        .send()
        .await
        .expect("answer");
    assert_eq!(theirs.status(), 403, "another node's upload");
    let bad_chunk = raw(
        &service,
        Method::POST,
        &format!("/farm/v1/chunks/{JOB}/x/1"),
        NODE,
        TOKEN,
    )
    .json(&manifest)
    .send()
    .await
    .expect("answer");
    assert_eq!(error(bad_chunk).await.1, "bad_chunk");

    let done = raw(&service, Method::POST, &complete, NODE, TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(done.status(), 200);
    assert_eq!(
        std::fs::read(service.path("shared/work/v00003.1/720p/seg00001.m4s")).expect("placed"),
        b"abcd"
    );
}

#[tokio::test]
async fn a_node_sends_at_most_four_files_at_once() {
    use reqwest::Method;
    let service = Service::start().await;
    service.lease_chunk(CHUNK, "v00003.1");
    let chunk = format!("/farm/v1/chunks/{JOB}/3/1");
    let names: Vec<String> = (1..=5).map(|i| format!("seg{i}.m4s")).collect();
    let manifest: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({"path": n, "size": 1_000_000, "sha256": "0".repeat(64)}))
        .collect();
    let created = raw(&service, Method::POST, &chunk, NODE, TOKEN)
        .json(&manifest)
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);

    // Four PATCHes whose bodies stall part way hold the node's places:
    // more than the server buffers, so HEAD shows they are writing (a HEAD
    // takes no place; a probing PATCH would, and could crowd one out).
    let mut stalled = Vec::new();
    let mut senders = Vec::new();
    for name in &names[..4] {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        tx.send(Ok(vec![b'x'; 600_000])).await.expect("first bytes");
        senders.push(tx);
        let file = format!("{chunk}/files/{name}");
        let request = raw(&service, Method::PATCH, &file, NODE, TOKEN)
            .header("upload-offset", "0")
            .body(body_of(rx));
        stalled.push(tokio::spawn(request.send()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let head = raw(&service, Method::HEAD, &file, NODE, TOKEN)
                .send()
                .await
                .expect("answer");
            if head.headers()["upload-offset"] != "0" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let fifth = format!("{chunk}/files/{}", names[4]);
    let sent = raw(&service, Method::PATCH, &fifth, NODE, TOKEN)
        .header("upload-offset", "0")
        .body("y")
        .send()
        .await
        .expect("answer");
    assert_eq!(sent.status(), 429);
    let body: serde_json::Value = sent.json().await.expect("json");
    assert_eq!(body["error"], "too_many_uploads");

    // Once they end, the places are free again.
    drop(senders);
    for request in stalled {
        let answer = request.await.expect("task").expect("answer");
        assert_eq!(answer.status(), 204);
    }
    let sent = raw(&service, Method::PATCH, &fifth, NODE, TOKEN)
        .header("upload-offset", "0")
        .body("y")
        .send()
        .await
        .expect("answer");
    assert_eq!(sent.status(), 204);
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_passed_over_for_the_next() {
    let service = Service::start().await;
    let (bytes, sha) = service.lease_source(50_000);
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = gone.local_addr().expect("addr");
    drop(gone);
    let bases = vec![format!("http://{dead}"), format!("http://{}", service.addr)];
    let client = FarmFiles::new(bases, NODE, TOKEN).expect("client");
    let got = client
        .fetch_source(JOB, SourceKind::Video, &sha, &service.path("node/fetch"))
        .await
        .expect("fetched from the second");
    assert_eq!(std::fs::read(got).expect("cached"), bytes);
    assert!(format!("{client:?}").contains("<redacted>"), "{client:?}");
    assert!(!format!("{client:?}").contains(TOKEN));
}
