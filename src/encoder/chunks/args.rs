//! The ffmpeg command lines of a chunked job: which presets can be
//! chunked, one chunk's video ([`video_chunk_args`]: a span of the source
//! decoded once, each destination's picture as an MPEG-TS piece or a
//! ladder's segments) and the whole sound once ([`audio_chunk_args`]).
//!
//! The pieces keep the source's times (`-copyts -start_at_zero`), so they
//! join by plain concatenation ([`super::join`]). The encode options are
//! the presets' own ([`crate::encoder::preset`]), so a chunked output is
//! encoded as a one-run output is.

use std::ffi::OsString;
use std::path::Path;

use crate::encoder::ffmpeg::{Audio, Inputs, encode_head};
use crate::encoder::preset::ladder::ladder_output;
use crate::encoder::preset::{LadderPart, Preset};
use crate::media::ffmpeg_args::FfmpegArgs;
use crate::media::split::{Align, Span};

/// The part of the source one chunk encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `[start_us, end_us)` from the source's start, as in
    /// [`crate::media::split`].
    pub start_us: i64,
    pub end_us: i64,
    /// A ladder's first segment number: the segment starting at
    /// `first_segment × segment_seconds` (0 without a ladder).
    pub first_segment: u64,
    /// The video frames in it ([`Span::frames`]): each output stops after
    /// exactly these, whatever the time base's rounding.
    pub frames: u64,
}

impl Window {
    /// The window of `span`, cut as `align` says (on [`Align::Grid`] the
    /// span starts on a segment boundary: its first segment's number).
    pub fn of_span(span: &Span, align: Align) -> Window {
        let first_segment = match align {
            Align::Grid { segment_us } if segment_us > 0 => {
                (span.start_us.max(0) + segment_us / 2) / segment_us
            }
            _ => 0,
        };
        Window {
            start_us: span.start_us,
            end_us: span.end_us,
            first_segment: u64::try_from(first_segment).unwrap_or(0),
            frames: span.frames,
        }
    }
}

/// Whether `preset`'s output can be made in chunks: an H.264/H.265 MP4
/// (its picture travels as MPEG-TS pieces) or a ladder. Not audio-only
/// presets (nothing to split), WebM/VP9 (no TS pieces), nor presets with a
/// frame rate of their own (the chunks' frame counts would not match the
/// source's).
pub fn chunkable(preset: &Preset) -> bool {
    let Some(video) = &preset.video else {
        return false;
    };
    if video.frame_rate.is_some() {
        return false;
    }
    let h26x = matches!(video.codec.as_str(), "libx264" | "libx265")
        || video.codec.starts_with("h264_")
        || video.codec.starts_with("hevc_");
    preset.ladder.is_some() || (preset.container == "mp4" && h26x)
}

/// How a job with these destinations is cut: on the ladders' segment
/// grid when any is a ladder, else at the source's keyframes; `None` when
/// ladders differ in segment length (no one grid fits them all).
pub fn align_for<'a>(presets: impl IntoIterator<Item = &'a Preset>) -> Option<Align> {
    let mut segments = presets
        .into_iter()
        .filter_map(|p| p.ladder.as_ref().map(|l| l.segment_seconds));
    match segments.next() {
        None => Some(Align::SourceKeyframes),
        Some(first) if segments.all(|s| s == first) => Some(Align::Grid {
            segment_us: i64::from(first) * 1_000_000,
        }),
        Some(_) => None,
    }
}

/// Microseconds as ffmpeg takes seconds.
fn seconds(us: i64) -> String {
    format!("{:.6}", us as f64 / 1e6)
}

/// One ffmpeg run encoding `window` of `inputs.source` (decoded once) into
/// each of `outputs`, video only: a ladder preset's rungs into the folder
/// at its path (segments numbered from `window.first_segment`, keyframes
/// on the whole ladder's segment grid), any other preset's picture as an
/// MPEG-TS file at its path. Every preset must be [`chunkable`].
///
/// The source is read with its own times (`-copyts -start_at_zero`) and
/// trimmed to `[start, end)`; each output starts on a keyframe and stops
/// after `window.frames` frames, passed through as decoded (no frame
/// dropped or repeated), so the pieces join without a gap or an overlap.
/// Follow its progress by `frame=` against `window.frames`: under
/// `-copyts`, ffmpeg 5.1's `out_time` counts from whatever time it first
/// reported (seen: 5.96 s at the end of an 8 s chunk), not from `start`.
pub fn video_chunk_args(
    inputs: &Inputs<'_>,
    window: &Window,
    outputs: &[(&Path, &Preset)],
    threads: Option<u32>,
) -> FfmpegArgs {
    let (mut args, threads) = encode_head(threads);
    let seek: [OsString; 6] = [
        "-copyts".into(),
        "-start_at_zero".into(),
        "-ss".into(),
        seconds(window.start_us).into(),
        "-to".into(),
        seconds(window.end_us).into(),
    ];
    args = args.media_input(
        seek.into_iter().chain(threads.iter().map(OsString::from)),
        inputs.source,
    );
    let picture = inputs.picture_or_any();
    // The encoder's time base stays 1/fps, as in a one-run encode: a
    // frame off that grid (a picture starting at 0.5 s at 25 fps) moves
    // to it (0.52), alike in every chunk. (`-enc_time_base:v 1:90000`
    // kept it, but left the last frame without a duration.)
    let exact = [
        "-frames:v".to_owned(),
        window.frames.to_string(),
        "-fps_mode:v".to_owned(),
        "passthrough".to_owned(),
    ];
    let part = LadderPart::Rungs {
        first_segment: window.first_segment,
    };
    for (index, (output, preset)) in outputs.iter().enumerate() {
        debug_assert!(chunkable(preset), "{} is not chunkable", preset.name);
        args = match preset.ladder_part_args(index, output, &picture, None, part) {
            Some(ladder) => ladder_output(args.with(ladder).with(&exact).with(&threads), output),
            None => args
                .with(preset.video_only_args().unwrap_or_default())
                .with(TS_PIECE)
                .with(&exact)
                .with(&threads)
                .output(output),
        };
    }
    args
}

/// A picture piece: an IDR first, the source's times kept as they are
/// (B-frames' decode times may go before the start: not shifted, or the
/// pieces would overlap at the joins), no mux delay, MPEG-TS.
const TS_PIECE: [&str; 10] = [
    "-force_key_frames",
    "expr:eq(n,0)",
    "-avoid_negative_ts",
    "disabled",
    "-muxdelay",
    "0",
    "-muxpreload",
    "0",
    "-f",
    "mpegts",
];

/// One ffmpeg run encoding the whole sound of `inputs` (the source's, or
/// the separate sound file's) once, for each of `outputs` whose preset has
/// sound: a ladder preset's sound rendition into the folder at its path
/// (`audio/`, segments as the rungs'), any other preset's AAC as an MP4
/// sound file (`.m4a`) at its path. `None` when there is no sound to
/// encode (no sound in the inputs, or no output wants it).
///
/// The source is read whole (chunked jobs are not trimmed).
pub fn audio_chunk_args(
    inputs: &Inputs<'_>,
    outputs: &[(&Path, &Preset)],
    threads: Option<u32>,
) -> Option<FfmpegArgs> {
    let picture = inputs.picture_or_any();
    let file = match inputs.audio {
        Audio::Source if picture.has_audio || inputs.picture.is_none() => inputs.source,
        Audio::File(file) => file,
        Audio::Source | Audio::Absent => return None,
    };
    let sounding: Vec<(usize, &Path, &Preset)> = outputs
        .iter()
        .enumerate()
        .filter(|(_, (_, preset))| preset.audio.is_some())
        .map(|(index, (output, preset))| (index, *output, *preset))
        .collect();
    if sounding.is_empty() {
        return None;
    }
    let (mut args, threads) = encode_head(threads);
    args = args.media_input(&threads, file);
    for (index, output, preset) in sounding {
        args = match preset.ladder_part_args(index, output, &picture, Some(0), LadderPart::Sound) {
            Some(ladder) => ladder_output(args.with(ladder).with(&threads), output),
            None => args
                .with(preset.sound_only_args(0).unwrap_or_default())
                .with(["-f", "mp4"])
                .with(&threads)
                .output(output),
        };
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::preset::{HLS_LADDER_PRESET, Presets, SEED_PRESET, SourcePicture};

    fn joined(args: &FfmpegArgs) -> String {
        args.as_slice()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn inputs(audio: Audio<'_>) -> Inputs<'_> {
        Inputs {
            source: Path::new("/in.mov"),
            audio,
            trim: None,
            picture: Some(SourcePicture {
                width: 640,
                height: 360,
                frame_rate: Some(25.0),
                has_audio: true,
            }),
        }
    }

    #[test]
    fn mp4_and_ladders_are_chunkable_and_the_rest_not() {
        let presets = Presets::builtin();
        for preset in presets.iter() {
            let wanted =
                preset.container == "hls" || (preset.container == "mp4" && preset.video.is_some());
            assert_eq!(chunkable(preset), wanted, "{}", preset.name);
        }
        let audio = presets.iter().find(|p| p.video.is_none()).expect("audio");
        assert!(!chunkable(audio));
        let mut fixed = presets.get(SEED_PRESET).expect("seed").clone();
        if let Some(video) = fixed.video.as_mut() {
            video.frame_rate = Some(30.0);
        }
        assert!(!chunkable(&fixed), "a frame rate of its own");
    }

    #[test]
    fn a_chunk_is_one_decode_of_its_window_into_every_output() {
        let presets = Presets::builtin();
        let (mp4, ladder) = (
            presets.get(SEED_PRESET).expect("seed"),
            presets.get(HLS_LADDER_PRESET).expect("ladder"),
        );
        let span = Span {
            start_us: 8_000_000,
            end_us: 16_000_000,
            frames: 200,
        };
        let align = align_for([mp4, ladder]).expect("one segment length");
        let window = Window::of_span(&span, align);
        assert_eq!(window.first_segment, 2);
        let args = video_chunk_args(
            &inputs(Audio::File(Path::new("/a.wav"))),
            &window,
            &[
                (Path::new("/c/v00001.ts"), mp4),
                (Path::new("/c/l"), ladder),
            ],
            Some(1),
        );
        let text = joined(&args);
        for expected in [
            "-progress pipe:1",
            "-filter_threads 1",
            "-copyts -start_at_zero -ss 8.000000 -to 16.000000 -threads 1 -protocol_whitelist file",
            "-map 0:v:0 -c:v libx264",
            "-an -force_key_frames expr:eq(n,0) -avoid_negative_ts disabled -muxdelay 0 \
             -muxpreload 0 -f mpegts -frames:v 200 -fps_mode:v passthrough -threads 1 /c/v00001.ts",
            "-force_key_frames expr:gte(t,8+n_forced*4)",
            "-start_number 2",
            "movflags=+frag_discont:avoid_negative_ts=disabled",
            "-var_stream_map v:0,name:360p",
            "-hls_segment_filename /c/l/%v/seg%05d.m4s",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert_eq!(
            text.matches(" -i ").count(),
            1,
            "the sound file is not read"
        );
        assert!(!text.contains("a:0") && !text.contains("-c:a"), "{text}");
        assert!(text.ends_with("/c/l/%v/index.m3u8"), "{text}");
    }

    #[test]
    fn the_sound_is_encoded_once_for_every_output_that_has_sound() {
        let presets = Presets::builtin();
        let (mp4, ladder) = (
            presets.get(SEED_PRESET).expect("seed"),
            presets.get(HLS_LADDER_PRESET).expect("ladder"),
        );
        let outputs = [(Path::new("/c/a.m4a"), mp4), (Path::new("/c/al"), ladder)];
        let args = audio_chunk_args(&inputs(Audio::File(Path::new("/a.wav"))), &outputs, None)
            .expect("sound");
        let text = joined(&args);
        assert!(
            text.contains("-i /a.wav") && !text.contains("/in.mov"),
            "{text}"
        );
        for expected in [
            "-map 0:a:0 -vn -c:a aac -b:a 128k -ac 2 -f mp4 /c/a.m4a",
            "-var_stream_map a:0,agroup:audio,name:audio",
            "-hls_segment_filename /c/al/%v/seg%05d.m4s /c/al/%v/index.m3u8",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert!(
            !text.contains("-c:v") && !text.contains("-start_number"),
            "{text}"
        );
        assert!(audio_chunk_args(&inputs(Audio::Absent), &outputs, None).is_none());
        let silent = Inputs {
            picture: Some(SourcePicture {
                has_audio: false,
                ..inputs(Audio::Source).picture.expect("picture")
            }),
            ..inputs(Audio::Source)
        };
        assert!(audio_chunk_args(&silent, &outputs, None).is_none());
    }
}
