//! Reading a finished HLS ladder folder (`master.m3u8` beside one folder
//! per rendition, CMAF fMP4 segments) as media files: which renditions it
//! has, and each rendition's init segment and media segments joined, in
//! playlist order, into one fragmented MP4 that ffmpeg reads as a plain
//! local `mov` file.
//!
//! So the products made from a ladder afterwards ([`super::download`],
//! [`super::storyboard`]) need no playlist demuxer: the product's input
//! whitelist ([`super::inputs`]) stays as narrow as for uploads. Knows the
//! playlist lines it needs and nothing of how the ladder was encoded.

use std::path::{Component, Path, PathBuf};

use super::playlist;
use super::process::ProcessError;

/// The master playlist's name inside a ladder folder.
pub const MASTER: &str = "master.m3u8";

/// The marker the encoder keeps in a ladder folder while it still writes
/// it (holding the job's GUID; removed last, when the ladder is whole).
pub const ENCODING_MARKER: &str = ".encoding";

/// The largest playlist read (a 24 h rung of 4 s segments is ~1 MB).
const MAX_PLAYLIST: u64 = 8 << 20;

/// Why a product of a ladder folder could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LadderFolderError {
    #[error("cannot read or write the ladder folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("the ladder's playlists are not usable: {0}")]
    Playlist(String),
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("{0} s is not a video's duration")]
    Duration(f64),
}

/// One video rendition, as the master playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoRendition {
    /// Its media playlist (inside the folder).
    pub playlist: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// What a ladder folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderFolder {
    /// Tallest first; never empty ([`read`] refuses a ladder without).
    pub video: Vec<VideoRendition>,
    /// The sound rendition's media playlist; `None` for a silent source.
    pub audio: Option<PathBuf>,
}

impl LadderFolder {
    /// The tallest video rung.
    pub fn top(&self) -> &VideoRendition {
        &self.video[0]
    }

    /// The shortest video rung (the top one when there is only one).
    pub fn lowest(&self) -> &VideoRendition {
        &self.video[self.video.len() - 1]
    }
}

/// A rendition's files in playing order.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFiles {
    pub init: PathBuf,
    pub segments: Vec<PathBuf>,
    /// The sum of the `EXTINF` durations, in seconds.
    pub duration: f64,
}

/// `base` joined with a playlist's relative URI, only when it stays
/// inside `base` (no scheme, no absolute path, no `..`).
pub fn join_uri(base: &Path, uri: &str) -> Option<PathBuf> {
    if uri.contains(':') || uri.contains('\\') || uri.contains('?') {
        return None;
    }
    let relative = Path::new(uri);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    (plain && !uri.is_empty()).then(|| base.join(relative))
}

/// A playlist's text, unless it is larger than any playlist we write.
pub async fn read_playlist(path: &Path) -> Result<String, LadderFolderError> {
    let size = tokio::fs::metadata(path).await?.len();
    if size > MAX_PLAYLIST {
        return Err(LadderFolderError::Playlist(format!(
            "{} is {size} bytes, too large for a playlist",
            name_of(path)
        )));
    }
    Ok(tokio::fs::read_to_string(path).await?)
}

/// A path's last component, for messages (never the server's folders).
fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn inside(base: &Path, uri: &str) -> Result<PathBuf, LadderFolderError> {
    join_uri(base, uri)
        .ok_or_else(|| LadderFolderError::Playlist(format!("{uri} is not a file of the ladder")))
}

/// Reads `folder`'s master playlist.
pub async fn read(folder: &Path) -> Result<LadderFolder, LadderFolderError> {
    let master = playlist::master(&read_playlist(&folder.join(MASTER)).await?);
    let mut video = master
        .variants
        .iter()
        .filter_map(|v| Some((v.size?, &v.uri)))
        .map(|((width, height), uri)| {
            Ok(VideoRendition {
                playlist: inside(folder, uri)?,
                width,
                height,
            })
        })
        .collect::<Result<Vec<_>, LadderFolderError>>()?;
    if video.is_empty() {
        return Err(LadderFolderError::Playlist(
            "the master playlist lists no video rendition".into(),
        ));
    }
    video.sort_by(|a, b| b.height.cmp(&a.height).then(b.width.cmp(&a.width)));
    let audio = master.sound().map(|uri| inside(folder, uri)).transpose()?;
    Ok(LadderFolder { video, audio })
}

/// Reads a rendition's media playlist: its files, inside its folder.
pub async fn media_files(playlist: &Path) -> Result<MediaFiles, LadderFolderError> {
    let playlist::Media {
        init,
        segments,
        duration,
        ..
    } = playlist::media(&read_playlist(playlist).await?);
    let dir = playlist.parent().unwrap_or(Path::new("."));
    let Some(init) = init else {
        return Err(LadderFolderError::Playlist(format!(
            "{} has no EXT-X-MAP (not fMP4 segments)",
            name_of(playlist)
        )));
    };
    if segments.is_empty() {
        return Err(LadderFolderError::Playlist(format!(
            "{} lists no segment",
            name_of(playlist)
        )));
    }
    Ok(MediaFiles {
        init: inside(dir, &init)?,
        segments: segments
            .iter()
            .map(|uri| inside(dir, uri))
            .collect::<Result<_, _>>()?,
        duration,
    })
}

/// Writes `files` (init, then each segment) into a new hidden temp file in
/// `folder`, removed when the returned path is dropped: one fragmented MP4.
/// A copy (not a pipe or ffmpeg's `concat:` protocol) so ffmpeg reads an
/// ordinary seekable local file through the usual whitelist; done off the
/// runtime with `std::io::copy`, which lets the kernel copy
/// (`copy_file_range`).
pub async fn join(
    files: &MediaFiles,
    folder: &Path,
) -> Result<tempfile::TempPath, LadderFolderError> {
    let parts: Vec<PathBuf> = std::iter::once(&files.init)
        .chain(&files.segments)
        .cloned()
        .collect();
    let dir = folder.to_owned();
    let joined = crate::fsutil::off_runtime(move || -> std::io::Result<tempfile::TempPath> {
        let mut out = tempfile::Builder::new()
            .prefix(".joined-")
            .suffix(".mp4")
            .tempfile_in(dir)?;
        for part in parts {
            std::io::copy(&mut std::fs::File::open(part)?, out.as_file_mut())?;
        }
        Ok(out.into_temp_path())
    })
    .await?;
    Ok(joined)
}

/// Moves `temp` to `to` (replacing it) after flushing it to disk, so `to`
/// is the old file or the whole new one.
pub async fn place(temp: &Path, to: &Path) -> Result<(), LadderFolderError> {
    let (temp, to) = (temp.to_owned(), to.to_owned());
    crate::fsutil::off_runtime(move || {
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, &to)?;
        match to.parent() {
            Some(dir) => crate::fsutil::sync_dir(dir),
            None => Ok(()),
        }
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER_TEXT: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_2\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n360p/index.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n480p/index.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\",AUDIO=\"group_audio\"\naudio/index.m3u8\n";

    #[tokio::test]
    async fn the_master_gives_rungs_tallest_first_and_the_sound() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(MASTER), MASTER_TEXT).expect("write");
        let ladder = read(dir.path()).await.expect("a ladder");
        let heights: Vec<u32> = ladder.video.iter().map(|r| r.height).collect();
        assert_eq!(heights, vec![480, 360]);
        assert_eq!(ladder.video[0].playlist, dir.path().join("480p/index.m3u8"));
        assert_eq!(ladder.audio, Some(dir.path().join("audio/index.m3u8")));

        // Without EXT-X-MEDIA the audio-only variant is the sound; without
        // either there is none.
        std::fs::write(
            dir.path().join(MASTER),
            MASTER_TEXT.replace("#EXT-X-MEDIA:", "#X:"),
        )
        .expect("write");
        let ladder = read(dir.path()).await.expect("a ladder");
        assert_eq!(ladder.audio, Some(dir.path().join("audio/index.m3u8")));
        let silent = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=320x240\n360p/index.m3u8\n";
        std::fs::write(dir.path().join(MASTER), silent).expect("write");
        assert_eq!(read(dir.path()).await.expect("a ladder").audio, None);
    }

    #[tokio::test]
    async fn a_media_playlist_lists_its_files_inside_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let playlist = dir.path().join("index.m3u8");
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init_0.mp4\"\n\
#EXTINF:4.000000,\nseg00000.m4s\n#EXTINF:3.000000,\nseg00001.m4s\n#EXT-X-ENDLIST\n";
        std::fs::write(&playlist, text).expect("write");
        let files = media_files(&playlist).await.expect("files");
        assert_eq!(files.init, dir.path().join("init_0.mp4"));
        assert_eq!(
            files.segments,
            vec![
                dir.path().join("seg00000.m4s"),
                dir.path().join("seg00001.m4s")
            ]
        );
        assert!((files.duration - 7.0).abs() < 1e-9);

        std::fs::write(&playlist, text.replace("seg00001.m4s", "../../etc/passwd")).expect("write");
        assert!(matches!(
            media_files(&playlist).await,
            Err(LadderFolderError::Playlist(_))
        ));
        std::fs::write(
            &playlist,
            text.replace("#EXT-X-MAP:URI=\"init_0.mp4\"\n", ""),
        )
        .expect("write");
        assert!(media_files(&playlist).await.is_err(), "no init");
    }
}
