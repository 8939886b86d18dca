//! The library: finished videos in the streams folder, with durations.
//!
//! The folder is the source of truth (as the seed's Flash Media Server
//! streams folder was), so videos from any ingest path appear. Durations are
//! probed once per file version and cached.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use tokio::sync::Mutex;

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
    /// Where the browser fetches it (HTTP Range supported).
    pub url: String,
    /// Seconds; 0 when unknown.
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    /// Unix seconds of the last change.
    pub modified: i64,
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

    /// Human size, e.g. `1.2 MB`.
    pub fn size_text(&self) -> String {
        bytesize::ByteSize(self.size).display().si().to_string()
    }
}

type Stamp = (u64, SystemTime);

pub struct Library {
    dir: PathBuf,
    durations: Mutex<HashMap<String, (Stamp, f64)>>,
}

impl Library {
    pub fn new(dir: PathBuf) -> Self {
        Library {
            dir,
            durations: Mutex::new(HashMap::new()),
        }
    }

    /// Every playable file, newest first.
    pub async fn list(&self) -> Vec<Video> {
        let mut found: Vec<(String, u64, SystemTime)> = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return Vec::new();
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let playable = std::path::Path::new(&name)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| PLAYABLE.contains(&e.to_ascii_lowercase().as_str()));
            if name.starts_with('.') || !playable {
                continue;
            }
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(UNIX_EPOCH);
            found.push((name, meta.len(), modified));
        }
        found.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));

        // Probing is the slow part (a new file, or every file after a
        // restart): a few at a time, keeping the order.
        futures_util::stream::iter(found)
            .map(|(name, size, modified)| async move {
                let duration = self.duration(&name, (size, modified)).await;
                Video {
                    url: format!("/streams/{}", utf8_percent_encode(&name, URL_ESCAPED)),
                    duration,
                    size,
                    modified: modified
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0),
                    name,
                }
            })
            .buffered(PROBES_AT_ONCE)
            .collect()
            .await
    }

    async fn duration(&self, name: &str, stamp: Stamp) -> f64 {
        if let Some((seen, duration)) = self.durations.lock().await.get(name)
            && *seen == stamp
        {
            return *duration;
        }
        let duration = match crate::media::probe(&self.dir.join(name)).await {
            Ok(info) => info.duration.unwrap_or(0.0),
            Err(e) => {
                tracing::warn!(file = name, error = %e, "cannot probe a library file");
                0.0
            }
        };
        self.durations
            .lock()
            .await
            .insert(name.to_owned(), (stamp, duration));
        duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_texts() {
        let v = Video {
            name: "a.mp4".into(),
            url: "/streams/a.mp4".into(),
            duration: 61.6,
            size: 1_234_567,
            modified: 0,
        };
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
}
