//! Clips made on the fly from ffmpeg's `lavfi` test sources (testsrc2 picture,
//! sine tone): the inputs of tests and benchmarks, so no media is committed.

use std::path::Path;
use std::process::Command;

use super::ffmpeg_args::FfmpegArgs;
use super::process::{ProcessError, stderr_tail};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSpec {
    pub seconds: u32,
    pub width: u32,
    pub height: u32,
    pub frame_rate: u32,
    /// A sine tone beside the picture; `false` makes a silent clip.
    pub sound: bool,
    /// Encoded as a camera or phone writes H.264 (x264 `medium`: CABAC,
    /// B-frames, about 12 Mbit/s at 1080p), which costs several times more
    /// to decode than the default `ultrafast` clip; slower to make.
    pub camera_like: bool,
    /// A keyframe every this many seconds; x264's default (every 250
    /// frames) when `None`.
    pub keyframe_seconds: Option<u32>,
}

impl ClipSpec {
    pub fn new(seconds: u32, width: u32, height: u32) -> Self {
        ClipSpec {
            seconds,
            width,
            height,
            frame_rate: 25,
            sound: true,
            camera_like: false,
            keyframe_seconds: None,
        }
    }
}

/// Writes an H.264 (+ AAC, unless silent) MP4 clip to `path` (blocking;
/// x264 `ultrafast` unless camera-like, so even a minute of 720p takes
/// seconds).
pub fn write_clip(path: &Path, spec: ClipSpec) -> Result<(), ProcessError> {
    let ClipSpec {
        seconds,
        width,
        height,
        frame_rate,
        sound,
        camera_like,
        keyframe_seconds,
    } = spec;
    let mut args = FfmpegArgs::new().with(["-y"]).synthetic_input(&format!(
        "testsrc2=size={width}x{height}:rate={frame_rate}:duration={seconds}"
    ));
    if sound {
        args = args.synthetic_input(&format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ));
    }
    args = args.with(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    args = if camera_like {
        // About 6 bits per 1000 pixels of each frame: 12 Mbit/s at 1080p30.
        let kbps = (u64::from(width) * u64::from(height) * u64::from(frame_rate) / 5_000).max(100);
        args.with(["-preset", "medium", "-b:v"])
            .with([format!("{kbps}k")])
    } else {
        args.with(["-preset", "ultrafast"])
    };
    if let Some(seconds) = keyframe_seconds {
        let gop = (seconds * frame_rate).max(1).to_string();
        args = args.with(["-g", gop.as_str(), "-keyint_min", gop.as_str()]);
    }
    if sound {
        args = args.with(["-c:a", "aac", "-shortest"]);
    }
    let args = args.output(path);
    let output = Command::new("ffmpeg")
        .args(args.as_slice())
        .output()
        .map_err(|e| super::process::spawn_error("ffmpeg", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ProcessError::Failed {
            program: "ffmpeg".into(),
            status: output.status.to_string(),
            stderr: stderr_tail(&output.stderr),
        })
    }
}
