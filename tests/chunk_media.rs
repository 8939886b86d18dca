//! Chunked encoding's media side with real ffmpeg, no database: a clip is
//! cut into spans (`media::split`), each span encoded by its own ffmpeg run
//! into an MP4 preset's MPEG-TS piece and the ladder preset's segments at
//! once, the sound once whole; then the pieces are joined into an MP4 and
//! the segments assembled into a live ladder folder. Both must play as the
//! source does: every frame once, keyframes at the joins, decode times
//! forward, sound without a gap.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::media_check::{
    assert_audio_continuous, assert_dts_increasing, assert_keyframes_at, audio_duration,
    dts_step_back, ladder_rung_as_file, video_duration, video_frames,
};
use videoshare::encoder::chunks::args::{Window, align_for, audio_chunk_args, video_chunk_args};
use videoshare::encoder::chunks::join::{assemble_ladder, join_mp4};
use videoshare::encoder::ffmpeg::{Audio, Inputs};
use videoshare::encoder::live_folder::publish_if_playable;
use videoshare::encoder::preset::{HLS_LADDER_PRESET, Preset, Presets, SEED_PRESET, SourcePicture};
use videoshare::media::ffmpeg_args::FfmpegArgs;
use videoshare::media::split::{Span, keyframes, plan_spans};
use videoshare::media::synthetic::{ClipSpec, write_clip};

/// One AAC frame at 48 kHz, seconds.
const AAC_FRAME: f64 = 1024.0 / 48000.0;

/// Runs one ffmpeg command line to its end; returns how long it took.
fn ffmpeg(args: &FfmpegArgs) -> Duration {
    let started = Instant::now();
    let out = Command::new("ffmpeg")
        .args(args.as_slice())
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {:?}: {}",
        args.as_slice(),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// The source's picture as the encoder's probe gives it.
async fn picture(source: &Path) -> SourcePicture {
    let info = videoshare::media::probe(source).await.expect("probe");
    let video = info.video.expect("a picture");
    SourcePicture {
        width: video.width,
        height: video.height,
        frame_rate: video.frame_rate,
        has_audio: info.audio.is_some(),
    }
}

/// What a chunked encode of `source` left: the MP4 joined from pieces and
/// the live ladder folder, plus the spans and how long the runs took.
struct Chunked {
    mp4: PathBuf,
    pieces: Vec<PathBuf>,
    /// `None` without a ladder destination.
    live: Option<PathBuf>,
    spans: Vec<Span>,
    video_secs: Vec<f64>,
    audio_secs: f64,
}

/// Encodes `source` in chunks of `chunk_secs` into `mp4` (a TS piece per
/// chunk) and `ladder` (a folder per chunk) together, the sound once, and
/// joins both into `dir`.
async fn encode_in_chunks(
    source: &Path,
    dir: &Path,
    mp4: &Preset,
    ladder: Option<&Preset>,
    chunk_secs: i64,
) -> Chunked {
    let presets: Vec<&Preset> = std::iter::once(mp4).chain(ladder).collect();
    let inputs = Inputs {
        source,
        audio: Audio::Source,
        trim: None,
        picture: Some(picture(source).await),
    };
    let timeline = keyframes(source).await.expect("keyframes");
    let align = align_for(presets.iter().copied()).expect("one segment length");
    let spans = plan_spans(&timeline, chunk_secs * 1_000_000, align);
    let (mut pieces, mut folders, mut video_secs) = (Vec::new(), Vec::new(), Vec::new());
    for (n, span) in spans.iter().enumerate() {
        let piece = dir.join(format!("v{n:05}.ts"));
        let folder = dir.join(format!("ladder{n:05}"));
        let mut outputs = vec![(piece.as_path(), mp4)];
        outputs.extend(ladder.map(|l| (folder.as_path(), l)));
        let window = Window::of_span(span, align);
        let args = video_chunk_args(&inputs, &window, &outputs, Some(1));
        video_secs.push(ffmpeg(&args).as_secs_f64());
        // The worker's self-check: the piece holds its span's frames.
        let made = keyframes(&piece).await.expect("piece packets");
        assert_eq!(made.packets_us.len() as u64, span.frames, "chunk {n}");
        pieces.push(piece);
        folders.push(folder);
    }
    let (sound, sound_ladder) = (dir.join("audio.m4a"), dir.join("audio-ladder"));
    let mut outputs = vec![(sound.as_path(), mp4)];
    outputs.extend(ladder.map(|l| (sound_ladder.as_path(), l)));
    let args = audio_chunk_args(&inputs, &outputs, Some(1)).expect("the clip has sound");
    let audio_secs = ffmpeg(&args).as_secs_f64();

    let out = dir.join("joined.mp4");
    join_mp4(&pieces, Some(&sound), &out).await.expect("join");

    let live = ladder.map(|_| {
        let live = dir.join("live");
        std::fs::create_dir(&live).expect("live folder");
        // Playable with the first chunk, before the others are done.
        assemble_ladder(&folders[..1], Some(&sound_ladder), &live, false).expect("first chunk");
        assert!(
            publish_if_playable(&live).expect("publish"),
            "playable early"
        );
        assemble_ladder(&folders, Some(&sound_ladder), &live, true).expect("every chunk");
        live
    });
    Chunked {
        mp4: out,
        pieces,
        live,
        spans,
        video_secs,
        audio_secs,
    }
}

/// The joined MP4 plays as the source: every frame once, a keyframe at
/// each join, decode times forward, the sound whole and as long.
fn check_mp4(source: &Path, chunked: &Chunked) {
    let out = &chunked.mp4;
    let fps_step = 1.0 / 25.0;
    assert_eq!(video_frames(out), video_frames(source), "frames");
    let (made, wanted) = (video_duration(out), video_duration(source));
    assert!(
        (made - wanted).abs() <= fps_step + 1e-6,
        "{made} s ≠ {wanted} s"
    );
    // Where the pieces meet (the first frame is a keyframe anyway, and is
    // not at 0 when the picture starts late).
    let joins: Vec<f64> = chunked
        .spans
        .iter()
        .skip(1)
        .map(|s| s.start_us as f64 / 1e6)
        .collect();
    // Within half a frame: a picture off the 1/fps grid (starting at 0.5 s
    // at 25 fps) is put on it, as a one-run encode does.
    assert_keyframes_at(out, &joins, fps_step / 2.0 + 1e-6);
    assert_dts_increasing(out);
    assert_audio_continuous(out);
    let sound = audio_duration(out);
    assert!(
        (sound - made).abs() <= AAC_FRAME + 1e-6,
        "sound {sound} s, video {made} s"
    );
}

/// Each rung of the live ladder: every frame, a keyframe at every segment
/// boundary, decode times forward; the sound rendition whole.
fn check_ladder(source: &Path, chunked: &Chunked) {
    let live = chunked.live.as_deref().expect("a ladder");
    let master = std::fs::read_to_string(live.join("master.m3u8")).expect("published");
    let parsed = videoshare::media::playlist::master(&master);
    assert_eq!(parsed.sound(), Some("audio/index.m3u8"), "{master}");
    let wanted = video_duration(source);
    for variant in parsed.video() {
        let rung = variant.uri.trim_end_matches("/index.m3u8");
        let playlist = std::fs::read_to_string(live.join(&variant.uri)).expect("rung playlist");
        assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
        let file = ladder_rung_as_file(live, rung);
        assert_eq!(video_frames(&file), video_frames(source), "{rung} frames");
        let made = video_duration(&file);
        assert!(
            (made - wanted).abs() <= 0.04 + 1e-6,
            "{rung}: {made} s ≠ {wanted} s"
        );
        let boundaries: Vec<f64> = (0..)
            .map(|n| f64::from(n) * 4.0)
            .take_while(|t| *t < made)
            .collect();
        assert_keyframes_at(&file, &boundaries, 1e-3);
        assert_dts_increasing(&file);
    }
    let sound = ladder_rung_as_file(live, "audio");
    assert_audio_continuous(&sound);
    // ffmpeg's fMP4 sound rendition has no edit list (a one-run ladder's
    // neither): its 1024 priming samples play, so one frame more.
    let length = audio_duration(&sound);
    assert!(
        (length - wanted).abs() <= 2.0 * AAC_FRAME + 1e-6,
        "sound {length} s, video {wanted} s"
    );
}

/// A `secs` s 320×240 clip with a keyframe every 2 s, named `name` in a
/// temp folder of its own (returned with it).
fn gop_clip(name: &str, secs: u32) -> (tempfile::TempDir, PathBuf) {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join(name);
    let spec = ClipSpec {
        keyframe_seconds: Some(2),
        ..ClipSpec::new(secs, 320, 240)
    };
    write_clip(&clip, spec).expect("clip");
    (dir, clip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_chunks_join_into_an_mp4_and_a_ladder_frame_for_frame() {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.mp4");
    write_clip(&source, ClipSpec::new(24, 320, 240)).expect("clip");
    let presets = Presets::builtin();
    let (mp4, ladder) = (
        presets.get(SEED_PRESET).expect("seed"),
        presets.get(HLS_LADDER_PRESET).expect("ladder"),
    );
    let chunked = encode_in_chunks(&source, dir.path(), mp4, Some(ladder), 8).await;
    let starts: Vec<i64> = chunked.spans.iter().map(|s| s.start_us).collect();
    assert_eq!(starts, [0, 8_000_000, 16_000_000]);
    check_mp4(&source, &chunked);
    check_ladder(&source, &chunked);

    // The checks can fail: a piece played twice repeats its frames and
    // sends the decode times back.
    let piece = std::fs::read(&chunked.pieces[0]).expect("piece");
    let twice = dir.path().join("twice.ts");
    std::fs::write(&twice, [piece.as_slice(), piece.as_slice()].concat()).expect("write");
    assert_eq!(video_frames(&twice), 2 * chunked.spans[0].frames);
    assert_eq!(
        dts_step_back(&twice).map(|(packet, ..)| packet as u64),
        Some(chunked.spans[0].frames),
        "DTS going back is caught"
    );

    let video: f64 = chunked.video_secs.iter().sum::<f64>() / chunked.video_secs.len() as f64;
    eprintln!(
        "sound once: {:.2} s; a video chunk: {video:.2} s on average (ratio {:.2})",
        chunked.audio_secs,
        chunked.audio_secs / video
    );
}

/// A camera-like source (x264 `medium`: B-frames, a keyframe every 10 s)
/// cut where it has no keyframe: each chunk decodes from the keyframe
/// before its start, and the joins still hold every frame once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_b_frames_joins_frame_for_frame() {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("camera.mp4");
    let spec = ClipSpec {
        camera_like: true,
        ..ClipSpec::new(20, 320, 240)
    };
    write_clip(&source, spec).expect("clip");
    let presets = Presets::builtin();
    let (mp4, ladder) = (
        presets.get(SEED_PRESET).expect("seed"),
        presets.get(HLS_LADDER_PRESET).expect("ladder"),
    );
    let chunked = encode_in_chunks(&source, dir.path(), mp4, Some(ladder), 8).await;
    let starts: Vec<i64> = chunked.spans.iter().map(|s| s.start_us).collect();
    assert_eq!(starts, [0, 8_000_000, 16_000_000]);
    check_mp4(&source, &chunked);
    check_ladder(&source, &chunked);
}

/// MP4 destinations only: the chunks are cut at the source's keyframes
/// (one every 2 s here), and joined frame for frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp4_only_chunks_are_cut_at_source_keyframes() {
    let (dir, source) = gop_clip("source.mp4", 24);
    let presets = Presets::builtin();
    let mp4 = presets.get(SEED_PRESET).expect("seed");
    let chunked = encode_in_chunks(&source, dir.path(), mp4, None, 7).await;
    let starts: Vec<i64> = chunked.spans.iter().map(|s| s.start_us).collect();
    // Nearest 7, 14, 21 s; a tie (6 or 8) goes to the earlier keyframe.
    assert_eq!(starts, [0, 6_000_000, 14_000_000, 20_000_000]);
    check_mp4(&source, &chunked);
}

/// An MPEG-TS source starts at 1.4 s, not 0: span times count from the
/// video's start (as `-copyts -start_at_zero` does), so the chunks still
/// hold every frame once and the joined MP4 starts at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_starting_late_is_cut_from_its_own_start() {
    let (dir, clip) = gop_clip("clip.mp4", 16);
    let source = dir.path().join("source.ts");
    let remux = FfmpegArgs::new()
        .media_input(["-y"], &clip)
        .with(["-c", "copy", "-f", "mpegts"])
        .output(&source);
    ffmpeg(&remux);
    let timeline = keyframes(&source).await.expect("keyframes");
    // The sound starts 21 ms earlier (its priming): the picture's start
    // is still 0 for `-copyts -start_at_zero`.
    assert_eq!(
        timeline.packets_us.first(),
        Some(&0),
        "times from the start"
    );
    assert_eq!(timeline.packets_us.len(), 400);
    let presets = Presets::builtin();
    let mp4 = presets.get(SEED_PRESET).expect("seed");
    let chunked = encode_in_chunks(&source, dir.path(), mp4, None, 8).await;
    assert_eq!(chunked.spans.len(), 2);
    check_mp4(&source, &chunked);
}

/// An MP4 whose picture starts 0.5 s after its sound: on ffmpeg's
/// `-copyts -start_at_zero` clock the picture starts at 0.5 (an MP4's 0 is
/// the file's start, unlike an MPEG-TS's), and the spans follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_starting_after_its_sound_is_cut_on_ffmpegs_clock() {
    let (dir, clip) = gop_clip("clip.mp4", 16);
    let source = dir.path().join("late-picture.mp4");
    let shift = FfmpegArgs::new()
        .media_input(["-y", "-itsoffset", "0.5"], &clip)
        .media_input(std::iter::empty::<&str>(), &clip)
        .with(["-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-f", "mp4"])
        .output(&source);
    ffmpeg(&shift);
    let timeline = keyframes(&source).await.expect("keyframes");
    assert_eq!(
        timeline.packets_us.first(),
        Some(&500_000),
        "ffmpeg's clock"
    );
    let presets = Presets::builtin();
    let mp4 = presets.get(SEED_PRESET).expect("seed");
    let chunked = encode_in_chunks(&source, dir.path(), mp4, None, 8).await;
    let starts: Vec<i64> = chunked.spans.iter().map(|s| s.start_us).collect();
    assert_eq!(starts, [0, 8_500_000, 14_500_000], "at keyframes 0.5 + 2n");
    check_mp4(&source, &chunked);
}
