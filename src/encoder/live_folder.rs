//! An HLS ladder's folder in its destination, written live so it can be
//! watched while it encodes. Owns the folder's life:
//!
//! 1. **Claimed** before ffmpeg starts ([`LiveFolder::claim`]):
//!    `<dest>/<base>/` (else `<base>-1/`…), built under a hidden name with
//!    a `.encoding` marker holding the job's GUID, then renamed into place.
//! 2. ffmpeg writes into it (segments and playlists via `*.tmp` + rename,
//!    its own master hidden as `.ffmpeg-master.m3u8`).
//! 3. **Published** ([`publish_when_playable`]) once every media playlist
//!    lists a segment: our `master.m3u8` ([`crate::encoder::preset::master`])
//!    appears, atomically. That is the ladder's first playable moment.
//! 4. **Extras** ([`make_extras`]) when ffmpeg is done: the download MP4
//!    and the storyboard, remuxed and pictured from the rungs
//!    ([`crate::media::download`], [`crate::media::storyboard`]).
//! 5. **Finished** ([`LiveFolder::finish`]): ffmpeg's master goes, then
//!    the marker, last.
//!
//! Dropped unfinished (stop, failure, shutdown) it is removed whole. A
//! crash leaves it with its marker; [`remove_if_ours`] clears it before the
//! job runs again, and never touches a folder without the marker or with
//! another job's GUID in it (a finished video, someone else's encode).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::carbon::Guid;
use crate::encoder::preset::ladder::{FFMPEG_MASTER_PLAYLIST, MASTER_PLAYLIST};
use crate::encoder::preset::master;
use crate::fsutil;
use crate::media::hls_folder::{self, LadderFolderError};
use crate::metrics::Metrics;
use crate::store::jobs::Repair;
use crate::store::{JobStore, StoreError};

/// The marker of a folder being encoded; it holds the job's GUID.
pub use crate::media::hls_folder::ENCODING_MARKER as MARKER;

/// How often a folder is looked at until it is playable.
const POLL: Duration = Duration::from_millis(200);

/// A claimed ladder folder; removed with everything in it on drop unless
/// [`LiveFolder::finish`] finished it.
#[derive(Debug)]
pub struct LiveFolder {
    path: PathBuf,
    finished: bool,
}

impl LiveFolder {
    /// Claims `dir/stem/` (or `stem-1/`… if taken, so two jobs never share
    /// one) with the marker already in it: the folder is built under a
    /// hidden name and renamed into place without replacing anything, so
    /// it never exists unmarked, even if the process dies meanwhile. What
    /// an earlier run of the same job left (a hidden folder, or a claimed
    /// one whose claim was never recorded) is removed first. Blocking.
    pub fn claim(dir: &Path, stem: &str, guid: Guid) -> io::Result<LiveFolder> {
        let staging = dir.join(format!(
            ".{}.claiming",
            guid.to_string().trim_matches(['{', '}'])
        ));
        remove_earlier_claims(dir, stem, &staging, guid)?;
        std::fs::create_dir(&staging)?;
        let placed = fsutil::write_new(&staging.join(MARKER), guid.to_string().as_bytes())
            .and_then(|()| fsutil::sync_dir(&staging))
            .and_then(|()| {
                fsutil::claim_unique(dir, stem, "", |candidate| {
                    fsutil::rename_no_replace(&staging, candidate)
                })
            });
        let path = match placed {
            Ok(path) => path,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        fsutil::sync_dir(dir)?;
        Ok(LiveFolder {
            path,
            finished: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The job's output: the master playlist, once published.
    pub fn master(&self) -> PathBuf {
        self.path.join(MASTER_PLAYLIST)
    }

    /// Once ffmpeg has finished: publishes the master if it is not yet
    /// (a clip shorter than the watcher's first look), flushes every file,
    /// removes ffmpeg's master and then the marker. Returns the output.
    /// Blocking.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        if !self.master().exists() && !publish_if_playable(&self.path)? {
            return Err(io::Error::other(
                "ffmpeg finished without a segment in every playlist",
            ));
        }
        // Its extras (download MP4, storyboard) were made before this, by
        // `make_extras`: the marker goes only after them.
        remove_if_there(&self.path.join(FFMPEG_MASTER_PLAYLIST))?;
        fsutil::sync_tree(&self.path)?;
        std::fs::remove_file(self.path.join(MARKER))?;
        fsutil::sync_dir(&self.path)?;
        self.finished = true;
        Ok(self.master())
    }
}

/// Makes a finished ladder's extras in its folder, after ffmpeg and
/// before the marker goes: the top rung and the sound remuxed into one
/// MP4 to download, and the seek bar's storyboard. Their failure is
/// logged, not the job's: the ladder plays without them, and the page
/// offers only what exists.
pub async fn make_extras(guid: Guid, folder: &Path) {
    if let Err(e) = crate::media::download::write_download_mp4(folder).await {
        tracing::warn!(%guid, folder = %folder.display(), error = %e, "no download MP4 for this ladder");
    }
    if let Err(e) = storyboard(folder).await {
        tracing::warn!(%guid, folder = %folder.display(), error = %e, "no storyboard for this ladder");
    }
}

/// The storyboard of the ladder in `folder`, as long as its top rung.
async fn storyboard(folder: &Path) -> Result<(), LadderFolderError> {
    let ladder = hls_folder::read(folder).await?;
    let duration = hls_folder::media_files(&ladder.top().playlist)
        .await?
        .duration;
    crate::media::storyboard::write_storyboard(folder, duration).await?;
    Ok(())
}

impl Drop for LiveFolder {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Out of sight at once (one rename), then removed: a killed ffmpeg
        // may still finish a write under the old name meanwhile.
        let hidden = self
            .path
            .with_file_name(format!(".{}.removing", uuid::Uuid::new_v4().simple()));
        let doomed = match std::fs::rename(&self.path, &hidden) {
            Ok(()) => hidden,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => self.path.clone(),
        };
        // Twice: a write that raced the first pass makes it fail (not empty).
        let removed =
            std::fs::remove_dir_all(&doomed).or_else(|_| std::fs::remove_dir_all(&doomed));
        if let Err(e) = removed {
            tracing::warn!(path = %doomed.display(), error = %e, "could not remove an unfinished ladder folder");
        }
    }
}

/// Removes `folder` if its marker names `guid` (a folder this job left
/// mid-encode). A folder without the marker (finished), with another
/// GUID, or missing is left alone. Returns whether it was removed. Blocking.
pub fn remove_if_ours(folder: &Path, guid: Guid) -> io::Result<bool> {
    if !folder.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let marker = match std::fs::read_to_string(folder.join(MARKER)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if marker.trim() != guid.to_string() {
        return Ok(false);
    }
    std::fs::remove_dir_all(folder)?;
    Ok(true)
}

/// Removes what an earlier run of job `guid` left in `dir`: its hidden
/// `staging` folder, and any `stem`, `stem-1`… folder still marked with its
/// GUID (a run killed before its claim was recorded). The numbered names
/// are looked at up to the first that does not exist, where a claim stops.
fn remove_earlier_claims(dir: &Path, stem: &str, staging: &Path, guid: Guid) -> io::Result<()> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for name in fsutil::numbered_names(stem, "") {
        let candidate = dir.join(name);
        if candidate.symlink_metadata().is_err() {
            break;
        }
        if remove_if_ours(&candidate, guid)? {
            tracing::info!(folder = %candidate.display(), "removed the folder an interrupted run left");
        }
    }
    Ok(())
}

/// The folder of a recorded ladder output (`<folder>/master.m3u8`), or
/// `None` for any other output.
pub fn folder_of(output: &Path) -> Option<&Path> {
    (output.file_name()? == MASTER_PLAYLIST)
        .then(|| output.parent())
        .flatten()
}

/// Removes the ladder folders that the held jobs `scope` names (left
/// mid-flight by a crash, a shutdown or a dead node) were writing (their
/// recorded output, still marked with their GUID) and forgets those jobs'
/// outputs, so they start clean when they run again. Run before the jobs
/// are put back in the queue. A folder that cannot be removed keeps its
/// job's output recorded (the job tries again when it starts). Returns how
/// many folders were removed.
pub async fn clean_interrupted(jobs: &JobStore, scope: Repair<'_>) -> Result<usize, StoreError> {
    let mut removed = 0;
    for (guid, output) in jobs.interrupted_outputs(scope).await? {
        let Some(folder) = folder_of(&output).map(Path::to_path_buf) else {
            continue;
        };
        let shown = folder.clone();
        match fsutil::off_runtime(move || remove_if_ours(&folder, guid)).await {
            Ok(gone) => {
                removed += usize::from(gone);
                jobs.forget_outputs(guid).await?;
            }
            Err(e) => {
                tracing::warn!(%guid, folder = %shown.display(), error = %e, "could not remove an interrupted ladder folder");
            }
        }
    }
    Ok(removed)
}

/// Writes `folder`'s `master.m3u8` if ffmpeg's master is there and every
/// media playlist it names lists a segment. Returns whether it did.
/// Blocking.
pub fn publish_if_playable(folder: &Path) -> io::Result<bool> {
    let ffmpeg_master = match std::fs::read_to_string(folder.join(FFMPEG_MASTER_PLAYLIST)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let playable = master::every_playlist_has_a_segment(&ffmpeg_master, |uri| {
        plain_relative(uri).then(|| std::fs::read_to_string(folder.join(uri)).ok())?
    });
    if playable {
        fsutil::write_atomic(
            &folder.join(MASTER_PLAYLIST),
            master::rewrite(&ffmpeg_master).as_bytes(),
        )?;
    }
    Ok(playable)
}

/// Looks at each folder every [`POLL`] until all are published, announcing
/// each (see [`announce`]). Runs beside ffmpeg; the caller drops it when
/// ffmpeg ends and publishes what is left with [`LiveFolder::finish`].
pub async fn publish_when_playable(
    mut folders: Vec<PathBuf>,
    guid: Guid,
    started: Instant,
    metrics: Arc<Metrics>,
) -> io::Result<()> {
    loop {
        let looked = folders.clone();
        let published: Vec<bool> = fsutil::off_runtime(move || {
            looked
                .iter()
                .map(|f| publish_if_playable(f))
                .collect::<io::Result<_>>()
        })
        .await?;
        let mut flags = published.into_iter();
        folders.retain(|folder| {
            let done = flags.next().unwrap_or(false);
            if done {
                announce(guid, folder, started, &metrics);
            }
            !done
        });
        if folders.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Logs and measures a ladder's first playable moment, `started` being
/// ffmpeg's start.
pub fn announce(guid: Guid, folder: &Path, started: Instant, metrics: &Metrics) {
    let after = started.elapsed();
    metrics
        .hls_first_playable_seconds
        .observe(after.as_secs_f64());
    tracing::info!(
        target: "videoshare::hls",
        %guid,
        folder = %folder.display(),
        after_ms = after.as_millis() as u64,
        "ladder playable"
    );
}

/// Whether a playlist URI is a plain path inside the folder (ffmpeg's are;
/// anything else is not read).
fn plain_relative(uri: &str) -> bool {
    let path = Path::new(uri);
    !uri.is_empty()
        && !uri.contains("://")
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn remove_if_there(file: &Path) -> io::Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    const FFMPEG_MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_1\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n\
360p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\",AUDIO=\"group_audio\"\n\
audio/index.m3u8\n";
    const ONE_SEGMENT: &str =
        "#EXTM3U\n#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:4.0,\nseg00000.m4s\n";

    #[test]
    fn a_claimed_folder_is_marked_published_when_playable_and_finished_marker_last() {
        let dest = tempfile::tempdir().expect("tempdir");
        let guid = Guid::new_random();
        let folder = LiveFolder::claim(dest.path(), "clip", guid).expect("claimed");
        assert_eq!(folder.path(), dest.path().join("clip"));
        let marker = std::fs::read_to_string(folder.path().join(MARKER)).expect("marker");
        assert_eq!(marker, guid.to_string());
        let other = Guid::new_random();
        let twin = LiveFolder::claim(dest.path(), "clip", other).expect("claimed");
        assert_eq!(twin.path(), dest.path().join("clip-1"), "a free name");
        // Its process dies (nothing dropped): the job's next run takes the
        // same name again, with no `clip-2` twin.
        std::mem::forget(twin);
        let again = LiveFolder::claim(dest.path(), "clip", other).expect("claimed");
        assert_eq!(again.path(), dest.path().join("clip-1"));
        drop(again);
        assert!(!dest.path().join("clip-1").exists(), "unfinished: removed");

        let path = folder.path().to_path_buf();
        write(&path.join(FFMPEG_MASTER_PLAYLIST), FFMPEG_MASTER);
        write(&path.join("360p/index.m3u8"), ONE_SEGMENT);
        assert!(!publish_if_playable(&path).expect("looked"), "no audio yet");
        write(&path.join("audio/index.m3u8"), "#EXTM3U\n");
        assert!(!publish_if_playable(&path).expect("looked"), "no segment");
        assert!(!folder.master().exists());
        write(&path.join("audio/index.m3u8"), ONE_SEGMENT);
        assert!(publish_if_playable(&path).expect("looked"));
        let published = std::fs::read_to_string(folder.master()).expect("master");
        assert_eq!(published, master::rewrite(FFMPEG_MASTER));

        let output = folder.finish().expect("finished");
        assert_eq!(output, path.join(MASTER_PLAYLIST));
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["360p", "audio", "master.m3u8"]);
    }

    #[test]
    fn only_a_folder_marked_with_this_job_is_removed() {
        let dest = tempfile::tempdir().expect("tempdir");
        let (ours, theirs) = (Guid::new_random(), Guid::new_random());
        let mine = dest.path().join("mine");
        write(&mine.join(MARKER), &ours.to_string());
        write(&mine.join("360p/seg00000.m4s"), "x");
        let other = dest.path().join("other");
        write(&other.join(MARKER), &theirs.to_string());
        let finished = dest.path().join("finished");
        write(&finished.join(MASTER_PLAYLIST), "#EXTM3U\n");

        for folder in [&other, &finished, &dest.path().join("missing")] {
            assert!(!remove_if_ours(folder, ours).expect("looked"));
        }
        assert!(other.exists() && finished.exists());
        assert!(remove_if_ours(&mine, ours).expect("removed"));
        assert!(!mine.exists());
    }

    #[test]
    fn a_recorded_output_names_its_ladder_folder() {
        assert_eq!(
            folder_of(Path::new("/s/clip/master.m3u8")),
            Some(Path::new("/s/clip"))
        );
        assert_eq!(folder_of(Path::new("/s/clip.mp4")), None);
    }

    #[test]
    fn only_plain_relative_uris_are_read() {
        assert!(plain_relative("360p/index.m3u8"));
        for bad in ["../x/index.m3u8", "/etc/passwd", "http://a/b.m3u8", ""] {
            assert!(!plain_relative(bad), "{bad}");
        }
    }
}
