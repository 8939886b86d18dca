//! A still picture of a video for the library: one frame, scaled to a card's
//! width, written whole (through a temp file) or not at all.

use std::path::Path;
use std::time::Duration;

use super::process::{ProcessError, run_for_stdout};

/// Width of a thumbnail in pixels (the height keeps the aspect ratio).
pub const WIDTH: u32 = 320;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes a JPEG of the frame at `at_secs` of `video` to `output`.
pub async fn thumbnail(video: &Path, output: &Path, at_secs: f64) -> Result<(), ProcessError> {
    let temp = output.with_extension("partial.jpg");
    let at = format!("{:.3}", at_secs.max(0.0));
    let scale = format!("scale={WIDTH}:-2");
    let [protocols, protocol_list, formats, format_list] = super::inputs::media_input_args();
    let args: [&std::ffi::OsStr; 22] = [
        "-hide_banner".as_ref(),
        "-nostdin".as_ref(),
        "-loglevel".as_ref(),
        "error".as_ref(),
        "-ss".as_ref(),
        at.as_ref(),
        protocols.as_ref(),
        protocol_list.as_ref(),
        formats.as_ref(),
        format_list.as_ref(),
        "-i".as_ref(),
        video.as_os_str(),
        "-frames:v".as_ref(),
        "1".as_ref(),
        "-vf".as_ref(),
        scale.as_ref(),
        "-q:v".as_ref(),
        "4".as_ref(),
        "-f".as_ref(),
        "image2".as_ref(),
        "-y".as_ref(),
        temp.as_os_str(),
    ];
    let made = run_for_stdout("ffmpeg", args, TIMEOUT).await;
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
