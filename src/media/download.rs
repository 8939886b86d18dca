//! A finished ladder's download: its top (tallest) video rung and its sound
//! rendition remuxed into one ordinary MP4 (`download.mp4` in the ladder's
//! folder), the index first so it plays while it downloads. No second
//! encode: the streams are copied as the ladder has them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ffmpeg_args::FfmpegArgs;
use super::hls_folder::{self, LadderFolderError};
use super::process::run_for_stdout;

/// The download's name inside the ladder folder.
pub const DOWNLOAD_MP4: &str = "download.mp4";

/// The ffmpeg arguments that copy the video of `video` and the sound of
/// `audio` (when the ladder has sound) into the MP4 `output`.
fn remux_args(video: &Path, audio: Option<&Path>, output: &Path) -> FfmpegArgs {
    let mut args = FfmpegArgs::new()
        .with(["-y"])
        .media_input(["-f", "mov"], video);
    let mut maps = vec!["-map", "0:v:0"];
    if let Some(audio) = audio {
        args = args.media_input(["-f", "mov"], audio);
        maps.extend(["-map", "1:a:0"]);
    }
    args.with(maps)
        .with(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"])
        .output(output)
}

/// How long a remux may take: it only copies bytes, so a minute plus a
/// second per media second is generous for any disk.
pub(super) fn time_limit(media_secs: f64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs_f64(media_secs.clamp(0.0, 86_400.0))
}

/// Writes `<folder>/download.mp4` from the finished ladder in `folder`:
/// the tallest rung's video and the sound rendition (none for a silent
/// ladder), copied, with `-movflags +faststart`. Written under a hidden
/// temp name and renamed, so the final name is never a half file (an
/// earlier download is replaced whole). Returns its path. Dropping the
/// future stops ffmpeg and leaves no temp file behind.
pub async fn write_download_mp4(folder: &Path) -> Result<PathBuf, LadderFolderError> {
    let ladder = hls_folder::read(folder).await?;
    let top = hls_folder::media_files(&ladder.top().playlist).await?;
    let video = hls_folder::join(&top, folder).await?;
    let audio = match &ladder.audio {
        Some(playlist) => {
            let files = hls_folder::media_files(playlist).await?;
            Some(hls_folder::join(&files, folder).await?)
        }
        None => None,
    };
    let output = folder.join(DOWNLOAD_MP4);
    // Removed when dropped: on an error, and if this future is dropped
    // midway (after the rename there is nothing left to remove).
    let dir = folder.to_owned();
    let temp = crate::fsutil::off_runtime(move || {
        tempfile::Builder::new()
            .prefix(".download-")
            .suffix(".mp4.tmp")
            .tempfile_in(dir)
            .map(tempfile::NamedTempFile::into_temp_path)
    })
    .await?;
    let args = remux_args(&video, audio.as_deref(), &temp);
    run_for_stdout("ffmpeg", args.as_slice(), time_limit(top.duration))
        .await
        .map_err(|e| args.name_files_only_in(e))?;
    hls_folder::place(&temp, &output).await?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ffmpeg_args::tests::joined;

    #[test]
    fn the_remux_copies_and_puts_the_index_first() {
        let text = joined(&remux_args(
            Path::new("/l/v.mp4"),
            Some(Path::new("/l/a.mp4")),
            Path::new("/l/out.tmp"),
        ));
        let whitelist = super::super::inputs::media_input_args().join(" ");
        for expected in [
            format!("-f mov {whitelist} -i /l/v.mp4"),
            format!("-f mov {whitelist} -i /l/a.mp4"),
            "-map 0:v:0 -map 1:a:0 -c copy -movflags +faststart -f mp4 /l/out.tmp".into(),
        ] {
            assert!(text.contains(&expected), "{expected} missing from {text}");
        }
        for encode in ["-c:v", "-c:a", "libx264", "-vf", "-filter"] {
            assert!(!text.contains(encode), "{encode} in {text}");
        }

        let silent = joined(&remux_args(Path::new("/l/v.mp4"), None, Path::new("/l/o")));
        assert!(
            silent.contains("-map 0:v:0 -c copy") && !silent.contains("a:0"),
            "{silent}"
        );
    }
}
