//! Runs the `videoshare` binary's client commands, as a user would.

use tokio::process::Command;

use super::DEADLINE;

pub const BIN: &str = env!("CARGO_BIN_EXE_videoshare");

/// The second Carbon listener's setting: on a free port, so encoders
/// started side by side do not fight over Carbon Coder's 1120.
pub const CODER: &str = "VIDEOSHARE_CARBON_CODER";
pub const ANY_PORT: &str = "127.0.0.1:0";

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `videoshare ARGS` (async: the app under test shares this runtime).
pub async fn videoshare(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        DEADLINE,
        Command::new(BIN).args(args).env(CODER, ANY_PORT).output(),
    )
    .await
    .expect("the command ends in time")
    .expect("run videoshare");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `videoshare ARGS --encoder ADDR`, which must succeed.
pub async fn ok(args: &[&str], encoder: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["--encoder", encoder]);
    let run = videoshare(&all).await;
    assert!(run.ok, "{args:?} failed: {}", run.stderr);
    run.stdout
}

/// `videoshare ARGS --encoder ADDR`, which must fail; returns stderr.
pub async fn fails(args: &[&str], encoder: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["--encoder", encoder]);
    let run = videoshare(&all).await;
    assert!(!run.ok, "{args:?} should fail: {}", run.stdout);
    run.stderr
}
