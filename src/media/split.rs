//! Where a long source is cut for chunked encoding: its video packets'
//! times and keyframes ([`keyframes`], one demux-only ffprobe run, no
//! decode), and the spans the chunks encode ([`plan_spans`], a pure
//! function).
//!
//! Times are microseconds on the clock ffmpeg's `-copyts -start_at_zero`
//! gives (asked of ffmpeg: it differs by container), so a span's bounds go
//! to `-ss`/`-to` as they are. Knows nothing of presets, jobs or nodes.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ffmpeg_args::FfmpegArgs;
use super::process::{ProcessError, run_for_stdout};

/// A long source's packets are many (25 fps × 2 h = 180 000): reading
/// them is demuxing the whole file once.
const KEYFRAMES_TIMEOUT: Duration = Duration::from_secs(600);

/// Copying one packet is quick.
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(60);

/// The grid used when a source has too few keyframes to cut at.
const FALLBACK_GRID_US: i64 = 1_000_000;

/// A source's video timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keyframes {
    /// The keyframes' presentation times, sorted.
    pub keyframes_us: Vec<i64>,
    /// Every video packet's presentation time, sorted.
    pub packets_us: Vec<i64>,
    /// Where the video ends (the last frame's end).
    pub duration_us: i64,
}

/// How span boundaries are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// At source keyframes (only MP4 destinations: any cut is fine, one on
    /// a keyframe costs the least seeking).
    SourceKeyframes,
    /// At multiples of `segment_us` (a ladder's segment length), so each
    /// chunk is whole segments.
    Grid { segment_us: i64 },
}

/// One chunk's part of the source: `[start_us, end_us)`, holding `frames`
/// video frames (packets with a presentation time in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_us: i64,
    pub end_us: i64,
    pub frames: u64,
}

/// Why a source's keyframes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("ffprobe printed something we could not parse: {0}")]
    BadOutput(String),
    #[error("the source has no video packet with a time")]
    NoVideo,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    packets: Vec<Packet>,
    #[serde(default)]
    streams: Vec<Start>,
}

#[derive(Deserialize)]
struct Packet {
    pts_time: Option<String>,
    duration_time: Option<String>,
    #[serde(default)]
    flags: String,
}

#[derive(Deserialize)]
struct Start {
    start_time: Option<String>,
}

/// Seconds as ffprobe prints them (6 decimals) in whole microseconds.
fn micros(text: Option<&str>) -> Option<i64> {
    let seconds: f64 = text?.trim().parse().ok()?;
    seconds.is_finite().then(|| (seconds * 1e6).round() as i64)
}

/// Reads `path`'s first video stream's packets (demux only): their times,
/// which are keyframes, and where the video ends. Local media only, as
/// every probe ([`super::inputs`]).
pub async fn keyframes(path: &Path) -> Result<Keyframes, SplitError> {
    let mut args: Vec<std::ffi::OsString> = vec!["-v".into(), "error".into()];
    args.extend(super::inputs::media_input_args().map(Into::into));
    args.extend(
        [
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,duration_time,flags:stream=start_time",
            "-print_format",
            "json",
        ]
        .map(Into::into),
    );
    args.push(path.into());
    let shown = path.to_string_lossy();
    let stdout = run_for_stdout("ffprobe", args, KEYFRAMES_TIMEOUT)
        .await
        .map_err(|e| without_folders(e, &shown))?;
    let first_in_ffmpeg = first_packet_time(path)
        .await
        .map_err(|e| without_folders(e, &shown))?;
    parse(&stdout, first_in_ffmpeg)
}

/// ffmpeg and ffprobe name the file with its folders: keep their words only.
fn without_folders(error: ProcessError, shown: &str) -> ProcessError {
    error.with_words(|words| words.replace(shown, "the source"))
}

/// The first video packet's time (in file order) on ffmpeg's own clock
/// under `-copyts -start_at_zero`, in microseconds: one packet copied, no
/// decode. That clock is not the same for every container (ffmpeg 5.1:
/// an MP4's 0 is the file's start, an MPEG-TS's the video's start), so it
/// is asked rather than guessed. `None` when ffmpeg gives no time.
async fn first_packet_time(path: &Path) -> Result<Option<i64>, ProcessError> {
    let args = FfmpegArgs::new()
        .media_input(["-copyts", "-start_at_zero"], path)
        .with(["-map", "0:v:0", "-c", "copy", "-frames:v", "1"])
        .with(["-f", "framecrc", "-"]);
    let stdout = run_for_stdout("ffmpeg", args.as_slice(), FIRST_PACKET_TIMEOUT).await?;
    Ok(framecrc_first_pts(&String::from_utf8_lossy(&stdout)))
}

/// The first packet's pts in microseconds from `framecrc` text: its
/// `#tb 0: 1/90000` line, then `0, dts, pts, duration, size, crc`.
fn framecrc_first_pts(text: &str) -> Option<i64> {
    let tb = text.lines().find_map(|l| l.strip_prefix("#tb 0:"))?;
    let (num, den) = tb.trim().split_once('/')?;
    let (num, den): (i128, i128) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    let packet = text.lines().find(|l| !l.starts_with('#'))?;
    let pts: i128 = packet.split(',').nth(2)?.trim().parse().ok()?;
    if den <= 0 {
        return None;
    }
    i64::try_from(pts * num * 1_000_000 / den).ok()
}

/// The packets of ffprobe's JSON `stdout`, on ffmpeg's clock: the first
/// packet in file order is at `first_in_ffmpeg` µs there (unknown: the
/// video starts at 0).
fn parse(stdout: &[u8], first_in_ffmpeg: Option<i64>) -> Result<Keyframes, SplitError> {
    let output: Output =
        serde_json::from_slice(stdout).map_err(|e| SplitError::BadOutput(e.to_string()))?;
    let first = output
        .packets
        .first()
        .and_then(|p| micros(p.pts_time.as_deref()));
    let start = output
        .streams
        .first()
        .and_then(|s| micros(s.start_time.as_deref()));
    let origin = match (first, first_in_ffmpeg) {
        (Some(first), Some(there)) => first - there,
        _ => start.unwrap_or(0),
    };
    let mut timeline = Keyframes::default();
    let mut end = i64::MIN;
    for packet in &output.packets {
        let Some(pts) = micros(packet.pts_time.as_deref()).map(|t| t - origin) else {
            continue;
        };
        let length = micros(packet.duration_time.as_deref()).unwrap_or(0).max(0);
        end = end.max(pts + length);
        timeline.packets_us.push(pts);
        if packet.flags.contains('K') {
            timeline.keyframes_us.push(pts);
        }
    }
    timeline.packets_us.sort_unstable();
    timeline.keyframes_us.sort_unstable();
    let Some(&last) = timeline.packets_us.last() else {
        return Err(SplitError::NoVideo);
    };
    // Packets without a duration: the last frame lasts as long as the one
    // before it did.
    let step = match timeline.packets_us[..] {
        [.., before, last] => last - before,
        _ => 0,
    };
    timeline.duration_us = end.max(last + step).max(last + 1);
    Ok(timeline)
}

/// Cuts `[0, k.duration_us)` into spans of about `chunk_us`, without gap
/// or overlap, boundaries chosen by `align`:
///
/// - [`Align::SourceKeyframes`]: boundary n is the keyframe nearest
///   `n × chunk_us`, never closer than `chunk_us / 2` to the one before; a
///   source with fewer than two keyframes per chunk is cut on a 1 s grid
///   instead.
/// - [`Align::Grid`]: the chunk is rounded to whole segments (ties up) and
///   boundaries are its multiples.
///
/// A last span shorter than `chunk_us / 4` joins the one before it.
pub fn plan_spans(k: &Keyframes, chunk_us: i64, align: Align) -> Vec<Span> {
    let duration = k.duration_us;
    if duration <= 0 {
        return Vec::new();
    }
    let chunk = chunk_us.max(1);
    let mut cuts = match align {
        Align::SourceKeyframes if few_keyframes(k, chunk) => {
            grid_cuts(duration, chunk, FALLBACK_GRID_US)
        }
        Align::SourceKeyframes => keyframe_cuts(k, chunk),
        Align::Grid { segment_us } => grid_cuts(duration, chunk, segment_us.max(1)),
    };
    if cuts.last().is_some_and(|last| duration - last < chunk / 4) {
        cuts.pop();
    }
    let bounds: Vec<i64> = std::iter::once(0)
        .chain(cuts)
        .chain(std::iter::once(duration))
        .collect();
    bounds
        .windows(2)
        .map(|pair| Span {
            start_us: pair[0],
            end_us: pair[1],
            frames: frames_in(&k.packets_us, pair[0], pair[1]),
        })
        .collect()
}

/// Fewer than two keyframes per chunk, on average.
fn few_keyframes(k: &Keyframes, chunk: i64) -> bool {
    let inside = k
        .keyframes_us
        .iter()
        .filter(|t| (0..k.duration_us).contains(*t))
        .count() as i128;
    inside * i128::from(chunk) < 2 * i128::from(k.duration_us)
}

/// Multiples of the chunk rounded to whole `segment`s, inside the video.
fn grid_cuts(duration: i64, chunk: i64, segment: i64) -> Vec<i64> {
    let segments = ((chunk + segment / 2) / segment).max(1);
    let step = segments.saturating_mul(segment);
    (1..)
        .map(|n: i64| n.saturating_mul(step))
        .take_while(|cut| *cut < duration)
        .collect()
}

/// The keyframes nearest each multiple of `chunk`, at least half a chunk
/// apart (and from the start).
fn keyframe_cuts(k: &Keyframes, chunk: i64) -> Vec<i64> {
    let mut cuts: Vec<i64> = Vec::new();
    let mut last = 0;
    let mut n: i64 = 1;
    while let Some(target) = n.checked_mul(chunk).filter(|t| *t < k.duration_us) {
        n += 1;
        let nearest = k
            .keyframes_us
            .iter()
            .copied()
            .filter(|t| *t >= last + chunk / 2 && *t < k.duration_us)
            .min_by_key(|t| (t - target).abs());
        if let Some(cut) = nearest.filter(|cut| *cut > last) {
            cuts.push(cut);
            last = cut;
        }
    }
    cuts
}

/// How many of the sorted `packets` lie in `[start, end)`.
fn frames_in(packets: &[i64], start: i64, end: i64) -> u64 {
    let from = packets.partition_point(|t| *t < start);
    let to = packets.partition_point(|t| *t < end);
    to.saturating_sub(from) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000;

    /// A `seconds` long 25 fps video with a keyframe every `gop` seconds.
    fn timeline(seconds: i64, gop: i64) -> Keyframes {
        let packets_us: Vec<i64> = (0..seconds * 25).map(|n| n * 40_000).collect();
        Keyframes {
            keyframes_us: packets_us
                .iter()
                .copied()
                .filter(|t| t % (gop * S) == 0)
                .collect(),
            packets_us,
            duration_us: seconds * S,
        }
    }

    fn bounds(spans: &[Span]) -> Vec<i64> {
        spans.iter().map(|s| s.start_us / 1000).collect()
    }

    #[test]
    fn ffprobe_output_becomes_times_from_the_file_start() {
        let json = br#"{"packets":[
            {"pts_time":"1.480000","duration_time":"0.040000","flags":"__"},
            {"pts_time":"1.400000","duration_time":"0.040000","flags":"K_"},
            {"pts_time":"N/A","flags":"__"},
            {"pts_time":"1.440000","duration_time":"0.040000","flags":"__"}],
            "streams":[{"start_time":"1.400000"}]}"#;
        let k = parse(json, None).expect("parses");
        assert_eq!(k.packets_us, [0, 40_000, 80_000]);
        let later = parse(json, Some(121_000)).expect("parses");
        assert_eq!(
            later.packets_us,
            [41_000, 81_000, 121_000],
            "ffmpeg's clock"
        );
        assert_eq!(k.keyframes_us, [0]);
        assert_eq!(k.duration_us, 120_000);
        assert!(matches!(
            parse(br#"{"packets":[]}"#, None),
            Err(SplitError::NoVideo)
        ));
        assert!(matches!(
            parse(b"nonsense", None),
            Err(SplitError::BadOutput(_))
        ));
        let crc = "#tb 0: 1/90000\n#media_type 0: video\n0, -7200, 45000, 3600, 8696, 0x030cf098, S=1, 1\n";
        assert_eq!(framecrc_first_pts(crc), Some(500_000));
        assert_eq!(framecrc_first_pts("#tb 0: 1/0\n0, 1, 2, 3\n"), None);
    }

    #[test]
    fn a_grid_rounds_the_chunk_to_whole_segments() {
        let k = timeline(24, 10);
        let spans = plan_spans(&k, 8 * S, Align::Grid { segment_us: 4 * S });
        assert_eq!(bounds(&spans), [0, 8000, 16000]);
        assert!(spans.iter().all(|s| s.frames == 200), "{spans:?}");
        // 30 s of 4 s segments is 7.5: ties go up, to 32 s.
        let spans = plan_spans(&timeline(100, 2), 30 * S, Align::Grid { segment_us: 4 * S });
        assert_eq!(bounds(&spans), [0, 32_000, 64_000]);
        assert_eq!(spans[2].end_us, 100 * S, "the 4 s tail joins the last span");
    }

    #[test]
    fn keyframes_are_cut_at_when_there_are_enough() {
        let k = timeline(60, 3);
        let spans = plan_spans(&k, 10 * S, Align::SourceKeyframes);
        assert_eq!(bounds(&spans), [0, 9000, 21_000, 30_000, 39_000, 51_000]);
        assert_eq!(spans.iter().map(|s| s.frames).sum::<u64>(), 1500);
        // One keyframe every 10 s is too few for 8 s chunks: a 1 s grid.
        let spans = plan_spans(&timeline(24, 10), 8 * S, Align::SourceKeyframes);
        assert_eq!(bounds(&spans), [0, 8000, 16000]);
    }

    #[test]
    fn short_sources_are_one_span_and_empty_ones_none() {
        let spans = plan_spans(&timeline(3, 1), 8 * S, Align::Grid { segment_us: 4 * S });
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].end_us, spans[0].frames), (3 * S, 75));
        assert!(plan_spans(&Keyframes::default(), S, Align::SourceKeyframes).is_empty());
    }

    prop_compose! {
        fn arb_timeline()(seconds in 1i64..400, gop in 1i64..30, fps in 1i64..61, shift in 0i64..40_000)
            -> Keyframes {
            let step = 1_000_000 / fps;
            let packets_us: Vec<i64> = (0..seconds * fps).map(|n| n * step + shift % step).collect();
            let keyframes_us = packets_us.iter().copied().step_by((gop * fps) as usize).collect();
            let duration_us = packets_us.last().copied().unwrap_or(0) + step;
            Keyframes { keyframes_us, packets_us, duration_us }
        }
    }

    proptest! {
        #[test]
        fn spans_cover_the_video_without_gap_or_overlap(
            k in arb_timeline(),
            chunk_s in 1i64..120,
            grid in proptest::option::of(1i64..10),
        ) {
            let chunk = chunk_s * S;
            let align = match grid {
                Some(seg) => Align::Grid { segment_us: seg * S },
                None => Align::SourceKeyframes,
            };
            let spans = plan_spans(&k, chunk, align);
            prop_assert!(!spans.is_empty());
            prop_assert_eq!(spans[0].start_us, 0);
            prop_assert_eq!(spans[spans.len() - 1].end_us, k.duration_us);
            for pair in spans.windows(2) {
                prop_assert_eq!(pair[0].end_us, pair[1].start_us);
                prop_assert!(pair[1].start_us - pair[0].start_us >= chunk / 2);
            }
            prop_assert!(spans.iter().all(|s| s.start_us < s.end_us));
            let frames: u64 = spans.iter().map(|s| s.frames).sum();
            prop_assert_eq!(frames, k.packets_us.len() as u64);
            if spans.len() > 1 {
                let last = spans[spans.len() - 1];
                prop_assert!(last.end_us - last.start_us >= chunk / 4);
            }
            for cut in spans.iter().skip(1).map(|s| s.start_us) {
                match align {
                    Align::Grid { segment_us } => prop_assert_eq!(cut % segment_us, 0),
                    Align::SourceKeyframes => prop_assert!(
                        k.keyframes_us.contains(&cut) || cut % FALLBACK_GRID_US == 0
                    ),
                }
            }
        }
    }
}
