//! Fixes for what the review of issue 14 found, each against the real app:
//! a video whose outputs could not be fetched at completion is still
//! linked to its owner (R1); an unreachable encoder does not make every
//! page wait for it (R3); the library probes a new file once however many
//! listings overlap, and a private library's byte ranges never list the
//! folder (R8).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{DEADLINE, Visitor, make_clip, spawn_app_with};
use videoshare::app::App;
use videoshare::config::{
    ConnectArgs, DataArgs, EncoderArgs, EncoderConnection, PortalArgs, ServeArgs,
};

/// Reads one Carbon frame (`CarbonAPIXML1 <n> <payload>`), header included.
async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut frame = Vec::new();
    while frame.iter().filter(|b| **b == b' ').count() < 2 {
        if frame.len() > 64 {
            return None;
        }
        frame.push(stream.read_u8().await.ok()?);
    }
    let size: usize = std::str::from_utf8(&frame)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    let start = frame.len();
    frame.resize(start + size, 0);
    stream.read_exact(&mut frame[start..]).await.ok()?;
    Some(frame)
}

/// A Carbon proxy (one request per connection) to `upstream` that cuts the
/// connection of the next `cut` requests naming `QueryInfo` without an
/// answer, as an encoder restarting at that moment would.
async fn flaky_proxy(upstream: SocketAddr, cut: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let cut = cut.clone();
            tokio::spawn(async move {
                let Some(frame) = read_frame(&mut client).await else {
                    return;
                };
                let query_info = String::from_utf8_lossy(&frame).contains("QueryInfo");
                if query_info
                    && cut
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                {
                    return; // dropped: the client sees the connection close
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if server.write_all(&frame).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

/// A portal alone (as `videoshare portal`) over `data`, talking Carbon to
/// `encoder` with `timeout_secs` per request.
async fn portal_for(
    data: &std::path::Path,
    encoder: SocketAddr,
    timeout_secs: u64,
    private_library: bool,
) -> App {
    let mut portal = ServeArgs::ephemeral(data.to_path_buf()).portal;
    portal.poll_ms = 100;
    portal.private_library = private_library;
    let args = PortalArgs {
        data: DataArgs {
            data: data.to_path_buf(),
        },
        database: Default::default(),
        portal,
        connect: ConnectArgs {
            encoder: encoder.to_string(),
            timeout_secs,
        },
        encoder_uploaded: None,
        encoder_streams: None,
        encoder_connection: EncoderConnection::OnePerRequest,
    };
    App::build_portal(&args).await.expect("portal starts")
}

fn visitor_of(app: &App) -> Visitor {
    let (http, cookies) = common::session_client();
    let http_addr = app.http_addr().expect("the app runs the portal");
    Visitor {
        http,
        cookies,
        base: format!("http://{http_addr}"),
        http_addr,
    }
}

/// Polls `/api/jobs/{guid}` until the job is done; its last view.
async fn wait_done(who: &Visitor, guid: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, job) = who.get_json(&format!("/api/jobs/{guid}")).await;
        if job["done"] == true {
            return job;
        }
        assert!(Instant::now() < deadline, "job not done in time: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_video_whose_outputs_could_not_be_fetched_at_completion_is_still_its_owners() {
    let data = tempfile::tempdir().expect("tempdir");
    let encoder = App::build_encoder(&EncoderArgs {
        data: DataArgs {
            data: data.path().to_path_buf(),
        },
        database: Default::default(),
        encoder: ServeArgs::ephemeral(data.path().to_path_buf()).encoder,
    })
    .await
    .expect("encoder starts");
    let cut = Arc::new(AtomicUsize::new(1));
    let upstream = encoder.carbon_coder_addr().expect("Carbon Coder listener");
    let proxy = flaky_proxy(upstream, cut.clone()).await;
    let portal = portal_for(data.path(), proxy, 10, true).await;
    let me = visitor_of(&portal);

    let files = tempfile::tempdir().expect("tempdir");
    let guid = me
        .upload_ok(&make_clip(files.path(), "owned.mp4", 1, 160, 120))
        .await;
    let job = wait_done(&me, &guid).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert_eq!(cut.load(Ordering::SeqCst), 0, "the first QueryInfo was cut");
    // Completed is shown only once its video is linked to its owner.
    let outputs = job["outputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(outputs.len(), 1, "the job names its file: {job}");
    let (_, videos) = me.get_json("/api/videos").await;
    let names: Vec<Value> = videos
        .as_array()
        .map(|v| v.iter().map(|v| v["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, outputs, "the private library shows it: {videos}");
    portal.stop().await;
    encoder.stop().await;
}

#[tokio::test]
async fn an_unreachable_encoder_does_not_hold_up_every_page() {
    // Accepts connections and never answers them.
    let hole = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = hole.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hole.accept().await {
            held.push(stream);
        }
    });
    let data = tempfile::tempdir().expect("tempdir");
    let timeout = Duration::from_secs(6);
    let portal = portal_for(data.path(), addr, timeout.as_secs(), false).await;
    let me = visitor_of(&portal);
    let render = |who: Visitor| async move {
        let started = Instant::now();
        let page = who.get_text("/").await;
        (started.elapsed(), page)
    };
    let (first, page) = render(me.clone()).await;
    assert!(
        first < timeout,
        "the first page waits less than the Carbon timeout: {first:?}"
    );
    assert!(page.contains("encoder-unreachable"), "{page}");
    // One after another, then all at once: none waits for the encoder.
    for _ in 0..3 {
        let (took, page) = render(me.clone()).await;
        assert!(took < timeout / 2, "a page took {took:?}");
        assert!(page.contains("encoder-unreachable"));
    }
    let together = futures_util::future::join_all((0..4).map(|_| render(me.clone()))).await;
    for (took, _) in together {
        assert!(took < timeout / 2, "a page took {took:?}");
    }
    portal.stop().await;
}

/// Uploads a 1 s clip named `name` as `who`; its job once COMPLETED.
async fn encoded(who: &Visitor, name: &str) -> Value {
    let files = tempfile::tempdir().expect("tempdir");
    let guid = who
        .upload_ok(&make_clip(files.path(), name, 1, 160, 120))
        .await;
    let job = wait_done(who, &guid).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    job
}

/// A counter from `/metrics`.
async fn counter(who: &Visitor, name: &str) -> u64 {
    let text = who.get_text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} "))?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn overlapping_listings_probe_a_new_file_once() {
    let app = spawn_app_with(|_| {}).await;
    let me = app.me();
    let files = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(files.path(), "new.mp4", 1, 160, 120);
    std::fs::copy(&clip, app.streams_dir().join("new.mp4")).expect("copy");
    // Four listings at once, as four browsers opening the library.
    let listings = futures_util::future::join_all((0..4).map(|_| me.get_json("/api/videos"))).await;
    for (status, videos) in listings {
        assert_eq!(status, 200);
        assert_eq!(videos[0]["name"], "new.mp4", "{videos}");
        assert!(videos[0]["thumb"].is_string(), "{videos}");
    }
    assert_eq!(counter(&me, "videoshare_library_probes_total").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_range_request_in_a_private_library_does_not_list_the_folder() {
    let app = spawn_app_with(|args| args.portal.private_library = true).await;
    let me = app.me();
    let job = encoded(&me, "mine.mp4").await;
    let url = format!(
        "{}/streams/{}",
        me.base,
        job["outputs"][0].as_str().expect("a file")
    );
    let before = counter(&me, "videoshare_library_listings_total").await;
    let first_bytes = |who: Visitor| {
        let url = url.clone();
        async move {
            let part = who.http.get(&url).header("Range", "bytes=0-99").send();
            part.await.expect("range").status()
        }
    };
    for _ in 0..3 {
        assert_eq!(first_bytes(me.clone()).await, 206);
    }
    let stranger = first_bytes(app.visitor()).await;
    assert_eq!(stranger, 404, "another user's video is not found");
    assert_eq!(
        counter(&me, "videoshare_library_listings_total").await,
        before,
        "byte ranges are checked against the owner index, not a listing"
    );
    app.stop().await;
}

#[tokio::test]
async fn completed_uploads_recorded_without_their_outputs_are_linked_again_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let private = |args: &mut ServeArgs| args.portal.private_library = true;
    let app = common::spawn_app_in(data.path().to_path_buf(), private).await;
    let me = app.me();
    let job = encoded(&me, "relink.mp4").await;
    let folder = app.data.clone();
    app.stop().await;
    // As a portal from before outputs were required with completion left it.
    let pool = common::db::open_app_db(&folder).await;
    sqlx::query("DELETE FROM upload_outputs")
        .execute(pool.pool())
        .await
        .expect("delete");
    pool.close().await;

    let mut again = common::spawn_app_in(data.path().to_path_buf(), private).await;
    (again.http, again.cookies) = (me.http, me.cookies);
    let me = again.me();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, videos) = me.get_json("/api/videos").await;
        if videos.as_array().is_some_and(|v| !v.is_empty()) {
            assert_eq!(videos[0]["name"], job["outputs"][0], "{videos}");
            break;
        }
        assert!(Instant::now() < deadline, "never linked again: {videos}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    again.stop().await;
}
