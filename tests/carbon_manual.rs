//! The Carbon socket as clients written from the Carbon API manual use it
//! (issue 13, `spec-13.md`): real sockets, raw bytes, real ffmpeg jobs.
//!
//! One test per client habit: framing quirks (no space after the length,
//! several spaces, trailing CR/LF, byte counts of non-ASCII text in UTF-8
//! and Latin-1), the one-request-per-connection `--carbon-coder` port read
//! until the server closes, DOM/XPath readers of `<Reply>`, strict binding
//! of the reply shapes, legacy spellings, and the JobQueue features the
//! manual describes (MultiSource, UNC paths, DestinationName, InOutPoints,
//! FileCopy, Description, ListSettings), plus what is refused by name.
//!
//! Replies are parsed into a small element tree ([`Element`]) and read with
//! XPath-like paths such as `Reply/JobInfo/@Status`, as a .NET or Java client
//! would. Job states are followed by polling `JobStatusList` with a deadline.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    DEADLINE, duration_secs, make_clip, names_in, probe_streams, spawn_app, spawn_app_with,
};
use quick_xml::events::{BytesStart, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// H.264 640×360 + AAC in MP4: the quickest built-in preset with both streams.
const PRESET: &str = "{543B8954-549F-4966-9B1C-99669AE288F7}";

/// A well-formed GUID no job has.
const NO_SUCH_JOB: &str = "{0BADF00D-0000-4000-8000-00000000BEEF}";

/// The seed page's status request (note `Parameter =`).
const SEED_STATUS: &str = "<cnpsXML TaskType=\"JobStatusList\">\n<Filter>\n<Criteria_0 Parameter =\"Guid\" Operator=\"EQUAL\" Value=\":::guid:::\" />\n</Filter>\n</cnpsXML>";

/// Statuses a job does not leave by itself.
const TERMINAL: [&str; 4] = ["COMPLETED", "ERROR", "STOPPED", "INVALID"];

/// How long one request may take to be answered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Frames and sockets
// ---------------------------------------------------------------------------

/// `CarbonAPIXML1 <bytes> <xml>`, as the manual frames a request.
fn frame(xml: &[u8]) -> Vec<u8> {
    let mut out = format!("CarbonAPIXML1 {} ", xml.len()).into_bytes();
    out.extend_from_slice(xml);
    out
}

/// `text` as ISO-8859-1 bytes (what the seed page sent).
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

/// Checks `bytes` are exactly one reply frame (`CarbonAPIXML1 N <xml>`, one
/// space each side, N the payload's length, ASCII only) and returns the XML.
fn reply_payload(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(bytes);
    assert!(
        bytes.is_ascii(),
        "a reply is ASCII (&#N; for the rest): {shown}"
    );
    let reply = std::str::from_utf8(bytes).expect("ASCII is UTF-8");
    let rest = reply
        .strip_prefix("CarbonAPIXML1 ")
        .unwrap_or_else(|| panic!("not a reply frame: {shown:?}"));
    let (length, payload) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("no space after the length: {shown:?}"));
    assert!(
        !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit()),
        "the length is decimal digits: {shown:?}"
    );
    let declared: usize = length.parse().expect("a length");
    assert_eq!(
        payload.len(),
        declared,
        "exactly one frame, as long as it says: {shown:?}"
    );
    payload.to_owned()
}

/// Where the first whole frame in `bytes` ends, once it has all arrived.
fn frame_end(bytes: &[u8]) -> Option<usize> {
    const HEADER: &[u8] = b"CarbonAPIXML1 ";
    let start = bytes.len().min(HEADER.len());
    assert_eq!(
        &bytes[..start],
        &HEADER[..start],
        "not a reply frame: {:?}",
        String::from_utf8_lossy(bytes)
    );
    let digits = bytes
        .get(HEADER.len()..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let space = HEADER.len() + digits;
    if bytes.len() <= space {
        return None;
    }
    let length: usize = std::str::from_utf8(&bytes[HEADER.len()..space])
        .ok()?
        .parse()
        .ok()?;
    let end = space + 1 + length;
    (bytes.len() >= end).then_some(end)
}

/// Reads one reply frame from a connection that stays open (`--carbon`).
async fn read_frame(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = frame_end(&got) {
            assert_eq!(end, got.len(), "one reply per request");
            return reply_payload(&got);
        }
        let n = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("a reply in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before a whole reply: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// Reads until the server closes the connection (a reset after the reply
/// counts as a close too); returns every byte received.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut all))
        .await
        .expect("the server closes the connection after its reply");
    if let Err(e) = read {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset,
            "read failed: {e}"
        );
    }
    all
}

/// Sends `bytes` on a new connection, reads until the server closes it and
/// returns the XML of the one reply frame received.
async fn carbon_raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    reply_payload(&read_to_end(&mut stream).await)
}

/// One request, one connection, read to EOF (the manual's way; use the
/// `carbon_coder` listener).
async fn carbon_request(addr: SocketAddr, xml: &[u8]) -> String {
    carbon_raw(addr, &frame(xml)).await
}

/// A request on `addr`, its reply parsed; the root must be `<Reply>`.
async fn ask(addr: SocketAddr, xml: &str) -> Xml {
    let reply = Xml::parse(carbon_request(addr, xml.as_bytes()).await);
    assert_eq!(reply.root.name, "Reply", "{xml}\n→ {}", reply.raw);
    reply
}

/// A request that must succeed.
async fn ask_ok(addr: SocketAddr, xml: &str) -> Xml {
    let reply = ask(addr, xml).await;
    assert_eq!(
        reply.get("Reply/@Success"),
        Some("TRUE"),
        "{xml}\n→ {}",
        reply.raw
    );
    reply
}

/// A request that must be refused; returns its `Error`.
async fn ask_refused(addr: SocketAddr, xml: &str) -> String {
    let reply = ask(addr, xml).await;
    assert_eq!(
        reply.get("Reply/@Success"),
        Some("FALSE"),
        "{xml}\n→ {}",
        reply.raw
    );
    let error = reply.at("Reply/@Error").to_owned();
    assert!(!error.is_empty(), "an empty reason: {}", reply.raw);
    error
}

/// One request and its reply on a connection that stays open (`--carbon`).
async fn exchange(stream: &mut TcpStream, frame_bytes: &[u8]) -> Xml {
    stream.write_all(frame_bytes).await.expect("send");
    let reply = Xml::parse(read_frame(stream).await);
    assert_eq!(reply.root.name, "Reply", "{}", reply.raw);
    reply
}

// ---------------------------------------------------------------------------
// A tiny DOM with XPath-like lookups
// ---------------------------------------------------------------------------

/// An element: its name, attributes (entity and character references
/// decoded) and child elements. Text is not kept: replies carry none.
#[derive(Debug, Clone)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
}

impl Element {
    fn from_tag(tag: &BytesStart<'_>, xml: &str) -> Element {
        let attrs = tag
            .attributes()
            .map(|a| {
                let a = a.unwrap_or_else(|e| panic!("bad attribute ({e}) in {xml}"));
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap_or_else(|e| panic!("bad attribute value ({e}) in {xml}"))
                    .into_owned();
                (a.key.0.to_owned(), value)
            })
            .collect();
        Element {
            name: tag.name().0.to_owned(),
            attrs,
            children: Vec::new(),
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// `A/B/C` below this element (`""`: itself).
    fn node(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|step| !step.is_empty())
            .try_fold(self, |element, step| element.child(step))
    }

    /// `A/B/@c` below this element, or `@c` of itself.
    fn get(&self, path: &str) -> Option<&str> {
        match path.rsplit_once("/@") {
            Some((nodes, attribute)) => self.node(nodes)?.attr(attribute),
            None => self.attr(path.strip_prefix('@')?),
        }
    }

    /// The children `prefix_0`, `prefix_1`, … up to the first gap.
    fn numbered(&self, prefix: &str) -> Vec<&Element> {
        (0..)
            .map_while(|i| self.child(&format!("{prefix}_{i}")))
            .collect()
    }

    /// An integer attribute (`.DWD`, `.QWD`).
    fn int(&self, name: &str) -> i64 {
        let value = self
            .attr(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not an integer"))
    }
}

/// A parsed document and its text (for messages).
struct Xml {
    raw: String,
    root: Element,
}

impl Xml {
    /// Parses a well-formed document with exactly one root element.
    fn parse(raw: String) -> Xml {
        Xml {
            root: Xml::root_of(&raw),
            raw,
        }
    }

    fn root_of(raw: &str) -> Element {
        let mut reader = quick_xml::Reader::from_str(raw);
        let mut open: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let closed = match reader
                .read_event()
                .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {raw}"))
            {
                Event::Start(tag) => {
                    open.push(Element::from_tag(&tag, raw));
                    None
                }
                Event::Empty(tag) => Some(Element::from_tag(&tag, raw)),
                Event::End(_) => Some(open.pop().expect("balanced tags")),
                Event::Eof => break,
                _ => None,
            };
            if let Some(element) = closed {
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => {
                        assert!(root.is_none(), "two root elements: {raw}");
                        root = Some(element);
                    }
                }
            }
        }
        assert!(open.is_empty(), "unclosed elements: {raw}");
        root.unwrap_or_else(|| panic!("no root element: {raw:?}"))
    }

    /// An absolute path from the root, e.g. `Reply/JobStatusList/Job_0`.
    fn node(&self, path: &str) -> Option<&Element> {
        let (first, rest) = path.split_once('/').unwrap_or((path, ""));
        if first != self.root.name {
            return None;
        }
        self.root.node(rest)
    }

    /// An absolute attribute path, e.g. `Reply/JobInfo/@Status`.
    fn get(&self, path: &str) -> Option<&str> {
        let (nodes, attribute) = path.rsplit_once("/@")?;
        self.node(nodes)?.attr(attribute)
    }

    /// Like [`Xml::get`], but the value must be there.
    fn at(&self, path: &str) -> &str {
        self.get(path)
            .unwrap_or_else(|| panic!("no {path} in {}", self.raw))
    }

    /// Like [`Xml::node`], but the element must be there.
    fn must(&self, path: &str) -> &Element {
        self.node(path)
            .unwrap_or_else(|| panic!("no {path} in {}", self.raw))
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `value` made safe inside a quoted attribute.
fn esc(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A JobQueue: `root_attrs` (each with a leading space) on `<cnpsXML>`,
/// the inner XML of `<Sources>` and of `<Destinations>`.
fn job_queue(root_attrs: &str, sources: &str, destinations: &str) -> String {
    format!(
        "<cnpsXML TaskType=\"JobQueue\"{root_attrs}><Sources>{sources}</Sources>\
         <Destinations>{destinations}</Destinations></cnpsXML>"
    )
}

/// `xml` with `child` added as the last child of its root.
fn with_child(xml: &str, child: &str) -> String {
    xml.replace("</cnpsXML>", &format!("{child}</cnpsXML>"))
}

/// A source module reading one file.
fn file_source(path: &Path) -> String {
    format!("<Module_0 Filename=\"{}\"/>", esc(&text(path)))
}

/// A destination module: the quick preset into `dir` as `base`.
fn destination(dir: &Path, base: &str) -> String {
    destination_with(dir, base, "", "")
}

/// A destination module with more attributes (each with a leading space)
/// and children after its `<ModuleData>`.
fn destination_with(dir: &Path, base: &str, attrs: &str, children: &str) -> String {
    format!(
        "<Module_0 PresetGUID=\"{PRESET}\"{attrs}><ModuleData CML_P_Path=\"{}\" \
         CML_P_BaseFileName=\"{}\"/>{children}</Module_0>",
        esc(&text(dir)),
        esc(base)
    )
}

/// Submits a JobQueue; returns the job's GUID (the reply's first attribute,
/// where the seed reads it).
async fn submit(addr: SocketAddr, xml: &str) -> String {
    let reply = ask_ok(addr, xml).await;
    let first = reply.root.attrs.first().map(|(k, _)| k.as_str());
    assert_eq!(first, Some("GUID"), "GUID first: {}", reply.raw);
    let guid = reply.at("Reply/@GUID").to_owned();
    assert!(
        guid.len() == 38 && guid.starts_with('{') && guid.ends_with('}'),
        "{guid}"
    );
    guid
}

/// `JobStatusList` filtered on one GUID: its `Job_0`.
async fn job_status(addr: SocketAddr, guid: &str) -> Element {
    let reply = ask_ok(
        addr,
        &format!(
            "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"GUID\" \
             Operator=\"EQUAL\" Value=\"{guid}\"/></Filter></cnpsXML>"
        ),
    )
    .await;
    reply.must("Reply/JobStatusList/Job_0").clone()
}

/// Polls the job until it is in a terminal status; returns its `Job_0`.
async fn wait_finished(addr: SocketAddr, guid: &str) -> Element {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let job = job_status(addr, guid).await;
        let status = job.attr("Status").unwrap_or_default();
        if TERMINAL.contains(&status) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {guid} still {status} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the job and fails unless it COMPLETED.
async fn wait_completed(addr: SocketAddr, guid: &str) -> Element {
    let job = wait_finished(addr, guid).await;
    assert_eq!(
        job.attr("Status"),
        Some("COMPLETED"),
        "job {guid} ended with {:?}",
        first_error(&job)
    );
    job
}

/// The job's first error, from `<Failures><Errors><Error_0 Description>`.
fn first_error(job: &Element) -> Option<&str> {
    job.get("Failures/Errors/Error_0/@Error")
}

/// `JobCommand` in the manual's form: a `<JobCommand>` child.
async fn job_command(addr: SocketAddr, command: &str, guid: &str) -> Xml {
    ask(
        addr,
        &format!(
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"{command}\" \
             GUID=\"{guid}\"/></cnpsXML>"
        ),
    )
    .await
}

/// `QueryInfo`, which must succeed.
async fn query_info(addr: SocketAddr, guid: &str) -> Xml {
    let reply = job_command(addr, "QueryInfo", guid).await;
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    reply
}

/// Lets the node take jobs, or not (queued jobs then stay QUEUED).
async fn set_node_enabled(addr: SocketAddr, enabled: bool) {
    let flag = u8::from(enabled);
    let reply = ask_ok(
        addr,
        &format!(
            "<cnpsXML TaskType=\"NodeCommand\"><NodeCommand Command=\"SetNodeStatus\" \
             Enabled.DWD=\"{flag}\"/></cnpsXML>"
        ),
    )
    .await;
    assert_eq!(
        reply.get("Reply/NodeStatus/@Enabled.DWD"),
        Some(flag.to_string().as_str()),
        "{}",
        reply.raw
    );
}

// ---------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------

/// Runs ffmpeg quietly; fails the test if it fails.
fn ffmpeg(args: &[&str]) {
    common::require("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has_stream(path: &Path, kind: &str) -> bool {
    probe_streams(path).iter().any(|(k, ..)| k == kind)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

/// `value` has the shape of `template`, where `d` stands for a digit.
fn looks_like(value: &str, template: &str) -> bool {
    value.len() == template.len()
        && value.bytes().zip(template.bytes()).all(|(v, t)| {
            if t == b'd' {
                v.is_ascii_digit()
            } else {
                v == t
            }
        })
}

// ---------------------------------------------------------------------------
// Framing habits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_space_after_the_length() {
    let app = spawn_app().await;
    let xml =
        r#"<?xml version="1.0" encoding="UTF-8"?><cnpsXML CarbonAPIVer="1.2" TaskType="Version"/>"#;
    let mut bytes = format!("CarbonAPIXML1 {}", xml.len()).into_bytes();
    bytes.extend_from_slice(xml.as_bytes());
    let reply = Xml::parse(carbon_raw(app.carbon_coder, &bytes).await);
    assert_eq!(reply.root.name, "Reply", "{}", reply.raw);
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    let version = reply.at("Reply/@Version");
    let (product, number) = version
        .rsplit_once(" ver. ")
        .unwrap_or_else(|| panic!("not `<product> ver. NN.NN.NN.NN`: {version}"));
    assert_eq!(product, "videoshare");
    assert!(looks_like(number, "dd.dd.dd.dd"), "{version}");
    assert_eq!(reply.get("Reply/@CarbonAPIVer"), Some("1.2"));
    app.stop().await;
}

#[tokio::test]
async fn several_spaces_before_the_length() {
    let app = spawn_app().await;
    let xml = r#"<cnpsXML TaskType="Version"/>"#;
    let bytes = format!("CarbonAPIXML1    {} {xml}", xml.len()).into_bytes();
    let reply = Xml::parse(carbon_raw(app.carbon_coder, &bytes).await);
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    app.stop().await;
}

#[tokio::test]
async fn read_until_close_on_the_carbon_coder_port() {
    let app = spawn_app().await;
    let list = frame(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cnpsXML CarbonAPIVer=\"1.2\" TaskType=\"JobList\"/>",
    );

    // Read to EOF: the server closes, and what came is one whole frame.
    let mut stream = TcpStream::connect(app.carbon_coder).await.expect("connect");
    stream.write_all(&list).await.expect("send");
    let all = read_to_end(&mut stream).await;
    let reply = Xml::parse(reply_payload(&all));
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    assert_eq!(reply.get("Reply/@NrOfJobs.DWD"), Some("0"), "{}", reply.raw);

    // A second frame on the same connection after the reply gets nothing.
    let mut stream = TcpStream::connect(app.carbon_coder).await.expect("connect");
    stream.write_all(&list).await.expect("send");
    read_frame(&mut stream).await;
    // The write may already fail: the server has hung up.
    let _ = stream.write_all(&list).await;
    let mut more = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut more)).await {
        Ok(_) => assert!(
            more.is_empty(),
            "a second reply on a one-request connection: {:?}",
            String::from_utf8_lossy(&more)
        ),
        Err(_) => panic!("the connection stayed open after the reply"),
    }

    // The listener itself still takes the next connection.
    let again = ask_ok(app.carbon_coder, r#"<cnpsXML TaskType="JobList"/>"#).await;
    assert_eq!(again.get("Reply/@NrOfJobs.DWD"), Some("0"));
    app.stop().await;
}

#[tokio::test]
async fn non_ascii_job_names_count_bytes_in_utf8_and_latin1_or_characters() {
    let app = spawn_app().await;
    // Only the records matter: keep the jobs queued.
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let streams = app.streams_dir();
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");

    // UTF-8 with its declaration: the length counts the two bytes of `Ü`.
    let utf8_name = "Überraschung.mp4";
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}",
        job_queue(
            &format!(" JobName=\"{utf8_name}\""),
            &file_source(&clip),
            &destination(&streams, "utf8")
        )
    );
    assert!(xml.len() > xml.chars().count());
    let reply = exchange(&mut stream, &frame(xml.as_bytes())).await;
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    let utf8_guid = reply.at("Reply/@GUID").to_owned();

    // ISO-8859-1 without a declaration, as the seed sent it: not valid
    // UTF-8, so it is read as Latin-1.
    let latin_name = "Grüße aus Köln.mp4";
    let bytes = latin1(&job_queue(
        &format!(" JobName=\"{latin_name}\""),
        &file_source(&clip),
        &destination(&streams, "latin1"),
    ));
    assert!(std::str::from_utf8(&bytes).is_err());
    let reply = exchange(&mut stream, &frame(&bytes)).await;
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    let latin_guid = reply.at("Reply/@GUID").to_owned();

    // UTF-8 framed with a count of *characters* (Java's `String.length()`,
    // as several public clients do), on a kept connection with a second
    // request right behind it: the whole document is still one request.
    let counted_name = "Ständchen für Zoë.mp4";
    let xml = job_queue(
        &format!(" JobName=\"{counted_name}\""),
        &file_source(&clip),
        &destination(&streams, "counted"),
    );
    let mut bytes = format!("CarbonAPIXML1 {} ", xml.chars().count()).into_bytes();
    bytes.extend_from_slice(xml.as_bytes());
    let reply = exchange(&mut stream, &bytes).await;
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    let counted_guid = reply.at("Reply/@GUID").to_owned();

    // Replies are ASCII with character references; the parser decodes them.
    for (guid, name) in [
        (&utf8_guid, utf8_name),
        (&latin_guid, latin_name),
        (&counted_guid, counted_name),
    ] {
        let query = format!(
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"QueryInfo\" GUID=\"{guid}\"/></cnpsXML>"
        );
        let info = exchange(&mut stream, &frame(query.as_bytes())).await;
        assert_eq!(info.get("Reply/JobInfo/@Name"), Some(name), "{}", info.raw);
    }
    app.stop().await;
}

#[tokio::test]
async fn trailing_crlf_indentation_and_single_quotes() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);

    // CR/LF after the frame on the one-request port.
    let mut bytes = frame(br#"<cnpsXML TaskType="Version"/>"#);
    bytes.extend_from_slice(b"\r\n");
    let reply = Xml::parse(carbon_raw(app.carbon_coder, &bytes).await);
    assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);

    // CR/LF between frames on the connection that stays open.
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    for _ in 0..2 {
        let reply = exchange(&mut stream, &bytes).await;
        assert_eq!(reply.get("Reply/@Success"), Some("TRUE"), "{}", reply.raw);
    }

    // An indented request with single quotes and spaces around `=`.
    let submit_xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\r\n\
         <cnpsXML TaskType = 'JobQueue'\n         JobName='indented'>\n\
         \t<Sources>\n\
         \t\t<Module_0 Filename='{}' />\n\
         \t</Sources>\n\
         \t<Destinations>\n\
         \t\t<Module_0 PresetGUID='{PRESET}'>\n\
         \t\t\t<ModuleData CML_P_Path='{}'\n\t\t\t            CML_P_BaseFileName='%s' />\n\
         \t\t</Module_0>\n\
         \t</Destinations>\n\
         </cnpsXML>\r\n",
        esc(&text(&clip)),
        esc(&text(&app.streams_dir()))
    );
    let guid = submit(app.carbon_coder, &submit_xml).await;
    let status_xml = format!(
        "<cnpsXML TaskType='JobStatusList'>\n  <Filter>\n    \
         <Criteria_0 Parameter = 'GUID' Operator='EQUAL' Value='{guid}' />\n  </Filter>\n\
         </cnpsXML>\n"
    );
    let reply = ask_ok(app.carbon_coder, &status_xml).await;
    assert_eq!(
        reply.get("Reply/JobStatusList/Job_0/@Name"),
        Some("indented"),
        "{}",
        reply.raw
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Reading replies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn dom_readers_find_status_and_failures() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let fake = app.uploaded_dir().join("x.mp4");
    std::fs::write(&fake, "this is a text file, not a video\n").expect("write");
    let streams = app.streams_dir();
    let good = submit(
        app.carbon_coder,
        &job_queue("", &file_source(&clip), &destination(&streams, "good")),
    )
    .await;
    let bad = submit(
        app.carbon_coder,
        &job_queue("", &file_source(&fake), &destination(&streams, "bad")),
    )
    .await;

    // A job that ran: empty <Warnings/> and <Errors/>.
    wait_completed(app.carbon_coder, &good).await;
    let single_quoted = format!(
        "<cnpsXML TaskType='JobCommand'><JobCommand Command='QueryInfo' GUID='{good}'/></cnpsXML>"
    );
    let info = ask_ok(app.carbon_coder, &single_quoted).await;
    assert_eq!(info.get("Reply/JobInfo/@Status"), Some("COMPLETED"));
    assert_eq!(info.get("Reply/JobInfo/@GUID"), Some(good.as_str()));
    let list = ask_ok(app.carbon_coder, r#"<cnpsXML TaskType="JobStatusList"/>"#).await;
    assert_eq!(
        list.get("Reply/JobStatusList/Job_0/@GUID"),
        Some(good.as_str()),
        "check-in order: {}",
        list.raw
    );
    let failures = list.must("Reply/JobStatusList/Job_0/Failures");
    let warnings = failures.child("Warnings").expect("Warnings");
    let errors = failures.child("Errors").expect("Errors");
    assert!(
        warnings.children.is_empty() && errors.children.is_empty(),
        "{}",
        list.raw
    );

    // A "video" that is text: ERROR, and the reason is in Errors/Error_0.
    let job = wait_finished(app.carbon_coder, &bad).await;
    assert_eq!(job.attr("Status"), Some("ERROR"), "{job:?}");
    assert!(job.node("Failures/Warnings").is_some(), "{job:?}");
    let why = first_error(&job).unwrap_or_default();
    assert!(!why.trim().is_empty(), "{job:?}");
    let info = query_info(app.carbon_coder, &bad).await;
    assert_eq!(info.get("Reply/JobInfo/@Status"), Some("ERROR"));
    assert_eq!(
        info.get("Reply/JobInfo/Failures/Errors/Error_0/@Error"),
        Some(why),
        "{}",
        info.raw
    );
    app.stop().await;
}

#[tokio::test]
async fn strict_binding_of_every_reply() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let streams = app.streams_dir();
    let mut guids = Vec::new();
    for name in ["one", "two"] {
        let xml = job_queue(
            &format!(" JobName=\"{name}\""),
            &file_source(&clip),
            &destination(&streams, name),
        );
        guids.push(submit(app.carbon_coder, &xml).await);
    }

    let requests = [
        r#"<cnpsXML TaskType="Version"/>"#.to_owned(),
        r#"<cnpsXML TaskType="CarbonRoles"/>"#.to_owned(),
        r#"<cnpsXML TaskType="NodeList"/>"#.to_owned(),
        r#"<cnpsXML TaskType="NodeCommand"><NodeCommand Command="GetNodeStatus"/></cnpsXML>"#
            .to_owned(),
        r#"<cnpsXML TaskType="ProfileList"/>"#.to_owned(),
        r#"<cnpsXML TaskType="JobList"/>"#.to_owned(),
        r#"<cnpsXML TaskType="JobStatusList"/>"#.to_owned(),
        format!(
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"QueryInfo\" GUID=\"{}\"/></cnpsXML>",
            guids[0]
        ),
        r#"<cnpsXML TaskType="Reboot"/>"#.to_owned(),
    ];
    for request in &requests {
        let reply = ask(app.carbon_coder, request).await;
        assert!(
            reply.raw.starts_with("<Reply"),
            "no declaration, root Reply: {}",
            reply.raw
        );
        match reply.at("Reply/@Success") {
            "TRUE" => {}
            "FALSE" => assert!(!reply.at("Reply/@Error").is_empty(), "{}", reply.raw),
            other => panic!("Success={other:?} in {}", reply.raw),
        }
    }

    // ProfileList: integer counts and flags.
    let profiles = ask_ok(
        app.carbon_coder,
        r#"<cnpsXML TaskType="ProfileList"><ProfileAttributes ProfileType="Destination"/></cnpsXML>"#,
    )
    .await;
    let list = profiles.must("Reply/ProfileList");
    let listed = list.numbered("Profile");
    assert!(!listed.is_empty(), "{}", profiles.raw);
    assert_eq!(list.int("NrOfProfiles.DWD"), listed.len() as i64);
    assert_eq!(list.children.len(), listed.len(), "{}", profiles.raw);
    for profile in listed {
        // Built-in: queueable | SYSTEM | read-only.
        assert_eq!(profile.int("ProfileFlags.DWD"), 7, "{profile:?}");
        assert!(profile.attr("GUID").is_some() && profile.attr("Name").is_some());
    }

    // JobList: the count on <Reply>.
    let jobs = ask_ok(app.carbon_coder, r#"<cnpsXML TaskType="JobList"/>"#).await;
    assert_eq!(jobs.root.int("NrOfJobs.DWD"), 2);
    assert_eq!(jobs.must("Reply/JobList").numbered("Job").len(), 2);

    // JobStatusList: integer counts, the job record's fixed parts.
    let status = ask_ok(app.carbon_coder, r#"<cnpsXML TaskType="JobStatusList"/>"#).await;
    let list = status.must("Reply/JobStatusList");
    assert_eq!(list.int("NrOfJobs.DWD"), 2, "{}", status.raw);
    assert_eq!(list.int("TotalNrOfJobs.DWD"), 2, "{}", status.raw);
    let entries = list.numbered("Job");
    assert_eq!(entries.len(), 2, "{}", status.raw);
    for job in entries {
        let state = job.attr("State").unwrap_or_default();
        assert!(state.starts_with("NEX_JOB_"), "State={state:?}");
        assert!(job.attr("GUID").is_some());
        assert_eq!(job.attr("Guid"), job.attr("GUID"), "{job:?}");
        let scm = job.attr("CheckInTime_SCM").expect("CheckInTime_SCM");
        assert!(looks_like(scm, "dddd-dd-dd dd:dd:dd"), "{scm}");
        let plain = job.attr("CheckInTime").expect("CheckInTime");
        assert!(looks_like(plain, "dd/dd/dd dd:dd:dd"), "{plain}");
        job.int("Progress.DWD");
        job.int("Priority.DWD");
        assert_eq!(job.attr("DeleteProcessedSource.DWD"), Some("0"));
        assert!(job.node("Failures/Warnings").is_some() && job.node("Failures/Errors").is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn legacy_jobtype_and_root_attribute_jobcommand() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let guid = submit(
        app.carbon_coder,
        &job_queue(
            " JobName=\"legacy\"",
            &file_source(&clip),
            &destination(&app.streams_dir(), "%s"),
        ),
    )
    .await;

    // `JobType`, the name before API 1.25, without `TaskType`.
    let list = ask_ok(app.carbon_coder, r#"<cnpsXML JobType="JobList"/>"#).await;
    assert_eq!(list.get("Reply/@NrOfJobs.DWD"), Some("1"), "{}", list.raw);
    assert_eq!(list.get("Reply/JobList/Job_0/@GUID"), Some(guid.as_str()));
    assert_eq!(list.get("Reply/JobList/Job_0/@Name"), Some("legacy"));

    // The old JobCommand: its attributes on the root.
    let info = ask_ok(
        app.carbon_coder,
        &format!("<cnpsXML TaskType=\"JobCommand\" Command=\"QueryInfo\" GUID=\"{guid}\"/>"),
    )
    .await;
    assert_eq!(info.get("Reply/JobInfo/@GUID"), Some(guid.as_str()));

    // `Guid` for `GUID` on the child element.
    let info = ask_ok(
        app.carbon_coder,
        &format!(
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"QueryInfo\" Guid=\"{guid}\"/></cnpsXML>"
        ),
    )
    .await;
    assert_eq!(info.get("Reply/JobInfo/@Name"), Some("legacy"));
    app.stop().await;
}

// ---------------------------------------------------------------------------
// JobQueue features
// ---------------------------------------------------------------------------

#[tokio::test]
async fn multisource_takes_video_and_audio_from_two_files() {
    let app = spawn_app().await;
    let uploaded = app.uploaded_dir();
    let video = uploaded.join("picture.mp4");
    let audio = uploaded.join("tone.m4a");
    let picture_only = videoshare::media::synthetic::ClipSpec {
        sound: false,
        ..videoshare::media::synthetic::ClipSpec::new(2, 320, 240)
    };
    videoshare::media::synthetic::write_clip(&video, picture_only).expect("a silent clip");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-c:a",
        "aac",
        audio.to_str().expect("UTF-8 path"),
    ]);
    assert!(!has_stream(&video, "audio") && !has_stream(&audio, "video"));

    let sources = format!(
        "<Module_0 MultiSource.DWD=\"1\"><ModuleData><StreamTypeTable StreamType_0.DWD=\"0\" \
         StreamPtr_0.DWD=\"0\" StreamType_1.DWD=\"2\" StreamPtr_1.DWD=\"1\"/><SourceModules>\
         <MultiSrcModule_0 Filename=\"{}\"/><MultiSrcModule_1 Filename=\"{}\"/></SourceModules>\
         </ModuleData></Module_0>",
        esc(&text(&video)),
        esc(&text(&audio))
    );
    let guid = submit(
        app.carbon_coder,
        &job_queue("", &sources, &destination(&app.streams_dir(), "mixed")),
    )
    .await;
    wait_completed(app.carbon_coder, &guid).await;
    let output = app.streams_dir().join("mixed.mp4");
    let streams = probe_streams(&output);
    assert!(
        streams.iter().any(|(kind, ..)| kind == "video")
            && streams.iter().any(|(kind, ..)| kind == "audio"),
        "{streams:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn multisource_with_one_file() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let sources = format!(
        "<Module_0 MultiSource.DWD=\"1\"><ModuleData><SourceModules>\
         <MultiSrcModule_0 Filename=\"{}\"/></SourceModules></ModuleData></Module_0>",
        esc(&text(&clip))
    );
    let guid = submit(
        app.carbon_coder,
        &job_queue("", &sources, &destination(&app.streams_dir(), "single")),
    )
    .await;
    wait_completed(app.carbon_coder, &guid).await;
    assert!(has_stream(&app.streams_dir().join("single.mp4"), "video"));
    app.stop().await;
}

#[tokio::test]
async fn unc_paths_through_the_path_mapping() {
    let extra = tempfile::tempdir().expect("tempdir");
    let out = extra.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let config = extra.path().join("videoshare.toml");
    let app = spawn_app_with(|args| {
        // The data folder's uploaded/ must exist before the file names it.
        let uploaded = args.data.data.join("uploaded");
        std::fs::create_dir_all(&uploaded).expect("mkdir uploaded");
        let toml = format!(
            r"roots = ['{out}']

[[path_mapping]]
from = '\\media01\ingest'
to = '{uploaded}'

[[path_mapping]]
from = '\\media01\out'
to = '{out}'
",
            out = text(&out),
            uploaded = text(&uploaded),
        );
        std::fs::write(&config, toml).expect("write the config file");
        args.encoder.config = Some(config.clone());
    })
    .await;
    make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let xml = job_queue(
        "",
        r"<Module_0 FullUNCFilename='\\media01\ingest\clip.mp4'/>",
        &format!(
            r"<Module_0 PresetGUID='{PRESET}'><ModuleData FullUNCPath='\\media01\out' CML_P_BaseFileName='unc'/></Module_0>"
        ),
    );
    let guid = submit(app.carbon_coder, &xml).await;
    wait_completed(app.carbon_coder, &guid).await;
    assert_eq!(names_in(&out), ["unc.mp4"]);
    assert!(has_stream(&out.join("unc.mp4"), "video"));
    assert!(names_in(&app.streams_dir()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn destination_name_is_kept_and_reported() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let dest = destination_with(&app.streams_dir(), "%s", " DestinationName=\"web\"", "");
    let guid = submit(app.carbon_coder, &job_queue("", &file_source(&clip), &dest)).await;
    let info = query_info(app.carbon_coder, &guid).await;
    assert_eq!(
        info.get("Reply/JobInfo/Destinations/Module_0/@DestinationName"),
        Some("web"),
        "{}",
        info.raw
    );
    assert_eq!(
        info.get("Reply/JobInfo/Destinations/Module_0/@PresetGUID"),
        Some(PRESET)
    );
    app.stop().await;
}

#[tokio::test]
async fn without_cml_p_path_outputs_go_to_streams() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "plain.mp4", 1, 320, 240);
    let base_only = format!(
        "<Module_0 PresetGUID=\"{PRESET}\"><ModuleData CML_P_BaseFileName=\"nopath\"/></Module_0>"
    );
    let no_module_data = format!("<Module_0 PresetGUID=\"{PRESET}\"/>");
    let mut guids = Vec::new();
    for dest in [&base_only, &no_module_data] {
        let xml = job_queue("", &file_source(&clip), dest);
        guids.push(submit(app.carbon_coder, &xml).await);
    }
    for guid in &guids {
        wait_completed(app.carbon_coder, guid).await;
    }
    // No CML_P_BaseFileName: `%s`, the source's base name.
    assert_eq!(names_in(&app.streams_dir()), ["nopath.mp4", "plain.mp4"]);
    // Query's <Job> names what each destination wrote, as public clients
    // read it: `Reply/Job/Destinations/Module_0/TargetFiles/@File_0`.
    let job = job_command(app.carbon_coder, "Query", &guids[0]).await;
    let written = job.at("Reply/Job/Destinations/Module_0/TargetFiles/@File_0");
    assert_eq!(
        Path::new(written),
        app.streams_dir().join("nopath.mp4"),
        "{}",
        job.raw
    );
    app.stop().await;
}

#[tokio::test]
async fn in_and_out_points_cut_the_output() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "four.mp4", 4, 320, 240);
    let streams = app.streams_dir();
    let cut = |points: &str| {
        format!(
            "<Module_0 Filename=\"{}\"><InOutPoints {points}/></Module_0>",
            esc(&text(&clip))
        )
    };
    // 1 s to 2 s; and 3 s to the end (-1).
    let middle = submit(
        app.carbon_coder,
        &job_queue(
            "",
            &cut(r#"Inpoint_0.QWD="27000000" Outpoint_0.QWD="54000000""#),
            &destination(&streams, "middle"),
        ),
    )
    .await;
    let tail = submit(
        app.carbon_coder,
        &job_queue(
            "",
            &cut(r#"Inpoint_0.QWD="81000000" Outpoint_0.QWD="-1""#),
            &destination(&streams, "tail"),
        ),
    )
    .await;
    for (guid, name) in [(&middle, "middle.mp4"), (&tail, "tail.mp4")] {
        wait_completed(app.carbon_coder, guid).await;
        let seconds = duration_secs(&streams.join(name));
        assert!((0.8..=1.3).contains(&seconds), "{name}: {seconds} s");
    }
    app.stop().await;
}

#[tokio::test]
async fn file_copy_after_conversion() {
    let copies = tempfile::tempdir().expect("tempdir");
    let target: PathBuf = copies.path().canonicalize().expect("canonical");
    let app = spawn_app_with(|args| args.encoder.roots = vec![target.clone()]).await;
    let short = make_clip(&app.uploaded_dir(), "short.mp4", 1, 320, 240);
    let long = make_clip(&app.uploaded_dir(), "long.mp4", 2, 320, 240);
    let streams = app.streams_dir();
    let job = |source: &Path, base: &str, copy_attrs: &str| {
        let copy = format!(
            "<PostconversionTasks><FileCopy_0 TargetFolder=\"{}\"{copy_attrs}/></PostconversionTasks>",
            esc(&text(&target))
        );
        job_queue(
            "",
            &file_source(source),
            &destination_with(&streams, base, "", &copy),
        )
    };

    // The copy is named like the output by default.
    let first = submit(app.carbon_coder, &job(&short, "first", "")).await;
    wait_completed(app.carbon_coder, &first).await;
    let copied = target.join("first.mp4");
    let first_size = file_size(&streams.join("first.mp4"));
    assert_eq!(file_size(&copied), first_size);

    // Same target, OverWrite.DWD absent (0): the job ends ERROR naming the
    // task, and the existing copy is left alone.
    let second = submit(
        app.carbon_coder,
        &job(&short, "second", " TargetFile=\"first.mp4\""),
    )
    .await;
    let job_two = wait_finished(app.carbon_coder, &second).await;
    assert_eq!(job_two.attr("Status"), Some("ERROR"), "{job_two:?}");
    let why = first_error(&job_two).unwrap_or_default();
    assert!(why.contains("FileCopy_0"), "{why}");
    assert_eq!(file_size(&copied), first_size);

    // OverWrite.DWD="1": replaced, whole.
    let third = submit(
        app.carbon_coder,
        &job(
            &long,
            "third",
            " TargetFile=\"first.mp4\" OverWrite.DWD=\"1\"",
        ),
    )
    .await;
    wait_completed(app.carbon_coder, &third).await;
    assert_eq!(file_size(&copied), file_size(&streams.join("third.mp4")));
    assert_eq!(names_in(&target), ["first.mp4"], "no temp files left");
    app.stop().await;
}

#[tokio::test]
async fn description_is_reported_as_given() {
    let app = spawn_app().await;
    // Text posing as video: the jobs end ERROR at once, without encoding.
    let fake = app.uploaded_dir().join("x.mp4");
    std::fs::write(&fake, "not a video\n").expect("write");
    let dest = destination(&app.streams_dir(), "%s");
    let described = submit(
        app.carbon_coder,
        &job_queue(
            " JobName=\"harbour\" Description=\"Harbour timelapse &amp; more\"",
            &file_source(&fake),
            &dest,
        ),
    )
    .await;
    let plain = submit(app.carbon_coder, &job_queue("", &file_source(&fake), &dest)).await;
    for (guid, wanted) in [(&described, "Harbour timelapse & more"), (&plain, "")] {
        // Still the description, not the error, once the job has failed.
        let job = wait_finished(app.carbon_coder, guid).await;
        assert_eq!(job.attr("Status"), Some("ERROR"), "{job:?}");
        assert_eq!(job.attr("Description"), Some(wanted), "{job:?}");
        let info = query_info(app.carbon_coder, guid).await;
        assert_eq!(info.get("Reply/JobInfo/@Description"), Some(wanted));
    }
    app.stop().await;
}

#[tokio::test]
async fn unsupported_features_are_refused_by_name() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let streams = app.streams_dir();
    let source = file_source(&clip);
    let dest = destination(&streams, "%s");
    let ok = job_queue("", &source, &dest);
    let two_sources = format!(
        "<Module_0 Filename=\"{0}\"/><Module_1 Filename=\"{0}\"/>",
        esc(&text(&clip))
    );
    let cases = [
        (
            with_child(&ok, r#"<ProjectSettings Stitching.DWD="1"/>"#),
            "Stitching",
        ),
        (
            job_queue(
                "",
                r#"<Module_0 RemoteFTPFilename="ftp://media01/ingest/clip.mp4"/>"#,
                &dest,
            ),
            "RemoteFTPFilename",
        ),
        (
            job_queue(
                "",
                &source,
                &destination_with(&streams, "%s", " AssignedTags=\"gpu\"", ""),
            ),
            "AssignedTags",
        ),
        (
            with_child(&ok, r#"<ProjectSettings AssignedAgentIPs="10.1.4.20"/>"#),
            "AssignedAgentIPs",
        ),
        (
            with_child(&ok, r#"<ProjectSettings MultiTargetSplitting.DWD="1"/>"#),
            "MultiTargetSplitting",
        ),
        (job_queue("", &two_sources, &dest), "several sources"),
        (
            job_queue(
                "",
                &format!(
                    "<Module_0 Filename=\"{}\" ComplexSource.DWD=\"1\"/>",
                    esc(&text(&clip))
                ),
                &dest,
            ),
            "ComplexSource",
        ),
        (
            with_child(&ok, r#"<EmailSettings SMTPServer="mail.example.com"/>"#),
            "EmailSettings",
        ),
        (
            job_queue(
                "",
                &format!(
                    "<Module_0 Filename=\"{}\"><PostconversionTasks><FTPUpload_0 \
                     RemoteFTPFolder=\"/web\"/></PostconversionTasks></Module_0>",
                    esc(&text(&clip))
                ),
                &dest,
            ),
            "FTPUpload",
        ),
    ];
    for (request, name) in &cases {
        let error = ask_refused(app.carbon_coder, request).await;
        assert!(error.contains(name), "{request}\n→ {error}");
    }

    // The seed's empty AssignedTags, PostconversionTasks and filters are fine.
    let seed_like = job_queue(
        "",
        &source,
        &destination_with(
            &streams,
            "%s",
            " AssignedTags=\"\"",
            "<PostconversionTasks/><Filter_1/><Filter_0/>",
        ),
    );
    submit(app.carbon_coder, &seed_like).await;
    let list = ask_ok(app.carbon_coder, r#"<cnpsXML TaskType="JobList"/>"#).await;
    assert_eq!(
        list.get("Reply/@NrOfJobs.DWD"),
        Some("1"),
        "refused jobs are not stored: {}",
        list.raw
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_guid_is_named_in_the_error() {
    let app = spawn_app().await;
    for command in ["QueryInfo", "Query", "Stop", "Remove"] {
        let reply = job_command(app.carbon_coder, command, NO_SUCH_JOB).await;
        assert_eq!(reply.get("Reply/@Success"), Some("FALSE"), "{}", reply.raw);
        let error = reply.at("Reply/@Error");
        assert!(error.contains("no job with GUID"), "{command}: {error}");
        assert!(
            error.to_uppercase().contains(NO_SUCH_JOB),
            "{command}: {error}"
        );
    }
    // The old form too.
    let error = ask_refused(
        app.carbon_coder,
        &format!("<cnpsXML TaskType=\"JobCommand\" Command=\"QueryInfo\" GUID=\"{NO_SUCH_JOB}\"/>"),
    )
    .await;
    assert!(error.contains("no job with GUID"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn list_settings_page_through_sorted_jobs() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    let dest = destination(&app.streams_dir(), "%s");
    let mut guids = Vec::new();
    for name in ["delta", "bravo", "echo", "alpha", "charlie"] {
        let xml = job_queue(&format!(" JobName=\"{name}\""), &file_source(&clip), &dest);
        guids.push(submit(app.carbon_coder, &xml).await);
    }
    let page = ask_ok(
        app.carbon_coder,
        r#"<cnpsXML TaskType="JobStatusList"><ListSettings OrderBy="Name" OrderByDirection="ASCENDING" LimitStart.DWD="1" LimitShow.DWD="2"/></cnpsXML>"#,
    )
    .await;
    let list = page.must("Reply/JobStatusList");
    assert_eq!(list.int("NrOfJobs.DWD"), 2, "{}", page.raw);
    assert_eq!(list.int("TotalNrOfJobs.DWD"), 5, "{}", page.raw);
    let names: Vec<&str> = list
        .numbered("Job")
        .iter()
        .map(|job| job.attr("Name").unwrap_or_default())
        .collect();
    assert_eq!(names, ["bravo", "charlie"], "{}", page.raw);
    for job in list.numbered("Job") {
        assert_eq!(job.attr("Status"), Some("QUEUED"), "the node is disabled");
    }

    // Enabled again, the node takes jobs again.
    set_node_enabled(app.carbon_coder, true).await;
    let deadline = Instant::now() + DEADLINE;
    while job_status(app.carbon_coder, &guids[0]).await.attr("Status") == Some("QUEUED") {
        assert!(
            Instant::now() < deadline,
            "no job started after re-enabling"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_seed_status_reply_stays_under_1000_bytes() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    // A long file name makes a long source and a long error; the file is
    // removed before the job runs, so it fails on it.
    // (An output base name may have 200 characters at most.)
    let long_file = format!("{}.mp4", "s".repeat(196));
    let source = make_clip(&app.uploaded_dir(), &long_file, 1, 320, 240);
    let name = "n".repeat(900);
    let description = "d".repeat(900);
    let guid = submit(
        app.carbon_coder,
        &job_queue(
            &format!(" JobName=\"{name}\" Description=\"{description}\" User=\"seed\""),
            &file_source(&source),
            &destination(&app.streams_dir(), "%s"),
        ),
    )
    .await;
    std::fs::remove_file(source).expect("remove the source");
    set_node_enabled(app.carbon_coder, true).await;
    let job = wait_finished(app.carbon_coder, &guid).await;
    assert_eq!(job.attr("Status"), Some("ERROR"), "{job:?}");

    // The seed's own request and framing, on the connection that stays open.
    let mut stream = TcpStream::connect(app.carbon).await.expect("connect");
    let request = latin1(&SEED_STATUS.replace(":::guid:::", &guid));
    stream.write_all(&frame(&request)).await.expect("send");
    let payload = read_frame(&mut stream).await;
    assert!(payload.len() < 1000, "{} bytes: {payload}", payload.len());
    let reply = Xml::parse(payload);
    let job = reply.must("Reply/JobStatusList/Job_0");
    assert_eq!(job.attr("GUID"), Some(guid.as_str()));
    assert_eq!(job.attr("Status"), Some("ERROR"));
    for (attribute, full) in [("Name", &name), ("Description", &description)] {
        let shown = job.attr(attribute).unwrap_or_default();
        let kept = shown.strip_suffix("...").unwrap_or(shown);
        assert!(
            !kept.is_empty() && full.starts_with(kept),
            "{attribute} shortened with \"...\": {shown:?}"
        );
    }
    assert!(
        !first_error(job).unwrap_or_default().is_empty(),
        "{}",
        reply.raw
    );
    app.stop().await;
}

#[tokio::test]
async fn exporter_settings_of_a_saved_project_are_taken_and_named_as_not_applied() {
    let app = spawn_app().await;
    set_node_enabled(app.carbon_coder, false).await;
    let clip = make_clip(&app.uploaded_dir(), "clip.mp4", 1, 320, 240);
    // As a client that copies ModuleData from a saved project sends it.
    let destination = format!(
        "<Module_0 PresetGUID=\"{PRESET}\"><ModuleData CML_V_SizeX.DWD=\"1920\" CML_V_SizeY.DWD=\"1080\" \
         FrameRate.DBL=\"25.0\" CML_P_Path=\"{}\" CML_P_BaseFileName=\"saved\"/></Module_0>",
        esc(&text(&app.streams_dir()))
    );
    let guid = submit(
        app.carbon_coder,
        &job_queue("", &file_source(&clip), &destination),
    )
    .await;
    let info = query_info(app.carbon_coder, &guid).await;
    assert_eq!(info.get("Reply/JobInfo/@Status"), Some("QUEUED"));
    // One warning names them all (the seed's one-job reply has room for one).
    let warning = info.at("Reply/JobInfo/Failures/Warnings/Warning_0/@Warning");
    for setting in ["CML_V_SizeX.DWD", "CML_V_SizeY.DWD", "FrameRate.DBL"] {
        assert!(warning.contains(setting), "{warning}");
    }
    assert!(warning.contains("not applied"), "{warning}");
    assert_eq!(
        info.get("Reply/JobInfo/Failures/Warnings/Warning_1/@Warning"),
        None
    );
    app.stop().await;
}

#[tokio::test]
async fn a_right_count_with_bad_non_ascii_xml_is_answered_at_once() {
    let app = spawn_app().await;
    // Counted right, in bytes, but the XML never closes: held back a moment
    // in case the count was of characters, then refused as malformed.
    let xml = "<cnpsXML TaskType=\"JobQueue\" JobName=\"caf\u{e9}\"><Sources>".as_bytes();
    let started = Instant::now();
    let reply = carbon_request(app.carbon_coder, xml).await;
    assert!(reply.contains("Success=\"FALSE\""), "{reply}");
    assert!(reply.contains("malformed"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "well before the 10 s frame timeout: {:?}",
        started.elapsed()
    );
    app.stop().await;
}
