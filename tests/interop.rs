//! A non-Rust peer: `tests/interop/carbon_client.py`, Python 3 with only its
//! standard library, drives the encoder through submit → poll → pause →
//! resume → complete. It proves the wire format itself, not our client's
//! view of it.

mod common;

use std::path::Path;

use common::{DEADLINE, make_clip, probe_streams, spawn_app};

#[tokio::test]
async fn a_python_stdlib_client_runs_a_job_with_pause_and_resume() {
    let app = spawn_app().await;
    let clip = make_clip(&app.uploaded_dir(), "from python.mp4", 30, 320, 240);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/carbon_client.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(app.carbon.ip().to_string())
        .arg(app.carbon.port().to_string())
        .arg(&clip)
        .arg(app.streams_dir())
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
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let guid: videoshare::carbon::Guid = lines[0].parse().expect("a GUID");
    let output = app.streams_dir().join("from python-py.mp4");
    assert_eq!(lines[1], output.to_string_lossy());
    assert!(probe_streams(&output).iter().any(|s| s.0 == "video"));
    let job = videoshare::carbon::Client::new(app.carbon.to_string())
        .command(guid, videoshare::carbon::message::Command::Query)
        .await
        .expect("query");
    assert_eq!(job.name, "from python");
    app.stop().await;
}
