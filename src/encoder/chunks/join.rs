//! Joining a chunked encode's pieces, without re-encoding: the MPEG-TS
//! picture pieces and the sound file into one MP4 ([`join_mp4`], a stream
//! copy), and the chunks' ladder segments into the job's live ladder
//! folder ([`assemble_ladder`], links and playlists, no ffmpeg).
//!
//! Both rely on the chunks keeping the source's times (see
//! [`super::args`]): pieces concatenate byte for byte, and a chunk's
//! segments are the whole ladder's segments, with one init segment.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::encoder::preset::ladder::FFMPEG_MASTER_PLAYLIST;
use crate::encoder::preset::master;
use crate::fsutil;
use crate::media::ffmpeg_args::FfmpegArgs;
use crate::media::hls_folder::join_uri;
use crate::media::playlist;
use crate::media::process::{ProcessError, run_for_stdout, spawn_error};

/// A stream copy of hours of video takes minutes at worst.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Joins `pieces` (MPEG-TS picture pieces, in playing order) and the sound
/// file `audio` (an `.m4a`) into the MP4 `out`, index first, by stream
/// copy. The pieces are read as one byte stream through a list file
/// beside `out` (ffmpeg's `concatf`, so any number of pieces fits), with
/// their own times kept (`-copyts`: a picture starting after the sound
/// stays so): the MP4 plays as a one-run encode does.
pub async fn join_mp4(
    pieces: &[PathBuf],
    audio: Option<&Path>,
    out: &Path,
) -> Result<(), ProcessError> {
    let folder = out.parent().unwrap_or(Path::new("."));
    let list = write_piece_list(pieces, folder).map_err(|e| spawn_error("ffmpeg", e))?;
    let mut args = FfmpegArgs::new()
        .with(["-y", "-copyts"])
        .pieces_input(&list);
    if let Some(audio) = audio {
        args = args.media_input(std::iter::empty::<&str>(), audio);
    }
    args = args.with(["-map", "0:v:0"]);
    if audio.is_some() {
        args = args.with(["-map", "1:a:0"]);
    }
    let args = args
        .with(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"])
        .output(out);
    let ran = run_for_stdout("ffmpeg", args.as_slice(), JOIN_TIMEOUT).await;
    drop(list);
    ran.map(drop).map_err(|e| args.name_files_only_in(e))
}

/// Writes the `concatf` list of `pieces` (one `file:` URL a line) as a
/// hidden temp file in `folder`, removed when dropped.
fn write_piece_list(pieces: &[PathBuf], folder: &Path) -> io::Result<tempfile::TempPath> {
    let mut list = tempfile::Builder::new()
        .prefix(".pieces-")
        .suffix(".txt")
        .tempfile_in(folder)?;
    for piece in pieces {
        let piece = std::path::absolute(piece)?;
        let Some(name) = piece.to_str().filter(|p| !p.contains(['\n', '\r'])) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a piece's path cannot be listed (not UTF-8, or a line break in it)",
            ));
        };
        writeln!(list, "file:{name}")?;
    }
    list.flush()?;
    Ok(list.into_temp_path())
}

/// Puts the finished chunks' ladder folders `chunks` (a contiguous prefix
/// of the job's chunks, in order) and the sound's ladder folder `audio`
/// (when encoded) into the job's live ladder folder `live`, so that
/// [`crate::encoder::live_folder::publish_if_playable`] publishes it as a
/// one-run ladder: each rung's init segment and segments linked in
/// (copied across file systems), each rung's `index.m3u8` listing them in
/// order (ended when `ended`), the sound's rendition as ffmpeg wrote it,
/// and ffmpeg's hidden master with the sound's group.
///
/// Idempotent: called again with a longer prefix it adds the new chunks'
/// segments and rewrites the playlists (each atomically). Fails, naming
/// the rung and the chunk, when a chunk's init segment differs from the
/// first chunk's (its segments could not follow the others'). Blocking.
pub fn assemble_ladder(
    chunks: &[PathBuf],
    audio: Option<&Path>,
    live: &Path,
    ended: bool,
) -> io::Result<()> {
    let Some(first) = chunks.first() else {
        return Ok(());
    };
    let rungs_master = std::fs::read_to_string(first.join(FFMPEG_MASTER_PLAYLIST))?;
    for uri in master::media_playlists(&rungs_master) {
        assemble_rung(chunks, &uri, live, ended)?;
    }
    let master = match audio {
        Some(folder) => {
            let sound_master = std::fs::read_to_string(folder.join(FFMPEG_MASTER_PLAYLIST))?;
            for uri in master::media_playlists(&sound_master) {
                place_rendition(folder, &uri, live)?;
            }
            master::with_sound(&rungs_master, &sound_master)
        }
        None => rungs_master,
    };
    fsutil::write_atomic(&live.join(FFMPEG_MASTER_PLAYLIST), master.as_bytes())
}

/// A path inside `base` named by a playlist's URI, or an error saying so.
fn inside(base: &Path, uri: &str) -> io::Result<PathBuf> {
    join_uri(base, uri).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{uri} is not a file inside the ladder"),
        )
    })
}

/// The folder of a media playlist's URI (`360p` of `360p/index.m3u8`).
fn rendition_of(uri: &str) -> &str {
    uri.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// One rung (`uri`: its media playlist in every chunk) into `live`.
fn assemble_rung(chunks: &[PathBuf], uri: &str, live: &Path, ended: bool) -> io::Result<()> {
    let rung = rendition_of(uri);
    let live_playlist = inside(live, uri)?;
    let live_dir = live_playlist.parent().unwrap_or(live).to_owned();
    std::fs::create_dir_all(&live_dir)?;
    let mut first_init: Option<(String, Vec<u8>)> = None;
    let mut target = 0;
    let mut segments: Vec<(String, f64)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let playlist_path = inside(chunk, uri)?;
        let chunk_dir = playlist_path.parent().unwrap_or(chunk);
        let media = playlist::media(&std::fs::read_to_string(&playlist_path)?);
        let problem = |what: String| io::Error::other(format!("rung {rung}: chunk {n}'s {what}"));
        let init = media
            .init
            .ok_or_else(|| problem("playlist has no init segment (EXT-X-MAP)".into()))?;
        let bytes = std::fs::read(inside(chunk_dir, &init)?)?;
        match &first_init {
            None => {
                place_file(&inside(chunk_dir, &init)?, &inside(&live_dir, &init)?)?;
                first_init = Some((init, bytes));
            }
            Some((_, first)) if *first != bytes => {
                return Err(problem("init segment differs from chunk 0's".into()));
            }
            Some(_) => {}
        }
        target = target.max(media.target.unwrap_or(0));
        for (segment, seconds) in media.segments.into_iter().zip(media.durations) {
            if !seen.insert(segment.clone()) {
                return Err(problem(format!("segment {segment} is another chunk's too")));
            }
            place_file(&inside(chunk_dir, &segment)?, &inside(&live_dir, &segment)?)?;
            segments.push((segment, seconds));
        }
    }
    let Some((init, _)) = first_init else {
        return Ok(());
    };
    fsutil::sync_dir(&live_dir)?;
    let text = playlist::media_playlist(target, &init, &segments, ended);
    fsutil::write_atomic(&live_playlist, text.as_bytes())
}

/// A rendition written whole by one run (the sound), playlist as written.
fn place_rendition(folder: &Path, uri: &str, live: &Path) -> io::Result<()> {
    let playlist_path = inside(folder, uri)?;
    let text = std::fs::read_to_string(&playlist_path)?;
    let media = playlist::media(&text);
    let from_dir = playlist_path.parent().unwrap_or(folder);
    let live_playlist = inside(live, uri)?;
    let live_dir = live_playlist.parent().unwrap_or(live).to_owned();
    std::fs::create_dir_all(&live_dir)?;
    for file in media.init.iter().chain(&media.segments) {
        place_file(&inside(from_dir, file)?, &inside(&live_dir, file)?)?;
    }
    fsutil::sync_dir(&live_dir)?;
    fsutil::write_atomic(&live_playlist, text.as_bytes())
}

/// Makes `to` the file `from` is: a hard link (one file system, nothing
/// copied), else a flushed copy, placed under a hidden name and renamed
/// over `to`, so `to` is never half there. Nothing to do when `to` is
/// already `from` (placed by an earlier call).
fn place_file(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let source = std::fs::metadata(from)?;
    if let Ok(there) = std::fs::metadata(to)
        && (there.dev(), there.ino()) == (source.dev(), source.ino())
    {
        return Ok(());
    }
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = to.with_file_name(format!(".{}.placing", name.unwrap_or_default()));
    let _ = std::fs::remove_file(&temp);
    if std::fs::hard_link(from, &temp).is_err() {
        std::fs::copy(from, &temp)?;
        std::fs::File::open(&temp)?.sync_all()?;
    }
    std::fs::rename(&temp, to).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk's ladder folder as ffmpeg leaves it: one rung, `init`
    /// bytes, segments numbered from `first`.
    fn chunk(dir: &Path, name: &str, init: &[u8], first: u32, count: u32) -> PathBuf {
        let folder = dir.join(name);
        std::fs::create_dir_all(folder.join("360p")).expect("mkdir");
        std::fs::write(
            folder.join(FFMPEG_MASTER_PLAYLIST),
            "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-STREAM-INF:BANDWIDTH=880000,RESOLUTION=320x240,CODECS=\"avc1.640014\"\n360p/index.m3u8\n",
        )
        .expect("master");
        std::fs::write(folder.join("360p/init.mp4"), init).expect("init");
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
#EXT-X-MAP:URI=\"init.mp4\"\n"
        );
        for n in first..first + count {
            let segment = format!("seg{n:05}.m4s");
            std::fs::write(folder.join("360p").join(&segment), n.to_string()).expect("seg");
            text.push_str(&format!("#EXTINF:4.000000,\n{segment}\n"));
        }
        text.push_str("#EXT-X-ENDLIST\n");
        std::fs::write(folder.join("360p/index.m3u8"), text).expect("playlist");
        folder
    }

    #[test]
    fn a_growing_prefix_of_chunks_makes_one_rung_and_a_differing_init_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live");
        std::fs::create_dir(&live).expect("live");
        let chunks = [
            chunk(dir.path(), "c0", b"init", 0, 2),
            chunk(dir.path(), "c1", b"init", 2, 2),
        ];
        assemble_ladder(&chunks[..1], None, &live, false).expect("first chunk");
        let text = std::fs::read_to_string(live.join("360p/index.m3u8")).expect("playlist");
        assert_eq!(
            playlist::media(&text).segments,
            ["seg00000.m4s", "seg00001.m4s"]
        );
        assert!(!text.contains("ENDLIST"), "{text}");
        assemble_ladder(&chunks, None, &live, true).expect("both");
        assemble_ladder(&chunks, None, &live, true).expect("again: idempotent");
        let media = playlist::media(
            &std::fs::read_to_string(live.join("360p/index.m3u8")).expect("playlist"),
        );
        assert_eq!(media.segments.len(), 4);
        assert!(media.ended && (media.duration - 16.0).abs() < 1e-9);
        assert_eq!(
            std::fs::read_to_string(live.join("360p/seg00003.m4s")).expect("linked"),
            "3"
        );
        assert!(crate::encoder::live_folder::publish_if_playable(&live).expect("publish"));

        let odd = chunk(dir.path(), "c2", b"other", 4, 1);
        let err = assemble_ladder(
            &[chunks[0].clone(), chunks[1].clone(), odd],
            None,
            &live,
            true,
        )
        .expect_err("a differing init");
        assert!(
            err.to_string()
                .contains("rung 360p: chunk 2's init segment differs"),
            "{err}"
        );
    }

    #[test]
    fn piece_lists_name_absolute_files_one_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = write_piece_list(
            &[PathBuf::from("/p/v00000.ts"), PathBuf::from("/p/v00001.ts")],
            dir.path(),
        )
        .expect("list");
        assert_eq!(
            std::fs::read_to_string(&list).expect("read"),
            "file:/p/v00000.ts\nfile:/p/v00001.ts\n"
        );
        assert!(write_piece_list(&[PathBuf::from("/p/a\nb.ts")], dir.path()).is_err());
    }
}
