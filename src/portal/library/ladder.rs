//! HLS ladder folders in the streams folder (a folder holding
//! `master.m3u8`): one library item each, and how `/streams/` names and
//! serves their files.
//!
//! Facts come from the playlists the encoder wrote, never from ffprobe
//! (the product's whitelist refuses the `hls` demuxer): the rungs from the
//! master playlist's `RESOLUTION` lines, the duration from the top rung's
//! `EXTINF` sum, the size from every file in the folder. A picture comes
//! from the top rung's init segment and first media segment joined into
//! one fragmented MP4 in a temp file, which ffmpeg reads as a local file.
//! Knows playlist text and the folder's layout; nothing of how a ladder is
//! encoded.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use crate::media::hls_folder::join_uri;
use crate::media::hls_folder::read_playlist;
/// The master playlist's name (the job's target file), and the marker the
/// encoder keeps in a ladder folder while it still writes it.
pub use crate::media::hls_folder::{ENCODING_MARKER, MASTER};
use crate::media::playlist;

/// The largest init + first segment joined for a picture.
const MAX_FRAGMENT: u64 = 64 << 20;

/// One video rendition of a ladder, as its master playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// The rung's folder (`480p`), or its playlist's name.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
}

/// What is learnt from a ladder's playlists.
#[derive(Debug, Clone, Default)]
pub struct LadderFacts {
    pub rungs: Vec<Rung>,
    pub duration: f64,
    /// The top rung's init segment and first media segment.
    pub first_fragment: Option<(PathBuf, PathBuf)>,
    /// The bytes of every file in the folder and the latest change.
    pub totals: Option<(u64, SystemTime)>,
}

/// The video rungs of a master playlist, tallest first, each with its
/// media playlist's URI. Variants without `RESOLUTION` (audio only) are
/// not rungs.
pub fn master_rungs(text: &str) -> Vec<(Rung, String)> {
    let mut rungs: Vec<(Rung, String)> = playlist::master(text)
        .variants
        .into_iter()
        .filter_map(|variant| {
            let (width, height) = variant.size?;
            let uri = variant.uri;
            let name = match uri.rsplit_once('/') {
                Some((folder, _)) => folder.rsplit('/').next().unwrap_or(folder),
                None => &uri,
            };
            let rung = Rung {
                name: name.to_owned(),
                width,
                height,
                bandwidth: variant.bandwidth,
            };
            Some((rung, uri))
        })
        .collect();
    rungs.sort_by(|a, b| b.0.height.cmp(&a.0.height).then(b.0.width.cmp(&a.0.width)));
    rungs
}

/// A ladder folder's version, learnt cheaply on every listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The master playlist's length.
    pub size: u64,
    /// The later of the master playlist's change and the folder's own.
    pub modified: SystemTime,
    /// Whether the encoder is still writing it (its marker is there).
    pub encoding: bool,
}

/// A ladder's version, cheaply (two stats per listing); `None` when
/// `folder` holds no master playlist (not a ladder, or not playable yet).
/// The encoder writes the master once, when every rung has a segment, and
/// removes its marker last; each changes the folder's own time, so this
/// tells versions apart (still encoding, then whole) without walking the
/// segments on every listing.
pub async fn version(folder: &Path, folder_modified: SystemTime) -> Option<Version> {
    let master = tokio::fs::metadata(folder.join(MASTER)).await.ok()?;
    if !master.is_file() {
        return None;
    }
    let encoding = tokio::fs::symlink_metadata(folder.join(ENCODING_MARKER))
        .await
        .is_ok();
    Some(Version {
        size: master.len(),
        modified: master.modified().unwrap_or(UNIX_EPOCH).max(folder_modified),
        encoding,
    })
}

/// The bytes of every file in `folder` (rung folders included, links not
/// followed) and the latest change among them, in one blocking task.
pub async fn totals(folder: PathBuf) -> std::io::Result<(u64, SystemTime)> {
    tokio::task::spawn_blocking(move || {
        let (mut size, mut latest) = (0, UNIX_EPOCH);
        let mut pending = vec![folder];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                // Of the entry itself: a link is neither followed nor counted.
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if meta.is_file() {
                    size += meta.len();
                    latest = latest.max(meta.modified().unwrap_or(UNIX_EPOCH));
                }
            }
        }
        Ok((size, latest))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Reads a ladder's playlists. Unreadable parts leave their facts empty.
pub async fn read(folder: &Path) -> LadderFacts {
    let totals = match totals(folder.to_path_buf()).await {
        Ok(totals) => Some(totals),
        Err(e) => {
            tracing::warn!(folder = %folder.display(), error = %e, "cannot size a ladder");
            None
        }
    };
    let Ok(master) = read_playlist(&folder.join(MASTER)).await else {
        return LadderFacts {
            totals,
            ..LadderFacts::default()
        };
    };
    let listed = master_rungs(&master);
    let mut facts = LadderFacts {
        rungs: listed.iter().map(|(rung, _)| rung.clone()).collect(),
        totals,
        ..LadderFacts::default()
    };
    let Some(top) = listed.first().and_then(|(_, uri)| join_uri(folder, uri)) else {
        return facts;
    };
    let Ok(text) = read_playlist(&top).await else {
        return facts;
    };
    let playlist = playlist::media(&text);
    facts.duration = playlist.duration;
    let rung_dir = top.parent().unwrap_or(folder);
    facts.first_fragment = playlist
        .init
        .as_deref()
        .and_then(|uri| join_uri(rung_dir, uri))
        .zip(
            playlist
                .segments
                .first()
                .and_then(|uri| join_uri(rung_dir, uri)),
        );
    facts
}

/// Writes `init` then `segment` into a new temp file: one fragmented MP4
/// that ffmpeg reads as a local file (removed when dropped).
pub async fn join_fragment(init: &Path, segment: &Path) -> std::io::Result<tempfile::TempPath> {
    let size = tokio::fs::metadata(init).await?.len() + tokio::fs::metadata(segment).await?.len();
    if size > MAX_FRAGMENT {
        return Err(std::io::Error::other(format!(
            "the first fragment is {size} bytes, too large to picture"
        )));
    }
    let mut bytes = tokio::fs::read(init).await?;
    bytes.extend(tokio::fs::read(segment).await?);
    let file = tempfile::Builder::new()
        .prefix("videoshare-fragment-")
        .suffix(".mp4")
        .tempfile()?
        .into_temp_path();
    tokio::fs::write(&file, bytes).await?;
    Ok(file)
}

/// The recorded output a path under `/streams/` belongs to: the file
/// itself at the top, the ladder's master playlist (`<base>/master.m3u8`,
/// as job outputs name it) for anything under a folder `<base>/`.
pub fn output_of(path: &str) -> String {
    match path.split_once('/') {
        Some((base, _)) => format!("{base}/{MASTER}"),
        None => path.to_owned(),
    }
}

/// The library item a recorded output is: the file itself, or the
/// folder of a ladder's `<base>/master.m3u8`.
pub fn item_name(output: &str) -> &str {
    output
        .strip_suffix(MASTER)
        .and_then(|base| base.strip_suffix('/'))
        .filter(|base| !base.is_empty())
        .unwrap_or(output)
}

/// The output name the portal records for a job's target file: its file
/// name, or `<base>/master.m3u8` for a ladder (its folder kept, so
/// ladders are told apart).
pub fn recorded_name(target: &str) -> Option<String> {
    let mut parts = target.rsplit(['/', '\\']);
    let name = parts.next().filter(|n| !n.is_empty())?;
    match parts.next().filter(|base| !base.is_empty()) {
        Some(base) if name == MASTER => Some(format!("{base}/{MASTER}")),
        _ => Some(name.to_owned()),
    }
}

/// The content type of HLS playlists.
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// The content type `/streams/` sends for `path`, when it is one a
/// player needs and a guess could get wrong: playlists and fMP4 segments.
pub fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "m3u8" => Some(PLAYLIST_TYPE),
        "m4s" => Some("video/mp4"),
        _ => None,
    }
}

/// Whether a path under `/streams/` names something hidden: a name
/// starting with `.`, or a `.tmp` file (a segment ffmpeg is still
/// writing), percent-encoded or not. Work in progress, never served.
pub fn is_hidden(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded
        .split('/')
        .any(|part| part.starts_with('.') || part.to_ascii_lowercase().ends_with(".tmp"))
}

/// `/streams/`'s own rules: a hidden path is a 404 (as a missing file
/// is), and successful answers get [`content_type`]. Playlists are
/// `no-cache`: one still being encoded grows, and a player asking again
/// must see its new segments, not a cached copy.
pub(in crate::portal) async fn streams_rules(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_hidden(request.uri().path()) {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let wanted = content_type(request.uri().path());
    let mut response = next.run(request).await;
    if let Some(wanted) = wanted
        && response.status().is_success()
    {
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(wanted),
        );
        if wanted == PLAYLIST_TYPE {
            headers.insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-cache"),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::playlist::tests::MASTER as MASTER_TEXT;

    #[test]
    fn rungs_come_from_resolution_lines_tallest_first() {
        let rungs = master_rungs(MASTER_TEXT);
        let names: Vec<_> = rungs
            .iter()
            .map(|(r, uri)| {
                (
                    r.name.as_str(),
                    r.width,
                    r.height,
                    r.bandwidth,
                    uri.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("480p", 854, 480, 1_500_000, "480p/index.m3u8"),
                ("360p", 640, 360, 900_000, "360p/index.m3u8"),
            ]
        );
    }

    #[test]
    fn uris_stay_inside_the_folder() {
        let base = Path::new("/s/ladder");
        assert_eq!(
            join_uri(base, "480p/index.m3u8"),
            Some(base.join("480p/index.m3u8"))
        );
        for bad in ["../x", "/etc/passwd", "http://a/b", "a/../../b", "", "a\\b"] {
            assert_eq!(join_uri(base, bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_map_to_their_recorded_output() {
        assert_eq!(output_of("clip.mp4"), "clip.mp4");
        assert_eq!(output_of("ladder/master.m3u8"), "ladder/master.m3u8");
        assert_eq!(output_of("ladder/480p/seg00000.m4s"), "ladder/master.m3u8");
        assert_eq!(
            recorded_name("/data/streams/ladder/master.m3u8").as_deref(),
            Some("ladder/master.m3u8")
        );
        assert_eq!(
            recorded_name("C:\\out\\clip.mp4").as_deref(),
            Some("clip.mp4")
        );
        assert_eq!(recorded_name("master.m3u8").as_deref(), Some(MASTER));
        assert_eq!(recorded_name("/x/"), None);
        assert_eq!(item_name("ladder/master.m3u8"), "ladder");
        assert_eq!(item_name("clip.mp4"), "clip.mp4");
        assert_eq!(item_name("master.m3u8"), "master.m3u8");
        assert_eq!(
            content_type("/l/480p/index.M3U8"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(content_type("/l/480p/seg00001.m4s"), Some("video/mp4"));
        assert_eq!(content_type("/clip.mp4"), None);
        assert!(is_hidden("/.work/master.m3u8") && is_hidden("/l/%2Ea.m4s"));
        assert!(!is_hidden("/l/480p/seg00000.m4s") && !is_hidden("/a.b.mp4"));
        assert!(is_hidden("/l/480p/seg00003.m4s.tmp") && is_hidden("/l/480p/seg%2Etmp"));
    }
}
