//! A still picture of a video for the library: one frame, scaled to a card's
//! width, written whole (through a temp file) or not at all.

use std::path::Path;
use std::time::Duration;

use super::ffmpeg_args::FfmpegArgs;
use super::process::{ProcessError, run_for_stdout};

/// Width of a thumbnail in pixels (the height keeps the aspect ratio).
pub const WIDTH: u32 = 320;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes a JPEG of the frame at `at_secs` of `video` to `output`.
pub async fn thumbnail(video: &Path, output: &Path, at_secs: f64) -> Result<(), ProcessError> {
    let temp = output.with_extension("partial.jpg");
    let at = format!("{:.3}", at_secs.max(0.0));
    let scale = format!("scale={WIDTH}:-2");
    let args = FfmpegArgs::new()
        .media_input(["-ss", at.as_str()], video)
        .with([
            "-frames:v",
            "1",
            "-vf",
            scale.as_str(),
            "-q:v",
            "4",
            "-f",
            "image2",
            "-y",
        ])
        .output(&temp);
    let made = run_for_stdout("ffmpeg", args.as_slice(), TIMEOUT)
        .await
        .map_err(|e| args.name_files_only_in(e));
    let written = tokio::fs::metadata(&temp).await.is_ok_and(|m| m.len() > 0);
    let placed = match made {
        Ok(_) if written => tokio::fs::rename(&temp, output)
            .await
            .map_err(|e| super::process::spawn_error("ffmpeg", e)),
        Ok(_) => Err(ProcessError::Failed {
            program: "ffmpeg".into(),
            status: "no picture".into(),
            stderr: "the file has no video frame there".into(),
        }),
        Err(e) => Err(e),
    };
    if placed.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    placed
}
