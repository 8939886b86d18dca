//! The encoder's Carbon socket, driven with raw bytes (not our client): the
//! seed's own XML templates, its way of parsing replies, several requests per
//! connection, and protocol errors that must not kill the connection or the
//! server.

mod common;

use std::time::Duration;

use common::{DEADLINE, make_clip, spawn_app};
use quick_xml::events::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEED_SUBMIT: &str = "<cnpsXML TaskType=\"JobQueue\">\n<Sources>\n<Module_0 Filename=\"c:\\videoshare\\uploaded\\:::filename:::\"/>\n</Sources>\n<Destinations><Module_0\nPresetGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nModuleGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nAssignedTags=\"\"><ModuleData CML_P_Path=\"C:\\Program\nFiles\\Adobe\\Flash Media Server\n3.5\\applications\\videoshare\\streams\\_definst_\" CML_P_BaseFileName=\"%s\"/><PostconversionTasks/><Filter_1/><Filter_0/></Module_0></Destinations>\n</cnpsXML>";

const SEED_STATUS: &str = "<cnpsXML TaskType=\"JobStatusList\">\n<Filter>\n<Criteria_0 Parameter =\"Guid\" Operator=\"EQUAL\" Value=\":::guid:::\" />\n</Filter>\n</cnpsXML>";

/// How often the seed's page asks (`setTimeout(checkEncodingStatus, 2000)`).
const SEED_POLL: Duration = Duration::from_secs(2);

/// Frames `xml` the way the seed's `submitFMESCommand` does (ISO-8859-1).
fn frame(xml: &str) -> Vec<u8> {
    let payload: Vec<u8> = xml
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect();
    let mut out = format!("CarbonAPIXML1 {} ", payload.len()).into_bytes();
    out.extend(payload);
    out
}

/// One `read()`, as the seed's `dataHandler` gets one socket-data event.
/// The whole frame must be in it.
async fn read_once(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("a reply in time")
        .expect("read");
    buf.truncate(n);
    let text = String::from_utf8_lossy(&buf);
    let declared: usize = text
        .strip_prefix("CarbonAPIXML1 ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a frame: {text}"));
    let header = "CarbonAPIXML1 ".len() + declared.to_string().len() + 1;
    assert_eq!(
        buf.len(),
        header + declared,
        "the whole frame arrives in one read: {text}"
    );
    buf
}

/// The first `count` frames' payloads in `bytes`, once all have arrived.
fn complete_frames(bytes: &[u8], count: usize) -> Option<Vec<String>> {
    let mut rest = bytes;
    let mut payloads = Vec::new();
    while payloads.len() < count {
        let text = std::str::from_utf8(rest).ok()?;
        let after = text.strip_prefix("CarbonAPIXML1 ")?;
        let (len, _) = after.split_once(' ')?;
        let start = "CarbonAPIXML1 ".len() + len.len() + 1;
        let end = start + len.parse::<usize>().ok()?;
        payloads.push(text.get(start..end)?.to_owned());
        rest = &rest[end..];
    }
    Some(payloads)
}

/// Reads frames until the server closes the connection.
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&all).into_owned()
}

/// The seed's parse: skip `CarbonAPIXML1`, 1 byte, 2 "length" bytes, 1 byte,
/// then everything else is one XML document.
fn seed_xml(frame: &[u8]) -> String {
    frame[17..].iter().map(|&b| char::from(b)).collect()
}

/// Attributes of the root (depth 0) or of the first child's first child
/// (depth 2), in document order.
fn attributes_at(xml: &str, depth: usize) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml.trim_start());
    let mut level = 0;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if level == depth => {
                return e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .expect("value")
                            .into_owned();
                        (a.key.0.to_owned(), value)
                    })
                    .collect();
            }
            Event::Start(_) => level += 1,
            Event::End(_) => level -= 1,
            Event::Eof => panic!("no element at depth {depth} in {xml}"),
            _ => {}
        }
    }
}

/// An attribute of the first element called `element`, anywhere.
fn attribute_of(xml: &str, element: &str, name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml.trim_start());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().0 == element => {
                return e.attributes().find_map(|a| {
                    let a = a.expect("attribute");
                    (a.key.0 == name).then(|| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .expect("value")
                            .into_owned()
                    })
                });
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Waits until a new client on `addr` is served (a place was freed).
async fn wait_for_a_place(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut next = TcpStream::connect(addr).await.expect("connect");
        next.write_all(&frame("<cnpsXML TaskType=\"JobList\"/>"))
            .await
            .expect("send");
        let reply = read_once(&mut next).await;
        if String::from_utf8_lossy(&reply).contains("Success=\"TRUE\"") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no place was freed: {}",
            String::from_utf8_lossy(&reply)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn exchange(stream: &mut TcpStream, xml: &str) -> Vec<(String, String)> {
    stream.write_all(&frame(xml)).await.expect("send");
    let reply = read_once(stream).await;
    attributes_at(&seed_xml(&reply), 0)
}

#[tokio::test]
async fn the_seed_page_protocol_works_unchanged() {
    let app = spawn_app().await;
    make_clip(&app.uploaded_dir(), "holiday.mp4", 2, 320, 240);
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");

    // Submit: the GUID is attributes()[0] of the reply's root.
    stream
        .write_all(&frame(
            &SEED_SUBMIT.replace(":::filename:::", "holiday.mp4"),
        ))
        .await
        .expect("send");
    let reply = read_once(&mut stream).await;
    let root = attributes_at(&seed_xml(&reply), 0);
    assert_eq!(root[0].0, "GUID", "{root:?}");
    assert_eq!(attr(&root, "Success"), Some("TRUE"));
    let guid = root[0].1.clone();
    assert!(
        guid.starts_with('{') && guid.ends_with('}') && guid.len() == 38,
        "{guid}"
    );

    // Poll on the same connection until COMPLETED, reading the status two
    // levels down as the seed does: 2 s after the submit, then every 2 s.
    let check = SEED_STATUS.replace(":::guid:::", &guid);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last_progress = 0;
    loop {
        tokio::time::sleep(SEED_POLL).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "not COMPLETED in time"
        );
        stream.write_all(&frame(&check)).await.expect("send");
        let reply = read_once(&mut stream).await;
        let digits = reply[14..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        assert!(digits <= 3, "status replies stay under 1000 bytes");
        let job = attributes_at(&seed_xml(&reply), 2);
        assert_eq!(attr(&job, "GUID"), Some(guid.as_str()));
        let status = attr(&job, "Status").expect("Status").to_owned();
        let progress: u32 = attr(&job, "Progress.DWD")
            .expect("Progress.DWD")
            .parse()
            .expect("integer");
        assert!(progress >= last_progress, "progress went down");
        assert!(progress <= 100);
        last_progress = progress;
        if status == "COMPLETED" {
            assert_eq!(progress, 100);
            break;
        }
        assert!(
            ["QUEUED", "STARTING", "STARTED"].contains(&status.as_str()),
            "{status}"
        );
    }
    let streams = common::probe_streams(&app.streams_dir().join("holiday.mp4"));
    assert!(
        streams.contains(&("video".into(), "h264".into(), 720, 480)),
        "{streams:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_reasons_and_the_connection_stays_up() {
    let app = spawn_app().await;
    make_clip(&app.uploaded_dir(), "ok.mp4", 1, 160, 120);
    let ok_path = app
        .uploaded_dir()
        .join("ok.mp4")
        .to_string_lossy()
        .into_owned();
    let streams = app.streams_dir().to_string_lossy().into_owned();
    let job = |source: &str, preset: &str, dest: &str| {
        format!(
            "<cnpsXML TaskType=\"JobQueue\"><Sources><Module_0 Filename=\"{source}\"/></Sources>\
             <Destinations><Module_0 PresetGUID=\"{preset}\"><ModuleData CML_P_Path=\"{dest}\" \
             CML_P_BaseFileName=\"%s\"/></Module_0></Destinations></cnpsXML>"
        )
    };
    let seed_preset = "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}";
    let cases = [
        ("<cnpsXML TaskType=\"JobQueue\"><Sources>".to_owned(), "malformed XML"),
        ("<cnpsXML TaskType=\"Reboot\"/>".to_owned(), "unknown TaskType \"Reboot\""),
        ("<cnpsXML/>".to_owned(), "no TaskType"),
        ("<!DOCTYPE d [<!ENTITY e \"x\">]><cnpsXML TaskType=\"JobList\"/>".to_owned(), "DTD"),
        (job("/etc/passwd", seed_preset, &streams), "outside the folders"),
        (job("c:\\videoshare\\uploaded\\..\\..\\x.mp4", seed_preset, &streams), "`..`"),
        (job("c:\\videoshare\\uploaded\\missing.mp4", seed_preset, &streams), "does not exist"),
        (job(&ok_path, "{00000000-0000-0000-0000-000000000000}", &streams), "unknown preset"),
        (job(&ok_path, "not-a-guid", &streams), "is not a GUID"),
        (job(&ok_path, seed_preset, "/tmp"), "destination folder"),
        (
            SEED_STATUS.replace(":::guid:::", "not-a-guid"),
            "is not a valid value for GUID",
        ),
        (
            "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"Colour\" Operator=\"EQUAL\" Value=\"x\"/></Filter></cnpsXML>".to_owned(),
            "unknown job field",
        ),
    ];
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    for (request, reason) in &cases {
        let root = exchange(&mut stream, request).await;
        assert_eq!(attr(&root, "Success"), Some("FALSE"), "{request}");
        let error = attr(&root, "Error").unwrap_or_default();
        assert!(error.contains(reason), "{request}\n→ {error}");
    }
    // Still the same connection, still serving.
    let root = exchange(&mut stream, &job(&ok_path, seed_preset, &streams)).await;
    assert_eq!(attr(&root, "Success"), Some("TRUE"), "{root:?}");
    let empty_filter = exchange(&mut stream, "<cnpsXML TaskType=\"JobStatusList\"/>").await;
    assert_eq!(attr(&empty_filter, "Success"), Some("TRUE"));
    app.stop().await;
}

#[tokio::test]
async fn frames_split_joined_and_followed_by_newlines() {
    let app = spawn_app().await;
    let list = frame("<cnpsXML TaskType=\"JobStatusList\"/>");
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");

    // Two frames in one write, each followed by CRLF / LF: two replies.
    let mut joined = list.clone();
    joined.extend_from_slice(b"\r\n");
    joined.extend_from_slice(&list);
    joined.extend_from_slice(b"\n");
    stream.write_all(&joined).await.expect("send");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    let payloads = loop {
        if let Some(payloads) = complete_frames(&received, 2) {
            break payloads;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("replies")
            .expect("read");
        assert!(n > 0, "closed early");
        received.extend_from_slice(&buf[..n]);
    };
    for payload in payloads {
        assert!(payload.contains("Success=\"TRUE\""), "{payload}");
    }

    // One frame dribbled a few bytes at a time.
    for chunk in list.chunks(3) {
        stream.write_all(chunk).await.expect("send");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = read_once(&mut stream).await;
    assert!(String::from_utf8_lossy(&reply).contains("Success=\"TRUE\""));
    app.stop().await;
}

#[tokio::test]
async fn garbage_and_oversize_frames_get_an_error_then_a_close() {
    let app = spawn_app().await;
    for (bytes, reason) in [
        (
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            "not a Carbon frame",
        ),
        (&b"CarbonAPIXML1 99999999 <cnpsXML"[..], "exceeds the limit"),
        (&b"CarbonAPIXML1 -5 <cnps"[..], "invalid frame length"),
        (&b"CarbonAPIXML1 12x <cnps"[..], "invalid frame length"),
    ] {
        let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
        stream.write_all(bytes).await.expect("send");
        let all = read_to_end(&mut stream).await;
        assert!(all.starts_with("CarbonAPIXML1 "), "{all}");
        assert!(
            all.contains("Success=\"FALSE\"") && all.contains(reason),
            "{all}"
        );
    }
    // The server itself is fine.
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    let root = exchange(&mut stream, "<cnpsXML TaskType=\"JobStatusList\"/>").await;
    assert_eq!(attr(&root, "Success"), Some("TRUE"));
    app.stop().await;
}

#[tokio::test]
async fn a_playlist_posing_as_a_video_is_not_encoded() {
    let app = spawn_app().await;
    // Another user's video, and a "video" that is an HLS playlist pointing at it.
    make_clip(&app.uploaded_dir(), "someone-else.mp4", 1, 160, 120);
    let playlist = app.uploaded_dir().join("mine.mp4");
    std::fs::write(
        &playlist,
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\nsomeone-else.mp4\n#EXT-X-ENDLIST\n",
    )
    .expect("write");
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    let root = exchange(
        &mut stream,
        &SEED_SUBMIT.replace(":::filename:::", "mine.mp4"),
    )
    .await;
    let guid = root[0].1.clone();
    let check = SEED_STATUS.replace(":::guid:::", &guid);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let xml = loop {
        stream.write_all(&frame(&check)).await.expect("send");
        let xml = seed_xml(&read_once(&mut stream).await);
        let job = attributes_at(&xml, 2);
        if attr(&job, "Status") == Some("ERROR") {
            break xml;
        }
        assert_ne!(
            attr(&job, "Status"),
            Some("COMPLETED"),
            "the playlist was encoded"
        );
        assert!(tokio::time::Instant::now() < deadline, "never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The reason is the job's error, under Failures/Errors.
    let error = attribute_of(&xml, "Error_0", "Error").unwrap_or_default();
    assert!(error.contains("playlist"), "{xml}");
    assert!(common::names_in(&app.streams_dir()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_client_pipelines_hundreds_of_status_requests() {
    let app = spawn_app().await;
    let client = videoshare::carbon::Client::new(app.carbon.to_string());
    let guids: Vec<videoshare::carbon::Guid> = (0..500)
        .map(|_| videoshare::carbon::Guid::new_random())
        .collect();
    let statuses = client
        .statuses(&guids)
        .await
        .expect("no deadlock, every reply");
    assert_eq!(statuses.len(), 500);
    assert!(
        statuses
            .iter()
            .zip(&guids)
            .all(|((g, entry), want)| g == want && entry.is_none())
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let app = common::spawn_app_with(|a| a.encoder.carbon_idle_secs = 1).await;
    let started = tokio::time::Instant::now();
    let mut idle = TcpStream::connect(app.carbon).await.expect("connect");
    let mut busy = TcpStream::connect(app.carbon).await.expect("connect");
    // The busy client asks something every 300 ms for twice the idle limit.
    while started.elapsed() < Duration::from_secs(2) {
        let root = exchange(&mut busy, "<cnpsXML TaskType=\"Version\"/>").await;
        assert_eq!(attr(&root, "Success"), Some("TRUE"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The idle one was hung up on, without an error frame.
    assert_eq!(read_to_end(&mut idle).await, "");
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_told_and_closed() {
    let app = common::spawn_app_with(|a| a.encoder.carbon_max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
        let root = exchange(&mut stream, "<cnpsXML TaskType=\"JobList\"/>").await;
        assert_eq!(attr(&root, "Success"), Some("TRUE"));
        held.push(stream);
    }
    let mut third = TcpStream::connect(app.carbon).await.expect("connect");
    let refused = read_to_end(&mut third).await;
    assert!(
        refused.contains("Success=\"FALSE\"") && refused.contains("server busy"),
        "{refused}"
    );
    // A freed place is given to the next client.
    drop(held.pop());
    wait_for_a_place(app.carbon).await;
    app.stop().await;
}

#[tokio::test]
async fn a_frame_that_stops_short_is_cut_off_with_a_reason() {
    let app = common::spawn_app_with(|a| a.encoder.carbon_frame_secs = 1).await;
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    // 100 bytes declared, 9 sent, then silence.
    stream
        .write_all(b"CarbonAPIXML1 100 <cnpsXML")
        .await
        .expect("send");
    let started = tokio::time::Instant::now();
    let all = read_to_end(&mut stream).await;
    assert!(
        all.contains("Success=\"FALSE\"") && all.contains("frame incomplete after 1 s"),
        "{all}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server is fine.
    let mut next = TcpStream::connect(app.carbon).await.expect("connect");
    let root = exchange(&mut next, "<cnpsXML TaskType=\"Version\"/>").await;
    assert_eq!(attr(&root, "Success"), Some("TRUE"));
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_replies_loses_its_slot() {
    let app = common::spawn_app_with(|a| {
        a.encoder.carbon_max_connections = 1;
        a.encoder.carbon_write_secs = 1;
    })
    .await;
    // A small receive window, so the replies back up soon.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let hog = socket.connect(app.carbon).await.expect("connect");
    let (_unread, mut requests) = hog.into_split();
    let flood = tokio::spawn(async move {
        let request = frame("<cnpsXML TaskType=\"ProfileList\"/>");
        // Pipelined requests, no reads, until the server hangs up.
        while requests.write_all(&request).await.is_ok() {}
    });
    tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("the server gave up on the client that does not read")
        .expect("flood task");
    // Its one slot serves the next client.
    wait_for_a_place(app.carbon).await;
    app.stop().await;
}
