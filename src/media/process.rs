//! One wrapper for short-lived child processes: spawn with a timeout, kill on
//! drop, keep stderr for the error message, and tell "not installed" apart
//! from "failed" and "timed out".

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Why a tool run failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{program} is not installed (install the Debian package `ffmpeg`)")]
    NotFound { program: String },
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {secs} s")]
    TimedOut { program: String, secs: u64 },
    #[error("{program} made no progress for {secs} s and was stopped (a stalled read or a hang)")]
    Stalled { program: String, secs: u64 },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
}

impl ProcessError {
    /// The same error with a failed run's words rewritten by `words` (e.g.
    /// to name files without their folders).
    pub fn with_words(self, words: impl FnOnce(&str) -> String) -> ProcessError {
        match self {
            ProcessError::Failed {
                program,
                status,
                stderr,
            } => ProcessError::Failed {
                program,
                status,
                stderr: words(&stderr),
            },
            other => other,
        }
    }
}

/// A command set up the way every tool run here wants it: no stdin, killed
/// if the future running it is dropped, and (on Linux) killed if videoshare
/// itself dies, so a `kill -9` leaves no orphan ffmpeg encoding for nobody.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl(2), which is async-signal-safe. The signal is tied to the
    // spawning thread: tools are spawned from async tasks, whose runtime
    // threads live as long as the process.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    cmd
}

/// Turns a spawn error into a [`ProcessError`], naming a missing tool as such.
pub fn spawn_error(program: &str, source: std::io::Error) -> ProcessError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ProcessError::NotFound {
            program: program.to_owned(),
        }
    } else {
        ProcessError::Spawn {
            program: program.to_owned(),
            source,
        }
    }
}

/// Splits the `[mov,mp4 @ 0x55d1c0a4b180] ` context ffmpeg puts before its
/// messages from the message: a memory address tells a user nothing.
fn split_context(line: &str) -> (Option<&str>, &str) {
    let line = line.trim();
    match line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    {
        Some((context, message)) if context.contains(" @ 0x") => {
            (context.split(" @ 0x").next(), message.trim())
        }
        _ => (None, line),
    }
}

fn without_context(line: &str) -> &str {
    split_context(line).1
}

/// The last few lines of a tool's stderr, enough to say why it failed; when
/// ffmpeg refused an input the allowed lists do not cover, that refusal
/// alone, said plainly.
pub fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let refusal = text.lines().find_map(|line| match split_context(line) {
        (Some(context), message) => super::inputs::explain_refusal(context, message),
        (None, _) => None,
    });
    if let Some(refusal) = refusal {
        return refusal;
    }
    let lines: Vec<&str> = text
        .lines()
        .map(without_context)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    let joined = tail.join(" / ");
    if joined.is_empty() {
        "no error output".to_owned()
    } else {
        joined
    }
}

/// Runs `program args…` to completion within `timeout` and returns its stdout.
pub async fn run_for_stdout<I, S>(
    program: &str,
    args: I,
    timeout: Duration,
) -> Result<Vec<u8>, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let child = command(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| ProcessError::TimedOut {
            program: program.to_owned(),
            secs: timeout.as_secs(),
        })?
        .map_err(|e| spawn_error(program, e))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(ProcessError::Failed {
            program: program.to_owned(),
            status: output.status.to_string(),
            stderr: stderr_tail(&output.stderr),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_short_and_free_of_addresses() {
        let stderr = b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x556d5b4cd180] moov atom not found\n\nx.mp4: Invalid data found when processing input\n";
        assert_eq!(
            stderr_tail(stderr),
            "moov atom not found / x.mp4: Invalid data found when processing input"
        );
        assert_eq!(stderr_tail(b""), "no error output");
        assert_eq!(
            stderr_tail(b"[plain brackets] stay\n"),
            "[plain brackets] stay"
        );
        let refused = stderr_tail(
            b"[dash @ 0x55f228783500] Format not on whitelist 'mov,mp4'\nx.mp4: Invalid argument\n",
        );
        assert!(
            refused.starts_with("it is a playlist or manifest (dash)"),
            "{refused}"
        );
    }
}
