//! A non-Rust peer: `tests/interop/carbon_client.py`, Python 3 with only its
//! standard library, speaks the Carbon API the way the Carbon API manual
//! describes it, on the one-request-per-connection listener
//! (`--carbon-coder`): UTF-8 requests with an XML declaration and
//! `CarbonAPIVer="1.2"`, one connection per request read until the server
//! closes, `<Reply>` roots. It runs every task type and every job and node
//! command (pause/resume of a real encode, Query → resubmit, Stop, Requeue,
//! Remove, refusals) and pages through 1,000 queued jobs with
//! `<ListSettings>`. This proves the wire format itself, not our client's
//! view of it; the checks here read the server with a raw frame, not with
//! our Rust client.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use quick_xml::events::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{DEADLINE, make_clip, probe_streams, spawn_app};

/// What the script submits (the same constants as in carbon_client.py).
const JOB_NAME: &str = "from python";
const DESCRIPTION: &str = "submitted by carbon_client.py, the stdlib peer";

#[tokio::test]
async fn a_python_stdlib_client_speaks_the_manuals_carbon_api() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "from python.mp4", 30, 320, 240);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/carbon_client.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(app.carbon_coder.ip().to_string())
        .arg(app.carbon_coder.port().to_string())
        .arg(&clip)
        .arg(app.streams_dir())
        .args(["--seconds", "30", "--size", "320x240"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the script ends in time")
        .expect("python3 is installed (make test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Line 1: the job's GUID; line 2: its output, named by the script's
    // CML_P_BaseFileName "%s-py" in the folder it gave as CML_P_Path.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let guid: videoshare::carbon::Guid = lines[0].parse().expect("a GUID");
    let output = app.streams_dir().join("from python-py.mp4");
    assert_eq!(lines[1], output.to_string_lossy());
    assert!(probe_streams(&output).iter().any(|s| s.0 == "video"));

    // The job the script left behind, as the server lists it: one job named
    // "from python" (the resubmitted copy was removed), with the script's
    // description, completed.
    let reply = exchange(
        app.carbon_coder,
        &format!(
            r#"<cnpsXML CarbonAPIVer="1.2" TaskType="JobStatusList"><Filter><Criteria_0 Parameter="Name" Value="{JOB_NAME}"/></Filter></cnpsXML>"#
        ),
    )
    .await;
    let jobs = elements(&reply, "Job_");
    assert_eq!(jobs.len(), 1, "{reply}");
    let job = &jobs[0];
    assert_eq!(job["GUID"], guid.to_string(), "{reply}");
    assert_eq!(job["Name"], JOB_NAME, "{reply}");
    assert_eq!(job["Description"], DESCRIPTION, "{reply}");
    assert_eq!(job["Status"], "COMPLETED", "{reply}");
    app.stop().await;
}

/// One request on a fresh connection to the one-request-per-connection
/// listener, as the manual frames it; reads until the server closes and
/// returns the reply's XML (after checking its byte count).
async fn exchange(addr: SocketAddr, xml: &str) -> String {
    let payload = format!(r#"<?xml version="1.0" encoding="UTF-8"?>{xml}"#);
    let frame = format!("CarbonAPIXML1 {} {payload}", payload.len());
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to --carbon-coder");
    stream.write_all(frame.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut reply))
        .await
        .expect("the server closes after its reply")
        .expect("read the reply");
    let text = String::from_utf8(reply).expect("an ASCII reply");
    let (length, xml) = text
        .strip_prefix("CarbonAPIXML1 ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("not a Carbon frame: {text}"));
    assert_eq!(length.parse::<usize>().ok(), Some(xml.len()), "{text}");
    xml.to_owned()
}

/// The attributes of each element whose name starts with `prefix`, in
/// document order.
fn elements(xml: &str, prefix: &str) -> Vec<HashMap<String, String>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().0.starts_with(prefix) => {
                found.push(
                    e.attributes()
                        .map(|a| {
                            let a = a.expect("an attribute");
                            let value = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .expect("an attribute value");
                            (a.key.0.to_owned(), value.into_owned())
                        })
                        .collect(),
                );
            }
            Event::Eof => return found,
            _ => {}
        }
    }
}
