//! The library: finished videos in the streams folder, with durations and
//! thumbnails.
//!
//! The folder is the source of truth (as the seed's Flash Media Server
//! streams folder was), so videos from any ingest path appear. Each file
//! version (name, size, mtime) is probed once (duration) and gets one
//! thumbnail, taken by ffmpeg the first time the file is listed, which is
//! when its encode has just ended; both are cached, single-flight: listings
//! that overlap wait for the one probe of a new file instead of running
//! their own. Sorting and paging are plain functions on the list. Who may
//! see which video: [`visibility`]. An HLS ladder folder is one item, its
//! facts read from its playlists: [`ladder`].

pub mod ladder;
pub mod visibility;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use sha2::Digest;
use tokio::sync::OnceCell;

use crate::metrics::Metrics;

/// Everything but RFC 3986 unreserved characters is escaped in URLs.
const URL_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How many files are probed at the same time.
const PROBES_AT_ONCE: usize = 4;

/// Extensions the library lists (what browsers can play).
const PLAYABLE: [&str; 5] = ["mp4", "m4v", "m4a", "webm", "mov"];

/// One finished video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Video {
    pub name: String,
    /// The name without its extension, for people.
    pub title: String,
    /// Where the browser fetches it (HTTP Range supported).
    pub url: String,
    /// Its page with the player.
    pub watch_url: String,
    /// Its thumbnail, when it has a picture.
    pub thumb: Option<String>,
    /// Seconds; 0 when unknown.
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    /// Unix seconds of the last change.
    pub modified: i64,
    /// The preset it was encoded with, when an upload made it ('' if not).
    pub preset: String,
    /// Whose upload made it, if one did; never sent to browsers.
    #[serde(skip)]
    pub owner: Option<crate::owner::Owner>,
    /// Whether it is an HLS ladder (a folder; `url` is its master playlist).
    pub hls: bool,
    /// A ladder's video rungs, tallest first; empty for a file.
    pub rungs: Vec<ladder::Rung>,
    /// A ladder still being encoded: playable from the start, growing
    /// (its duration and size are those encoded so far).
    pub encoding: bool,
    /// Its seek-bar preview tiles (WebVTT cues naming `…jpg#xywh=x,y,w,h`
    /// relative to it), when the encoder made them.
    pub storyboard: Option<String>,
    /// A single MP4 of it to download (a ladder's top rung), when made.
    pub download: Option<String>,
}

/// A ladder's storyboard, beside its master playlist.
pub const STORYBOARD: &str = "storyboard.vtt";

/// A ladder's download MP4, beside its master playlist.
pub const DOWNLOAD: &str = "download.mp4";

/// How the library is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    Title,
    Longest,
    Largest,
}

impl Sort {
    pub const ALL: [(Sort, &'static str, &'static str); 5] = [
        (Sort::Newest, "newest", "Newest first"),
        (Sort::Oldest, "oldest", "Oldest first"),
        (Sort::Title, "title", "Title A–Z"),
        (Sort::Longest, "longest", "Longest first"),
        (Sort::Largest, "largest", "Largest first"),
    ];

    pub fn key(self) -> &'static str {
        Sort::ALL
            .iter()
            .find(|(s, _, _)| *s == self)
            .map(|(_, key, _)| *key)
            .unwrap_or("newest")
    }

    /// Orders `videos` (the listing is newest first already).
    pub fn apply(self, videos: &mut [Video]) {
        let by_title = |a: &Video, b: &Video| a.title.to_lowercase().cmp(&b.title.to_lowercase());
        match self {
            Sort::Newest => {}
            Sort::Oldest => videos.reverse(),
            Sort::Title => videos.sort_by(|a, b| by_title(a, b).then_with(|| a.name.cmp(&b.name))),
            Sort::Longest => videos.sort_by(|a, b| b.duration.total_cmp(&a.duration)),
            Sort::Largest => videos.sort_by_key(|v| std::cmp::Reverse(v.size)),
        }
    }
}

/// One page of a list: its items and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// 1-based, clamped to the pages there are.
    pub number: usize,
    pub pages: usize,
    pub total: usize,
}

/// Page `number` (1-based; out of range is clamped) of `items`.
pub fn paginate<T>(items: Vec<T>, number: usize, per_page: usize) -> Page<T> {
    let total = items.len();
    let pages = total.div_ceil(per_page.max(1)).max(1);
    let number = number.clamp(1, pages);
    let items = items
        .into_iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .collect();
    Page {
        items,
        number,
        pages,
        total,
    }
}

impl Video {
    /// `m:ss` (or `h:mm:ss`).
    pub fn duration_text(&self) -> String {
        let total = self.duration.round() as u64;
        let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
        if h > 0 {
            format!("{h}:{m:02}:{s:02}")
        } else {
            format!("{m}:{s:02}")
        }
    }

    /// The local date and time of the file, e.g. `2026-11-26 17:05`.
    pub fn date_text(&self) -> String {
        chrono::DateTime::from_timestamp(self.modified, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// Human size, e.g. `1.2 MB`.
    pub fn size_text(&self) -> String {
        bytesize::ByteSize(self.size).display().si().to_string()
    }

    /// A ladder's rungs for people, e.g. `480p, 360p`.
    pub fn rungs_text(&self) -> String {
        let names: Vec<&str> = self.rungs.iter().map(|r| r.name.as_str()).collect();
        names.join(", ")
    }

    /// The name its job's output is recorded under: the file's name, or
    /// `<folder>/master.m3u8` for a ladder.
    pub fn output_name(&self) -> String {
        if self.hls {
            format!("{}/{}", self.name, ladder::MASTER)
        } else {
            self.name.clone()
        }
    }
}

type Stamp = (u64, SystemTime);

/// What is learnt once per file version.
#[derive(Debug, Clone)]
struct Facts {
    duration: f64,
    /// File name under the thumbnails folder.
    thumb: Option<String>,
    /// A ladder's rungs.
    rungs: Vec<ladder::Rung>,
    /// A ladder's bytes (all its files) and latest change.
    totals: Option<(u64, SystemTime)>,
    /// Whether a ladder's folder holds [`STORYBOARD`] and [`DOWNLOAD`].
    storyboard: bool,
    download: bool,
}

/// One item found in the streams folder.
struct Found {
    name: String,
    /// A file's size and change; for a ladder, its version
    /// ([`ladder::version`]) until its facts give its totals.
    size: u64,
    modified: SystemTime,
    /// A ladder folder rather than a file.
    hls: bool,
    /// A ladder the encoder is still writing.
    encoding: bool,
}

/// Each file's facts for one version, learnt once: the first listing to
/// need them fills the cell, overlapping ones wait for it.
type FactsCell = Arc<OnceCell<Facts>>;

pub struct Library {
    dir: PathBuf,
    thumbs: PathBuf,
    facts: Mutex<HashMap<String, (Stamp, FactsCell)>>,
    metrics: Arc<Metrics>,
}

/// A percent-encoded path segment.
pub fn url_segment(name: &str) -> String {
    utf8_percent_encode(name, URL_ESCAPED).to_string()
}

impl Library {
    pub fn new(dir: PathBuf, thumbs: PathBuf, metrics: Arc<Metrics>) -> Self {
        Library {
            dir,
            thumbs,
            facts: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Every playable file and every ladder folder, newest first.
    pub async fn list(&self) -> Vec<Video> {
        self.metrics.library_listings.inc();
        let found = self.scan().await;
        // Probing is the slow part (a new file, or every file after a
        // restart): a few at a time. Sorted after, by the exact change
        // time (a ladder's is known once its facts are).
        let mut videos: Vec<(SystemTime, Video)> = futures_util::stream::iter(found)
            .map(|item| async move {
                let facts = self.facts(&item).await;
                let title = if item.hls {
                    item.name.clone()
                } else {
                    std::path::Path::new(&item.name)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| item.name.clone())
                };
                let url = if item.hls {
                    format!("/streams/{}/{}", url_segment(&item.name), ladder::MASTER)
                } else {
                    format!("/streams/{}", url_segment(&item.name))
                };
                let (size, modified) = facts.totals.unwrap_or((item.size, item.modified));
                let beside = |there: bool, file: &str| {
                    there.then(|| format!("/streams/{}/{file}", url_segment(&item.name)))
                };
                let video = Video {
                    url,
                    watch_url: format!("/watch/{}", url_segment(&item.name)),
                    thumb: facts.thumb.map(|t| format!("/thumbs/{t}")),
                    duration: facts.duration,
                    size,
                    modified: modified
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0),
                    title,
                    preset: String::new(),
                    owner: None,
                    hls: item.hls,
                    rungs: facts.rungs,
                    encoding: item.encoding,
                    storyboard: beside(facts.storyboard, STORYBOARD),
                    download: beside(facts.download, DOWNLOAD),
                    name: item.name,
                };
                (modified, video)
            })
            .buffered(PROBES_AT_ONCE)
            .collect()
            .await;
        videos.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        videos.into_iter().map(|(_, video)| video).collect()
    }

    /// The playable files at the top of the streams folder and its ladder
    /// folders (those holding a master playlist, which the encoder writes
    /// once every rung can play). Hidden names are skipped.
    async fn scan(&self) -> Vec<Found> {
        let mut found = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return found;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if meta.is_dir() {
                let changed = meta.modified().unwrap_or(UNIX_EPOCH);
                if let Some(version) = ladder::version(&entry.path(), changed).await {
                    found.push(Found {
                        name,
                        size: version.size,
                        modified: version.modified,
                        hls: true,
                        encoding: version.encoding,
                    });
                }
                continue;
            }
            let playable = std::path::Path::new(&name)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| PLAYABLE.contains(&e.to_ascii_lowercase().as_str()));
            if !playable || !meta.is_file() {
                continue;
            }
            found.push(Found {
                name,
                size: meta.len(),
                modified: meta.modified().unwrap_or(UNIX_EPOCH),
                hls: false,
                encoding: false,
            });
        }
        found
    }

    /// The facts of this version of `item`: cached, or learnt now by
    /// exactly one caller while any others wait for its answer.
    async fn facts(&self, item: &Found) -> Facts {
        // A ladder's key ends in `/`: never the same as a file's.
        let key = if item.hls {
            format!("{}/", item.name)
        } else {
            item.name.clone()
        };
        let stamp = (item.size, item.modified);
        let cell = {
            let mut known = self.facts.lock();
            match known.get(&key) {
                Some((seen, cell)) if *seen == stamp => cell.clone(),
                _ => {
                    let cell = FactsCell::default();
                    known.insert(key.clone(), (stamp, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| self.learn(item, &key, stamp))
            .await
            .clone()
    }

    /// Probes one file version (or reads a ladder's playlists) and makes
    /// its thumbnail.
    async fn learn(&self, item: &Found, key: &str, stamp: Stamp) -> Facts {
        self.metrics.library_probes.inc();
        let path = self.dir.join(&item.name);
        if item.hls {
            return self.learn_ladder(&path, key, stamp).await;
        }
        let duration = match crate::media::probe(&path).await {
            Ok(info) => info.duration.unwrap_or(0.0),
            Err(e) => {
                tracing::warn!(file = key, error = %e, "cannot probe a library file");
                0.0
            }
        };
        let thumb = match self.made_thumb(key, stamp).await {
            Some(made) => Some(made),
            None => self.thumbnail(key, stamp, &path, duration).await,
        };
        Facts {
            duration,
            thumb,
            rungs: Vec::new(),
            totals: None,
            storyboard: false,
            download: false,
        }
    }

    /// A ladder's facts from its playlists; its picture from the top
    /// rung's first fragment (init + first segment, joined in a temp file).
    async fn learn_ladder(&self, folder: &std::path::Path, key: &str, stamp: Stamp) -> Facts {
        let facts = ladder::read(folder).await;
        let thumb = match (self.made_thumb(key, stamp).await, &facts.first_fragment) {
            (Some(made), _) => Some(made),
            (None, Some((init, segment))) => match ladder::join_fragment(init, segment).await {
                Ok(fragment) => self.thumbnail(key, stamp, &fragment, facts.duration).await,
                Err(e) => {
                    tracing::info!(folder = key, error = %e, "cannot read a ladder's first fragment");
                    None
                }
            },
            (None, None) => None,
        };
        // Made after the rungs, into the same folder: the folder's change
        // makes a new version, so they are looked for again then.
        let holds = |file: &str| {
            let path = folder.join(file);
            async move {
                tokio::fs::symlink_metadata(path)
                    .await
                    .is_ok_and(|m| m.is_file())
            }
        };
        Facts {
            duration: facts.duration,
            thumb,
            rungs: facts.rungs,
            totals: facts.totals,
            storyboard: holds(STORYBOARD).await,
            download: holds(DOWNLOAD).await,
        }
    }

    /// The version's thumbnail if it was made already (before a restart).
    async fn made_thumb(&self, key: &str, stamp: Stamp) -> Option<String> {
        let file = thumb_name(key, stamp);
        tokio::fs::metadata(self.thumbs.join(&file))
            .await
            .is_ok_and(|m| m.is_file())
            .then_some(file)
    }

    /// Makes the version's thumbnail from `path`; `None` for a file
    /// without pictures (audio only) or that ffmpeg cannot read.
    async fn thumbnail(
        &self,
        key: &str,
        stamp: Stamp,
        path: &std::path::Path,
        duration: f64,
    ) -> Option<String> {
        let file = thumb_name(key, stamp);
        let target = self.thumbs.join(&file);
        // A second in (past a fade from black), or a third of a short clip.
        let at = (duration / 3.0).min(1.0);
        match crate::media::thumbnail::thumbnail(path, &target, at).await {
            Ok(()) => Some(file),
            Err(e) => {
                tracing::info!(file = key, error = %e, "no thumbnail");
                None
            }
        }
    }
}

/// A thumbnail's file name: a digest of the video's name and version, so a
/// replaced file gets a new picture and the name says nothing about it.
fn thumb_name(name: &str, (size, modified): Stamp) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = sha2::Sha256::digest(format!("{name}\0{size}\0{nanos}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_texts() {
        let v = sample("a.mp4", 61.6, 1_234_567);
        assert_eq!(v.duration_text(), "1:02");
        assert_eq!(v.size_text(), "1.2 MB");
        assert_eq!(
            Video {
                duration: 3725.0,
                ..v
            }
            .duration_text(),
            "1:02:05"
        );
    }

    fn sample(name: &str, duration: f64, size: u64) -> Video {
        Video {
            name: name.into(),
            title: name.trim_end_matches(".mp4").into(),
            url: format!("/streams/{name}"),
            watch_url: format!("/watch/{name}"),
            thumb: None,
            duration,
            size,
            modified: 0,
            preset: String::new(),
            owner: None,
            hls: false,
            rungs: Vec::new(),
            encoding: false,
            storyboard: None,
            download: None,
        }
    }

    #[test]
    fn sorting_and_pages() {
        let newest_first = vec![
            sample("b.mp4", 5.0, 10),
            sample("C.mp4", 50.0, 5),
            sample("a.mp4", 1.0, 99),
        ];
        let names = |videos: &[Video]| videos.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        for (sort, expected) in [
            (Sort::Newest, ["b.mp4", "C.mp4", "a.mp4"]),
            (Sort::Oldest, ["a.mp4", "C.mp4", "b.mp4"]),
            (Sort::Title, ["a.mp4", "b.mp4", "C.mp4"]),
            (Sort::Longest, ["C.mp4", "b.mp4", "a.mp4"]),
            (Sort::Largest, ["a.mp4", "b.mp4", "C.mp4"]),
        ] {
            let mut videos = newest_first.clone();
            sort.apply(&mut videos);
            assert_eq!(names(&videos), expected, "{sort:?}");
        }
        let page = paginate((1..=25).collect::<Vec<_>>(), 3, 12);
        assert_eq!(
            (page.items, page.number, page.pages, page.total),
            (vec![25], 3, 3, 25)
        );
        assert_eq!(paginate((1..=25).collect::<Vec<_>>(), 99, 12).number, 3);
        let empty = paginate(Vec::<u8>::new(), 0, 12);
        assert_eq!((empty.number, empty.pages, empty.total), (1, 1, 0));
    }

    #[test]
    fn thumbnail_names_change_with_the_file() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(5);
        let a = thumb_name("a.mp4", (10, t));
        assert_eq!(a, thumb_name("a.mp4", (10, t)));
        assert_ne!(a, thumb_name("a.mp4", (11, t)));
        assert_ne!(a, thumb_name("b.mp4", (10, t)));
        assert!(a.ends_with(".jpg") && a.len() == 36);
    }
}
