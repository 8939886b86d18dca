//! Checks of encoded media with ffprobe, for tests of joined encodes
//! (chunks): frame counts, durations, where keyframes are, decode times
//! going forward, sound without gaps. Each reads one file; a ladder rung
//! is read as one file by [`ladder_rung_as_file`] (init + segments, as
//! `videoshare::media::hls_folder::join` does).
//!
//! These run ffprobe without the product's input whitelist: they read
//! what the tests made.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// ffprobe's CSV rows (no section names) for `entries` of `stream`
/// (`v:0`, `a:0`), with `extra` options.
fn probe_rows(path: &Path, stream: &str, entries: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(extra)
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse().ok().filter(|v: &f64| v.is_finite())
}

/// The video frames ffprobe decodes (`-count_frames`).
pub fn video_frames(path: &Path) -> u64 {
    let rows = probe_rows(path, "v:0", "stream=nb_read_frames", &["-count_frames"]);
    rows.first()
        .and_then(|r| r.first())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count for {}", path.display()))
}

/// (pts, duration) of every packet of `stream`, seconds, by pts.
fn packet_times(path: &Path, stream: &str) -> Vec<(f64, f64)> {
    let mut times: Vec<(f64, f64)> = probe_rows(path, stream, "packet=pts_time,duration_time", &[])
        .iter()
        .filter_map(|r| {
            Some((
                number(r.first()?)?,
                r.get(1).and_then(|d| number(d)).unwrap_or(0.0),
            ))
        })
        .collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    times
}

/// From the first packet's start to the last packet's end, seconds.
fn span(times: &[(f64, f64)]) -> f64 {
    match (
        times.first(),
        times.iter().map(|(t, d)| t + d).reduce(f64::max),
    ) {
        (Some((first, _)), Some(end)) => end - first.max(0.0),
        _ => 0.0,
    }
}

/// How long the video plays: its first frame's start to its last's end.
pub fn video_duration(path: &Path) -> f64 {
    span(&packet_times(path, "v:0"))
}

/// How long the sound plays (priming, before 0, not counted).
pub fn audio_duration(path: &Path) -> f64 {
    span(&packet_times(path, "a:0"))
}

/// The video keyframes' presentation times, seconds, sorted.
pub fn keyframe_times(path: &Path) -> Vec<f64> {
    let mut times: Vec<f64> = probe_rows(path, "v:0", "packet=pts_time,flags", &[])
        .iter()
        .filter(|r| r.get(1).is_some_and(|f| f.contains('K')))
        .filter_map(|r| number(r.first()?))
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Asserts there is a keyframe at each of `at` (seconds, within
/// `tolerance` seconds).
pub fn assert_keyframes_at(path: &Path, at: &[f64], tolerance: f64) {
    let keyframes = keyframe_times(path);
    for t in at {
        assert!(
            keyframes.iter().any(|k| (k - t).abs() <= tolerance),
            "{}: no keyframe at {t} s; keyframes at {keyframes:?}",
            path.display()
        );
    }
}

/// Where the video's decode times (in stream time base units, as stored)
/// first fail to go strictly forward: the packet's index, the DTS before
/// it and its own. `None` when they always go forward.
pub fn dts_step_back(path: &Path) -> Option<(usize, i64, i64)> {
    let dts: Vec<i64> = probe_rows(path, "v:0", "packet=dts", &[])
        .iter()
        .filter_map(|r| r.first()?.parse().ok())
        .collect();
    assert!(!dts.is_empty(), "{}: no video packets", path.display());
    let at = dts.windows(2).position(|w| w[1] <= w[0])?;
    Some((at + 1, dts[at], dts[at + 1]))
}

/// Asserts the video's decode times go strictly forward.
pub fn assert_dts_increasing(path: &Path) {
    if let Some((packet, before, dts)) = dts_step_back(path) {
        panic!(
            "{}: DTS goes from {before} to {dts} at packet {packet}",
            path.display()
        );
    }
}

/// Asserts the sound has no gap and no overlap: after the priming
/// (packets before 0), each packet starts where the one before ended.
pub fn assert_audio_continuous(path: &Path) {
    let packets: Vec<(i64, i64)> = probe_rows(path, "a:0", "packet=pts,duration", &[])
        .iter()
        .filter_map(|r| Some((r.first()?.parse().ok()?, r.get(1)?.parse().ok()?)))
        .filter(|(pts, _)| *pts >= 0)
        .collect();
    assert!(packets.len() > 1, "{}: no sound", path.display());
    for (n, pair) in packets.windows(2).enumerate() {
        let ((pts, duration), (next, _)) = (pair[0], pair[1]);
        assert_eq!(
            next,
            pts + duration,
            "{}: sound packet {} starts at {next}, the one before ends at {}",
            path.display(),
            n + 1,
            pts + duration
        );
    }
}

/// `folder`'s rendition `rung` (`360p`, `audio`): its playlist's init
/// segment and segments joined, in order, into one temp file (deleted when
/// dropped) that ffprobe reads as one fragmented MP4.
pub fn ladder_rung_as_file(folder: &Path, rung: &str) -> tempfile::TempPath {
    let dir = folder.join(rung);
    let text = std::fs::read_to_string(dir.join("index.m3u8")).expect("rung playlist");
    let media = videoshare::media::playlist::media(&text);
    let init = media.init.expect("an init segment");
    assert!(!media.segments.is_empty(), "{rung} lists no segment");
    let mut out = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile()
        .expect("temp file");
    for part in std::iter::once(&init).chain(&media.segments) {
        let bytes = std::fs::read(dir.join(part)).expect("a listed file");
        out.write_all(&bytes).expect("write");
    }
    out.into_temp_path()
}

/// The picture renditions of the ladder in `folder` (each a folder with
/// its own playlist), by name; the sound's is left out.
pub fn ladder_rungs(folder: &Path) -> Vec<String> {
    let mut rungs: Vec<String> = std::fs::read_dir(folder)
        .expect("the ladder's folder")
        .flatten()
        .filter(|e| e.path().join("index.m3u8").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "audio")
        .collect();
    rungs.sort();
    rungs
}
