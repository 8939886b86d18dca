//! A finished HLS ladder's extras on a real ladder folder made with the
//! product's own ladder preset and argument builder: the download MP4 (the
//! top rung and the sound copied, index first) and the storyboard (JPEG
//! sprite sheets and a WebVTT file pointing at their tiles).

use std::path::{Path, PathBuf};
use std::process::Command;

use videoshare::encoder::ffmpeg::{Audio, Inputs, encode_args};
use videoshare::encoder::preset::{HLS_LADDER_PRESET, Presets, SourcePicture};
use videoshare::media::download::write_download_mp4;
use videoshare::media::storyboard::write_storyboard;
use videoshare::media::synthetic::{ClipSpec, write_clip};

/// Encodes a `spec` clip into a ladder folder `<dir>/ladder` the way the
/// encoder does (one run, every rung no taller than the source, then our
/// master playlist published).
fn make_ladder(dir: &Path, spec: ClipSpec) -> PathBuf {
    let source = dir.join("source.mp4");
    write_clip(&source, spec).expect("clip");
    let folder = dir.join("ladder");
    std::fs::create_dir(&folder).expect("folder");
    let presets = Presets::builtin();
    let preset = presets.get(HLS_LADDER_PRESET).expect("ladder preset");
    let args = encode_args(
        &Inputs {
            source: &source,
            audio: Audio::Source,
            trim: None,
            picture: Some(SourcePicture {
                width: spec.width,
                height: spec.height,
                frame_rate: Some(f64::from(spec.frame_rate)),
                has_audio: spec.sound,
            }),
        },
        &[(&folder, preset)],
    );
    let out = Command::new("ffmpeg")
        .args(args.as_slice())
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ffmpeg's own master is hidden; the encoder publishes ours.
    let published = videoshare::encoder::live_folder::publish_if_playable(&folder);
    assert!(published.expect("published"), "every rung has a segment");
    std::fs::remove_file(folder.join(".ffmpeg-master.m3u8")).expect("ffmpeg's master goes");
    folder
}

/// ffprobe's JSON for `file` with `options` (test only: it may read
/// playlists, which the product's whitelist does not).
fn ffprobe(file: &Path, options: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-protocol_whitelist", "file", "-of", "json"])
        .args(options)
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The video stream's facts and its packets' sizes.
fn video_facts(file: &Path) -> (serde_json::Value, Vec<u64>) {
    let stream = ffprobe(
        file,
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,profile,level,width,height,nb_read_frames",
        ],
    )["streams"][0]
        .clone();
    let packets = ffprobe(
        file,
        &["-select_streams", "v:0", "-show_entries", "packet=size"],
    )["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| {
            p["size"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("size")
        })
        .collect();
    (stream, packets)
}

/// The top-level MP4 boxes of `file`, in order.
fn top_level_boxes(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).expect("read");
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            1 => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes")) as usize,
            0 => bytes.len() - at,
            n => n as usize,
        };
        boxes.push(kind);
        assert!(size >= 8, "a box of {size} bytes");
        at += size;
    }
    boxes
}

/// The ladder's duration: the `EXTINF` sum of a media playlist.
fn playlist_duration(playlist: &Path) -> f64 {
    std::fs::read_to_string(playlist)
        .expect("playlist")
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|v| v.split(',').next()?.parse::<f64>().ok())
        .sum()
}

/// No temp or joined files are left in the folder.
fn assert_no_hidden_leftovers(folder: &Path) {
    let hidden: Vec<String> = std::fs::read_dir(folder)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}

#[tokio::test]
async fn the_download_is_the_top_rung_and_the_sound_copied_with_the_index_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = make_ladder(dir.path(), ClipSpec::new(7, 854, 480));
    let top = folder.join("480p").join("index.m3u8");
    assert!(
        folder.join("360p").join("index.m3u8").is_file(),
        "two rungs"
    );

    let download = write_download_mp4(&folder).await.expect("download");
    assert_eq!(download, folder.join("download.mp4"));

    let format = ffprobe(
        &download,
        &[
            "-show_entries",
            "format=duration:stream=codec_type,codec_name",
        ],
    );
    let codecs: Vec<&str> = format["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s["codec_name"].as_str())
        .collect();
    assert_eq!(codecs, vec!["h264", "aac"]);
    let duration: f64 = format["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    let ladder_duration = playlist_duration(&top);
    assert!(
        (duration - ladder_duration).abs() <= 0.1,
        "download {duration} s, ladder {ladder_duration} s"
    );

    // Copied, not encoded again: the same picture, the same frames, the
    // same packets byte for byte in size.
    let (rung, rung_packets) = video_facts(&top);
    let (ours, our_packets) = video_facts(&download);
    for key in [
        "codec_name",
        "profile",
        "level",
        "width",
        "height",
        "nb_read_frames",
    ] {
        assert_eq!(ours[key], rung[key], "{key}: {ours} vs {rung}");
    }
    assert_eq!(ours["width"], 854);
    assert_eq!(our_packets, rung_packets);

    let boxes = top_level_boxes(&download);
    let position = |kind: &str| boxes.iter().position(|b| b == kind);
    assert!(
        position("moov").expect("moov") < position("mdat").expect("mdat"),
        "faststart: {boxes:?}"
    );
    assert_no_hidden_leftovers(&folder);

    // Made again, it replaces the first whole.
    write_download_mp4(&folder).await.expect("again");
    assert_no_hidden_leftovers(&folder);
}

#[tokio::test]
async fn a_silent_ladders_download_is_video_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        sound: false,
        ..ClipSpec::new(5, 640, 360)
    };
    let folder = make_ladder(dir.path(), spec);
    assert!(!folder.join("audio").exists());
    let download = write_download_mp4(&folder).await.expect("download");
    let streams = ffprobe(
        &download,
        &["-show_entries", "stream=codec_type,codec_name"],
    );
    let kinds: Vec<&str> = streams["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s["codec_type"].as_str())
        .collect();
    assert_eq!(kinds, vec!["video"]);
    assert_no_hidden_leftovers(&folder);
}

/// A cue: start and end in ms, the sheet's name and the tile's rectangle.
type Cue = (u64, u64, String, [u32; 4]);

fn parse_ms(text: &str) -> u64 {
    let (hms, ms) = text.trim().split_once('.').expect("ms");
    let parts: Vec<u64> = hms.split(':').map(|p| p.parse().expect("number")).collect();
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<u64>().expect("ms")
}

fn parse_vtt(text: &str) -> Vec<Cue> {
    assert!(text.starts_with("WEBVTT\n"), "{text}");
    text.split("\n\n")
        .skip(1)
        .map(|cue| {
            let mut lines = cue.lines();
            let (start, end) = lines
                .next()
                .and_then(|l| l.split_once(" --> "))
                .expect("times");
            let (sheet, xywh) = lines
                .next()
                .and_then(|l| l.split_once("#xywh="))
                .expect("target");
            let v: Vec<u32> = xywh
                .split(',')
                .map(|n| n.parse().expect("number"))
                .collect();
            (
                parse_ms(start),
                parse_ms(end),
                sheet.to_owned(),
                [v[0], v[1], v[2], v[3]],
            )
        })
        .collect()
}

#[tokio::test]
async fn the_storyboard_cues_point_at_real_tiles_of_jpeg_sheets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = make_ladder(dir.path(), ClipSpec::new(7, 854, 480));
    let duration = playlist_duration(&folder.join("480p").join("index.m3u8"));

    let board = write_storyboard(&folder, duration)
        .await
        .expect("storyboard");
    assert_eq!(board.vtt, folder.join("storyboard.vtt"));
    assert_eq!(board.sheets, vec![folder.join("storyboard-0.jpg")]);
    // 7 s every 2 s: four tiles of 160×90 (the 360p rung is 640×360).
    assert_eq!(
        (
            board.layout.interval_secs,
            board.layout.tiles,
            board.layout.tile_width,
            board.layout.tile_height
        ),
        (2, 4, 160, 90)
    );

    let cues = parse_vtt(&std::fs::read_to_string(&board.vtt).expect("vtt"));
    assert_eq!(cues.len(), 4);
    assert_eq!(cues[0].0, 0);
    assert_eq!(
        cues.last().expect("a cue").1,
        (duration * 1000.0).round() as u64
    );
    for pair in cues.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "cues follow each other");
    }
    for (start, end, sheet, [x, y, w, h]) in &cues {
        assert!(start < end);
        let path = folder.join(sheet);
        let picture =
            ffprobe(&path, &["-show_entries", "stream=codec_name,width,height"])["streams"][0]
                .clone();
        assert_eq!(picture["codec_name"], "mjpeg", "{sheet} is a JPEG");
        let (sw, sh) = (
            picture["width"].as_u64().expect("width") as u32,
            picture["height"].as_u64().expect("height") as u32,
        );
        assert_eq!((sw, sh), (640, 90), "one row of four tiles");
        assert!(
            (*w, *h) == (160, 90) && x + w <= sw && y + h <= sh,
            "{sheet} {x},{y}"
        );
    }
    assert_no_hidden_leftovers(&folder);

    // A bad duration is refused before anything is written.
    assert!(write_storyboard(&folder, f64::NAN).await.is_err());
}
