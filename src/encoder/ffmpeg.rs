//! Encodes with ffmpeg: the encode's command line (built with the one
//! builder, [`crate::media::ffmpeg_args`]), running it, pausing it and
//! reading its progress.
//!
//! Progress comes from `-progress pipe:1` (`out_time_us` against the probed
//! duration), never from scraping stderr; stderr is kept only to explain a
//! failure.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;

use super::preset::ladder::ladder_output;
use super::preset::{Preset, SourcePicture};
use crate::carbon::message::{TICKS_PER_SECOND, Trim};
use crate::media::ffmpeg_args::FfmpegArgs;
use crate::media::process::{ProcessError, command, spawn_error, stderr_tail};

/// How much of ffmpeg's stderr is kept to explain a failure.
const STDERR_TAIL: usize = 16 * 1024;

/// How long ffmpeg may take to report its first output time, at least.
const STARTUP_GRACE: Duration = Duration::from_secs(30);

/// How often ffmpeg reports progress, in seconds.
const PROGRESS_PERIOD: &str = "0.25";

/// What an encode reads: the source, where its sound comes from, and the
/// part of it to encode.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub source: &'a Path,
    pub audio: Audio<'a>,
    pub trim: Option<Trim>,
    /// What the probe found, for outputs shaped by the source (an HLS
    /// ladder's rungs); `None` when no output needs it.
    pub picture: Option<SourcePicture>,
}

/// Where an encode's sound comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio<'a> {
    /// The source's own (if it has any).
    Source,
    /// Another file (a `MultiSource` job): its first audio stream.
    File(&'a Path),
    /// None.
    Absent,
}

/// Seconds, as ffmpeg takes them, of 27 MHz ticks.
fn seconds(ticks: u64) -> String {
    format!("{:.6}", ticks as f64 / TICKS_PER_SECOND as f64)
}

impl Inputs<'_> {
    /// How long the encoded part is, given the source's probed duration.
    pub fn encoded_duration(&self, source_secs: Option<f64>) -> Option<f64> {
        let Some(trim) = self.trim else {
            return source_secs;
        };
        let start = trim.in_ticks as f64 / TICKS_PER_SECOND as f64;
        let end = match (trim.out_ticks, source_secs) {
            (Some(out), Some(total)) => (out as f64 / TICKS_PER_SECOND as f64).min(total),
            (Some(out), None) => out as f64 / TICKS_PER_SECOND as f64,
            (None, total) => total?,
        };
        Some((end - start).max(0.0))
    }

    /// What the probe found, or without a probe (never for a ladder's
    /// job) every rung, and no sound unless a file gives it.
    pub(crate) fn picture_or_any(&self) -> SourcePicture {
        self.picture.unwrap_or(SourcePicture {
            width: u32::MAX,
            height: u32::MAX,
            frame_rate: None,
            has_audio: matches!(self.audio, Audio::File(_)),
        })
    }

    /// `-ss`/`-t` before an `-i`: the trim, applied to every input alike.
    fn trim_args(&self) -> Vec<OsString> {
        let Some(trim) = self.trim else {
            return Vec::new();
        };
        let mut args = vec!["-ss".into(), seconds(trim.in_ticks).into()];
        if let Some(out) = trim.out_ticks {
            args.extend([
                "-t".into(),
                seconds(out.saturating_sub(trim.in_ticks)).into(),
            ]);
        }
        args
    }
}

/// The full ffmpeg argument list for encoding `inputs` into each of
/// `outputs` in one run: the source is decoded once however many
/// destinations a job has. Each input gets the trim, then what it may be
/// read as (local media only), then `-i file`. A ladder preset's output is
/// a folder (its playlists and segments go inside).
pub fn encode_args(inputs: &Inputs<'_>, outputs: &[(&Path, &Preset)]) -> FfmpegArgs {
    encode_args_threaded(inputs, outputs, None)
}

/// [`encode_args`] with every decoder, filter graph and encoder held to
/// `threads` threads (`--ffmpeg-threads`: a farm node sharing its cores);
/// `None` lets ffmpeg choose.
pub fn encode_args_threaded(
    inputs: &Inputs<'_>,
    outputs: &[(&Path, &Preset)],
    threads: Option<u32>,
) -> FfmpegArgs {
    let (mut args, threads) = encode_head(threads);
    let input_options = || {
        inputs
            .trim_args()
            .into_iter()
            .chain(threads.iter().map(OsString::from))
    };
    args = args.media_input(input_options(), inputs.source);
    let audio_input = match inputs.audio {
        Audio::Source => Some(0),
        Audio::File(file) => {
            args = args.media_input(input_options(), file);
            Some(1)
        }
        Audio::Absent => None,
    };
    let picture = inputs.picture_or_any();
    for (index, (output, preset)) in outputs.iter().enumerate() {
        args = match preset.ladder_args(index, output, &picture, audio_input) {
            Some(ladder) => ladder_output(args.with(ladder).with(&threads), output),
            None => args
                .with(preset.output_args(audio_input))
                .with(&threads)
                .output(output),
        };
    }
    args
}

/// The head of every encode's command line: progress on stdout (not
/// stats on stderr), outputs overwritten, and with `threads` the filter
/// graphs held to it. Also returns the `-threads N` pair (empty for
/// `None`) that each input and each output repeats.
pub(crate) fn encode_head(threads: Option<u32>) -> (FfmpegArgs, Vec<String>) {
    let threads: Vec<String> = match threads {
        Some(n) => vec!["-threads".into(), n.to_string()],
        None => Vec::new(),
    };
    let mut args = FfmpegArgs::new().with([
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        PROGRESS_PERIOD,
        "-y",
    ]);
    if let [_, n] = &threads[..] {
        args = args.with(["-filter_threads", n.as_str()]);
    }
    (args, threads)
}

/// The output time of an `out_time_us=` progress line, in microseconds.
fn out_time_us(line: &str) -> Option<f64> {
    line.trim().strip_prefix("out_time_us=")?.parse().ok()
}

/// How much an encode has to do, for its percent: seconds of output, or
/// (a chunk, whose output times do not start at 0 under `-copyts`) frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    Seconds(f64),
    Frames(u64),
}

/// Turns `-progress` lines into an integer percent that never goes down and
/// stays below 100 until ffmpeg has finished.
#[derive(Debug)]
pub struct ProgressParser {
    duration_us: Option<f64>,
    frames: Option<u64>,
    percent: u32,
    fps: Option<f64>,
    speed: Option<f64>,
}

/// How fast an encode goes: frames per second and media seconds per second
/// (ffmpeg's `speed=`, "× realtime").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub fps: f64,
    pub speed: f64,
}

/// What a running ffmpeg reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// The percent went up.
    Percent(u32),
    /// The latest rate, once per progress block (every `PROGRESS_PERIOD`).
    Rate(Rate),
}

impl ProgressParser {
    pub fn new(extent: Option<Extent>) -> Self {
        let (duration_secs, frames) = match extent {
            Some(Extent::Seconds(secs)) => (Some(secs), None),
            Some(Extent::Frames(n)) => (None, Some(n).filter(|n| *n > 0)),
            None => (None, None),
        };
        ProgressParser {
            duration_us: duration_secs.map(|d| d * 1e6).filter(|d| *d > 0.0),
            frames,
            percent: 0,
            fps: None,
            speed: None,
        }
    }

    /// Reads one `-progress` line; returns what it reports: the new percent when it went
    /// up, or at the end of each block (`progress=`) the encode's rate.
    pub fn read_line(&mut self, line: &str) -> Option<Progress> {
        let line = line.trim();
        if let Some(fps) = line.strip_prefix("fps=") {
            self.fps = fps.parse().ok().filter(|f: &f64| f.is_finite());
        } else if let Some(speed) = line.strip_prefix("speed=") {
            self.speed = speed
                .trim()
                .trim_end_matches('x')
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite());
        } else if line.starts_with("progress=") {
            return match (self.fps, self.speed) {
                (None, None) => None,
                (fps, speed) => Some(Progress::Rate(Rate {
                    fps: fps.unwrap_or(0.0),
                    speed: speed.unwrap_or(0.0),
                })),
            };
        }
        if let (Some(total), Some(frame)) = (self.frames, line.strip_prefix("frame=")) {
            let done = frame.trim().parse::<u64>().ok()?;
            return self
                .raise(done as f64 / total as f64)
                .map(Progress::Percent);
        }
        self.read_out_time(line).map(Progress::Percent)
    }

    /// Reads an `out_time_us=` line; returns the new percent when it went
    /// up (any other line: `None`).
    pub fn read_out_time(&mut self, line: &str) -> Option<u32> {
        let out_us = out_time_us(line)?;
        let duration = self.duration_us?;
        self.raise(out_us / duration)
    }

    /// The new percent for the share `done` (0–1), if it went up.
    fn raise(&mut self, done: f64) -> Option<u32> {
        // Cap at 99: 100 means the output is complete and in place.
        let percent = ((done * 100.0).floor().max(0.0) as u32).min(99);
        (percent > self.percent).then(|| {
            self.percent = percent;
            percent
        })
    }
}

/// How a running encode is paused from outside: the wish, and where the
/// runner reports that ffmpeg really is suspended (or continued).
#[derive(Debug)]
pub struct Suspension {
    pub wanted: tokio::sync::watch::Receiver<bool>,
    pub applied: tokio::sync::watch::Sender<bool>,
}

/// Suspends (`SIGSTOP`) or continues (`SIGCONT`) a child process.
fn suspend(child: &tokio::process::Child, paused: bool) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return; // already reaped: nothing left to suspend
    };
    let signal = if paused {
        Signal::SIGSTOP
    } else {
        Signal::SIGCONT
    };
    if let Err(e) = kill(Pid::from_raw(pid), signal) {
        tracing::warn!(error = %e, ?signal, "could not signal ffmpeg");
    }
}

/// Runs ffmpeg with `args`, calling `on_progress` with each new percent and
/// each rate it reports.
/// While `suspension.wanted` holds `true` the process is suspended with
/// `SIGSTOP` and continued with `SIGCONT` when it turns `false`, so an encode
/// resumes exactly where it was; each signal sent is reported in
/// `suspension.applied`. Dropping the future kills ffmpeg (also a suspended
/// one: `SIGKILL` needs no `SIGCONT`). Returns when ffmpeg exits; non-zero
/// exit is an error carrying its stderr, the files it names without
/// their folders.
///
/// The source's duration (to turn output times into percents) may arrive
/// after ffmpeg has started: the caller probes the source meanwhile, so the
/// probe costs no wall time. Percents are reported once it is known.
pub async fn run<F, Fut>(
    args: FfmpegArgs,
    mut duration_secs: tokio::sync::watch::Receiver<Option<Extent>>,
    suspension: Suspension,
    stall: Duration,
    mut on_progress: F,
) -> Result<(), ProcessError>
where
    F: FnMut(Progress) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = command("ffmpeg")
        .args(args.as_slice())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error("ffmpeg", e))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(spawn_error("ffmpeg", std::io::Error::other("no pipes")));
    };
    // Drain stderr concurrently so ffmpeg never blocks on a full pipe,
    // keeping only its tail: a broken source can log an error per frame.
    let stderr_task = tokio::spawn(async move {
        let mut tail = Vec::new();
        let mut chunk = vec![0u8; 8192];
        while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    });
    let mut parser = ProgressParser::new(*duration_secs.borrow_and_update());
    let mut duration_pending = parser.duration_us.is_none() && parser.frames.is_none();
    // Read to EOF whatever the bytes are, so ffmpeg never blocks on stdout.
    let mut lines = BufReader::new(stdout).split(b'\n');
    let Suspension {
        wanted: mut paused,
        applied,
    } = suspension;
    if *paused.borrow_and_update() {
        suspend(&child, true);
        applied.send_replace(true);
    }
    let mut watching = true;
    // A hung ffmpeg (a stalled network read, a wedged filter) writes no
    // progress: past `stall` without its output time moving it is killed.
    // The clock stops while the job is paused.
    // Opening the input and starting the encoders may take a while on a
    // busy machine: the first output time gets a longer allowance.
    let mut stalled_at = Instant::now() + stall.max(STARTUP_GRACE);
    let mut last_out_us = f64::NEG_INFINITY;
    loop {
        let suspended = *paused.borrow();
        tokio::select! {
            line = lines.next_segment() => match line {
                Ok(Some(line)) => {
                    let line = String::from_utf8_lossy(&line);
                    if let Some(out_us) = out_time_us(&line)
                        && out_us > last_out_us
                    {
                        last_out_us = out_us;
                        stalled_at = Instant::now() + stall;
                    }
                                        if let Some(progress) = parser.read_line(&line) {
                        on_progress(progress).await;
                    }
                }
                _ => break,
            },
            known = duration_secs.changed(), if duration_pending => {
                duration_pending = false;
                if known.is_ok() {
                    parser = ProgressParser::new(*duration_secs.borrow_and_update());
                }
            }
            changed = paused.changed(), if watching => match changed {
                Ok(()) => {
                    let now = *paused.borrow_and_update();
                    suspend(&child, now);
                    applied.send_replace(now);
                    stalled_at = Instant::now() + stall;
                }
                // The controller is gone: nobody can pause any more.
                Err(_) => watching = false,
            },
            () = tokio::time::sleep_until(stalled_at), if !suspended => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(ProcessError::Stalled {
                    program: "ffmpeg".into(),
                    secs: stall.as_secs(),
                });
            }
        }
    }
    let status = child.wait().await.map_err(|e| spawn_error("ffmpeg", e))?;
    let stderr = stderr_task.await.unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(ProcessError::Failed {
            program: "ffmpeg".into(),
            status: status.to_string(),
            // Named without their folders: the text reaches web users.
            stderr: args.name_files_only(&stderr_tail(&stderr)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::inputs::media_input_args;

    #[test]
    fn progress_rises_monotonically_and_stops_at_99() {
        let mut p = ProgressParser::new(Some(Extent::Seconds(2.0)));
        assert_eq!(p.read_out_time("frame=1"), None);
        assert_eq!(p.read_out_time("out_time_us=N/A"), None);
        assert_eq!(p.read_out_time("out_time_us=500000"), Some(25));
        assert_eq!(
            p.read_out_time("out_time_us=400000"),
            None,
            "never goes down"
        );
        assert_eq!(p.read_out_time("out_time_us=500000"), None, "no repeat");
        assert_eq!(p.read_out_time("out_time_us=1990000"), Some(99));
        assert_eq!(
            p.read_out_time("out_time_us=2100000"),
            None,
            "capped at 99 until done"
        );
    }

    #[test]
    fn a_chunk_counts_its_frames_not_its_times() {
        let mut p = ProgressParser::new(Some(Extent::Frames(200)));
        assert_eq!(
            p.read_line("out_time_us=90000000"),
            None,
            "times are ignored"
        );
        assert_eq!(p.read_line("frame=50"), Some(Progress::Percent(25)));
        assert_eq!(p.read_line("frame=40"), None, "never goes down");
        assert_eq!(p.read_line("frame=200"), Some(Progress::Percent(99)));
    }

    #[test]
    fn unknown_duration_reports_nothing() {
        let mut p = ProgressParser::new(None);
        assert_eq!(p.read_out_time("out_time_us=500000"), None);
    }

    #[test]
    fn command_line_has_progress_and_the_preset() {
        let presets = super::super::preset::Presets::builtin();
        let preset = presets
            .get(super::super::preset::SEED_PRESET)
            .expect("seed");
        let inputs = Inputs {
            source: Path::new("/in.mov"),
            audio: Audio::Source,
            trim: None,
            picture: None,
        };
        let args = encode_args(
            &inputs,
            &[
                (Path::new("/a.mp4"), preset),
                (Path::new("/out.mp4"), preset),
            ],
        );
        let text: Vec<String> = args
            .as_slice()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = text.join(" ");
        assert!(joined.contains("-progress pipe:1"));
        assert!(joined.contains("-protocol_whitelist file -format_whitelist mov,"));
        assert!(
            joined.contains(&format!("{} -i /in.mov", media_input_args().join(" "))),
            "every input is read as local media only: {joined}"
        );
        assert_eq!(
            joined.matches("-c:v").count(),
            2,
            "one output per destination"
        );
        assert!(joined.contains(" /a.mp4 -map"));
        assert_eq!(text.last().map(String::as_str), Some("/out.mp4"));
    }

    #[test]
    fn threads_hold_every_decoder_filter_and_encoder() {
        let presets = super::super::preset::Presets::builtin();
        let preset = presets
            .get(super::super::preset::SEED_PRESET)
            .expect("seed");
        let inputs = Inputs {
            source: Path::new("/v.mov"),
            audio: Audio::File(Path::new("/a.wav")),
            trim: None,
            picture: None,
        };
        let outputs = [(Path::new("/o.mp4"), preset), (Path::new("/p.mp4"), preset)];
        let joined = encode_args_threaded(&inputs, &outputs, Some(1))
            .as_slice()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("-filter_threads 1"), "{joined}");
        assert_eq!(
            joined.matches("-threads 1 -protocol_whitelist").count(),
            2,
            "{joined}"
        );
        assert!(joined.contains("-threads 1 /o.mp4"), "{joined}");
        assert!(joined.ends_with("-threads 1 /p.mp4"), "{joined}");
        let free = encode_args(&inputs, &outputs).as_slice().len();
        let held = encode_args_threaded(&inputs, &outputs, None)
            .as_slice()
            .len();
        assert_eq!(free, held, "unset: ffmpeg chooses");
    }

    #[test]
    fn a_second_audio_file_and_a_trim_apply_to_both_inputs() {
        let presets = super::super::preset::Presets::builtin();
        let preset = presets
            .get(super::super::preset::SEED_PRESET)
            .expect("seed");
        let inputs = Inputs {
            source: Path::new("/v.mov"),
            audio: Audio::File(Path::new("/a.wav")),
            trim: Some(Trim {
                in_ticks: 27_000_000,
                out_ticks: Some(81_000_000),
            }),
            picture: None,
        };
        let joined = encode_args(&inputs, &[(Path::new("/o.mp4"), preset)])
            .as_slice()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let local = media_input_args().join(" ");
        let trim = "-ss 1.000000 -t 2.000000";
        assert!(
            joined.contains(&format!(
                "{trim} {local} -i /v.mov {trim} {local} -i /a.wav"
            )),
            "{joined}"
        );
        assert!(joined.contains("-map 0:v:0 -map 1:a:0?"), "{joined}");
        assert_eq!(inputs.encoded_duration(Some(10.0)), Some(2.0));
        assert_eq!(inputs.encoded_duration(Some(2.5)), Some(1.5));
        let to_end = Inputs {
            trim: Some(Trim {
                in_ticks: 27_000_000,
                out_ticks: None,
            }),
            ..inputs
        };
        assert_eq!(to_end.encoded_duration(Some(4.0)), Some(3.0));
    }
}
