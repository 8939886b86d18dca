//! An HLS ladder preset (`container = "hls"`): its `[hls]` table, and the
//! ffmpeg options that make every rung from one decode (`split` + a scale
//! per rung), with keyframes aligned across rungs, CMAF fMP4 segments, a
//! master playlist and AAC sound in its own rendition group.
//!
//! It knows nothing of jobs or folders beyond the one it is told to write
//! into; the command line is finished by [`crate::media::ffmpeg_args`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::media::ffmpeg_args::FfmpegArgs;

use super::{InvalidPreset, Preset, VideoSpec};

/// The master playlist's name inside a ladder's folder: ours, published
/// once the ladder is playable (see [`super::master`]).
pub use crate::media::hls_folder::MASTER as MASTER_PLAYLIST;

/// Where ffmpeg writes its own master playlist: hidden (never served), read
/// to make ours, removed when the ladder is finished.
pub const FFMPEG_MASTER_PLAYLIST: &str = ".ffmpeg-master.m3u8";

/// Each rendition's playlist, inside the rendition's own folder.
const MEDIA_PLAYLIST: &str = "index.m3u8";

/// The sound rendition's folder, and its group in the master playlist.
pub const AUDIO_RENDITION: &str = "audio";

/// The `[hls]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LadderFile {
    segment_seconds: u32,
    #[serde(default)]
    rungs: Vec<RungFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RungFile {
    width: u32,
    height: u32,
    bitrate_kbps: u32,
}

/// A checked ladder: rungs tallest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub segment_seconds: u32,
    pub rungs: Vec<Rung>,
}

/// One rendition of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
}

impl Rung {
    /// Its folder and name in the master playlist, e.g. `720p`.
    pub fn name(&self) -> String {
        format!("{}p", self.height)
    }
}

impl LadderFile {
    /// The ladder: `[video]`'s size and bitrate on top, then these rungs,
    /// each shorter than the one above it.
    pub(super) fn validate(self, top: &VideoSpec) -> Result<Ladder, InvalidPreset> {
        if !(1..=20).contains(&self.segment_seconds) {
            return Err(InvalidPreset::OutOfRange {
                field: "hls.segment_seconds",
                range: "1-20",
            });
        }
        let mut rungs = vec![Rung {
            width: top.width,
            height: top.height,
            bitrate_kbps: top.bitrate_kbps,
        }];
        for r in self.rungs {
            let rung = Rung {
                width: r.width,
                height: r.height,
                bitrate_kbps: r.bitrate_kbps,
            };
            let even =
                |v: u32| (16..=top.width.max(top.height)).contains(&v) && v.is_multiple_of(2);
            let shorter = rungs.last().is_some_and(|above| rung.height < above.height);
            if !(even(rung.width) && even(rung.height) && shorter) {
                return Err(InvalidPreset::Rungs);
            }
            if !(50..=100_000).contains(&rung.bitrate_kbps) {
                return Err(InvalidPreset::OutOfRange {
                    field: "hls.rungs.bitrate_kbps",
                    range: "50-100000",
                });
            }
            rungs.push(rung);
        }
        if rungs.len() > 8 {
            return Err(InvalidPreset::Rungs);
        }
        Ok(Ladder {
            segment_seconds: self.segment_seconds,
            rungs,
        })
    }
}

/// What the ladder needs to know of the source (from its probe); kept in
/// a chunked job's plan for the nodes encoding its chunks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
pub struct SourcePicture {
    /// Its size in pixels (`u32::MAX` when unknown: every rung at its
    /// box's size).
    pub width: u32,
    pub height: u32,
    /// Frames per second, when known.
    pub frame_rate: Option<f64>,
    /// Whether the source has sound (a separate sound file is assumed to).
    pub has_audio: bool,
}

impl SourcePicture {
    /// The size of `rung` for this picture: fitted in the rung's box with
    /// the source's shape, never larger than the source, in even pixels.
    /// Computed here rather than by ffmpeg's `force_original_aspect_ratio`
    /// because the rungs are scaled one from another (a cascade): a rung
    /// rounded to even must not tilt the shape of the rungs below it.
    pub fn fitted(&self, rung: &Rung) -> (u32, u32) {
        let unknown = |side: u32| side == 0 || side == u32::MAX;
        if unknown(self.width) || unknown(self.height) {
            return (rung.width, rung.height);
        }
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let factor = (f64::from(rung.width) / w)
            .min(f64::from(rung.height) / h)
            .min(1.0);
        let even = |side: f64| (((side / 2.0).round() as u32) * 2).max(2);
        (even(w * factor), even(h * factor))
    }
}

impl Ladder {
    /// The rungs made for `source`: those whose box it fills in width or
    /// height (a wide 1920×800 film still gets 1080p, at 1920×800; fitting
    /// never enlarges), or the lowest alone if it fills none.
    pub fn rungs_for(&self, source: &SourcePicture) -> Vec<Rung> {
        let fitting: Vec<Rung> = self
            .rungs
            .iter()
            .copied()
            .filter(|r| source.width >= r.width || source.height >= r.height)
            .collect();
        if fitting.is_empty() {
            self.rungs.last().copied().into_iter().collect()
        } else {
            fitting
        }
    }
}

/// Where ffmpeg writes a ladder in `folder`: the media playlists' pattern
/// (its output argument) — the master playlist goes beside the `%v` folders.
pub fn playlist_pattern(folder: &Path) -> PathBuf {
    folder.join("%v").join(MEDIA_PLAYLIST)
}

/// `args` (a ladder's options) finished with the ladder's output in
/// `folder`: its playlists' pattern, the folder named for messages.
pub fn ladder_output(args: FfmpegArgs, folder: &Path) -> FfmpegArgs {
    args.mention(folder).output(&playlist_pattern(folder))
}

/// Which part of a ladder one ffmpeg run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LadderPart {
    /// Every rung and the sound, of the whole source.
    Whole,
    /// Every rung, no sound, of a chunk of the source read with `-copyts`
    /// (times are the source's): its segments are numbered from
    /// `first_segment`, the one starting at `first_segment ×
    /// segment_seconds`, and joined to the other chunks' without
    /// re-encoding.
    Rungs { first_segment: u64 },
    /// The sound rendition alone, of the whole source.
    Sound,
}

impl Preset {
    /// ffmpeg options, before [`playlist_pattern`], that write this ladder
    /// preset into `folder`. `index` tells this output's filter labels from
    /// other outputs' of the same run; the picture is input 0's, the sound
    /// input `audio_input`'s. `None` for a preset that is not a ladder.
    pub fn ladder_args(
        &self,
        index: usize,
        folder: &Path,
        source: &SourcePicture,
        audio_input: Option<usize>,
    ) -> Option<Vec<OsString>> {
        self.ladder_part_args(index, folder, source, audio_input, LadderPart::Whole)
    }

    /// [`Preset::ladder_args`] for a `part` of the ladder. `None` for a
    /// preset that is not a ladder, or [`LadderPart::Sound`] without
    /// sound.
    pub fn ladder_part_args(
        &self,
        index: usize,
        folder: &Path,
        source: &SourcePicture,
        audio_input: Option<usize>,
        part: LadderPart,
    ) -> Option<Vec<OsString>> {
        let (ladder, video) = (self.ladder.as_ref()?, self.video.as_ref()?);
        // The sound part is asked for only when there is sound to encode.
        let sound = match part {
            LadderPart::Rungs { .. } => None,
            LadderPart::Sound => audio_input,
            LadderPart::Whole => audio_input.filter(|_| source.has_audio),
        };
        let audio = self.audio.as_ref().zip(sound);
        let rungs = match part {
            LadderPart::Sound if audio.is_none() => return None,
            LadderPart::Sound => Vec::new(),
            _ => ladder.rungs_for(source),
        };
        let label = |n: usize| format!("l{index}v{n}");
        let mut args: Vec<String> = Vec::new();
        if !rungs.is_empty() {
            args.extend(["-filter_complex".into(), cascade(&rungs, source, label)]);
        }
        for n in 0..rungs.len() {
            args.extend(["-map".into(), format!("[{}]", label(n))]);
        }
        if let Some((_, input)) = audio {
            args.extend(["-map".into(), format!("{input}:a:0")]);
        }
        if !rungs.is_empty() {
            args.extend(rung_encoder_args(&rungs, video));
            let origin = match part {
                LadderPart::Rungs { first_segment } => {
                    first_segment.saturating_mul(u64::from(ladder.segment_seconds))
                }
                _ => 0,
            };
            args.extend(keyframe_args(ladder.segment_seconds, origin, video, source));
        }
        match audio {
            Some((a, _)) => args.extend(super::args::audio_args(a)),
            None => args.push("-an".into()),
        }
        let mut map: Vec<String> = rungs
            .iter()
            .enumerate()
            .map(|(n, r)| match audio {
                Some(_) => format!("v:{n},agroup:{AUDIO_RENDITION},name:{}", r.name()),
                None => format!("v:{n},name:{}", r.name()),
            })
            .collect();
        if audio.is_some() {
            map.push(format!(
                "a:0,agroup:{AUDIO_RENDITION},name:{AUDIO_RENDITION}"
            ));
        }
        args.extend(hls_args(ladder.segment_seconds, &map));
        if let LadderPart::Rungs { first_segment } = part {
            args.extend(chunk_hls_args(first_segment));
        }
        let mut args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
        args.push("-hls_segment_filename".into());
        args.push(folder.join("%v").join("seg%05d.m4s").into_os_string());
        Some(args)
    }
}

/// The filter graph making every rung from input 0's picture, labelled
/// `label(n)`: a cascade, each rung scaled from the one above it, not from
/// the source, so every scaler after the first reads a smaller picture
/// (one decode, and much less scaling than separate runs).
fn cascade(rungs: &[Rung], source: &SourcePicture, label: impl Fn(usize) -> String) -> String {
    let last = rungs.len().saturating_sub(1);
    let mut steps = Vec::with_capacity(rungs.len());
    for (n, r) in rungs.iter().enumerate() {
        let from = if n == 0 {
            "[0:v:0]".to_owned()
        } else {
            format!("[{}c]", label(n))
        };
        // The pixel format once, on the largest picture's way in.
        let format = if n == 0 { ",format=yuv420p" } else { "" };
        let to = if n == last {
            format!("[{}]", label(n))
        } else {
            format!(",split=2[{}][{}c]", label(n), label(n + 1))
        };
        let (w, h) = source.fitted(r);
        steps.push(format!("{from}scale={w}:{h},setsar=1{format}{to}"));
    }
    steps.join(";")
}

/// The video encoder and each rung's bitrate.
fn rung_encoder_args(rungs: &[Rung], video: &VideoSpec) -> Vec<String> {
    let mut args = vec!["-c:v".into(), video.codec.clone()];
    if let Some(speed) = &video.speed {
        args.extend(["-preset".into(), speed.clone()]);
    }
    for (n, r) in rungs.iter().enumerate() {
        let kbps = r.bitrate_kbps;
        args.extend([
            format!("-b:v:{n}"),
            format!("{kbps}k"),
            format!("-maxrate:v:{n}"),
            format!("{kbps}k"),
            format!("-bufsize:v:{n}"),
            format!("{}k", kbps * 2),
        ]);
    }
    args
}

/// The HLS muxer's options: CMAF fMP4 segments of `seconds`, the renditions
/// of `map` (`-var_stream_map`), ffmpeg's master hidden.
fn hls_args(seconds: u32, map: &[String]) -> Vec<String> {
    vec![
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        seconds.to_string(),
        "-hls_playlist_type".into(),
        "event".into(),
        "-hls_segment_type".into(),
        "fmp4".into(),
        // `temp_file`: a segment is written as `*.tmp` and renamed once
        // whole, and so is every playlist (ffmpeg 5.1), so a player
        // watching the folder while it encodes never reads half a file.
        "-hls_flags".into(),
        "independent_segments+temp_file".into(),
        "-hls_fmp4_init_filename".into(),
        "init.mp4".into(),
        "-master_pl_name".into(),
        FFMPEG_MASTER_PLAYLIST.into(),
        "-var_stream_map".into(),
        map.join(" "),
    ]
}

/// What makes a chunk's segments the whole ladder's: numbered on from the
/// chunks before, the source's times kept in each fragment (`tfdt`), and
/// so an init segment byte-equal to every other chunk's (tried on ffmpeg
/// 5.1: without `frag_discont` every chunk's times restart at 0).
fn chunk_hls_args(first_segment: u64) -> [String; 6] {
    [
        "-avoid_negative_ts".into(),
        "disabled".into(),
        "-start_number".into(),
        first_segment.to_string(),
        "-hls_segment_options".into(),
        "movflags=+frag_discont:avoid_negative_ts=disabled".into(),
    ]
}

/// Keyframes every `seconds` exactly, in every rung alike: forced at each
/// segment boundary (the first at `origin` s, where a chunk starts), no
/// scene-cut keyframes, and a fixed GOP of `seconds × fps` when the rate
/// is known.
fn keyframe_args(
    seconds: u32,
    origin: u64,
    video: &VideoSpec,
    source: &SourcePicture,
) -> Vec<String> {
    let times = match origin {
        0 => format!("n_forced*{seconds}"),
        origin => format!("{origin}+n_forced*{seconds}"),
    };
    let mut args = vec![
        "-force_key_frames".into(),
        format!("expr:gte(t,{times})"),
        "-sc_threshold".into(),
        "0".into(),
    ];
    let rate = video.frame_rate.or(source.frame_rate);
    if let Some(rate) = video.frame_rate {
        args.extend(["-r".into(), rate.to_string()]);
    }
    if let Some(rate) = rate.filter(|r| r.is_finite() && *r > 0.0) {
        let gop = (f64::from(seconds) * rate).ceil().max(1.0) as u64;
        args.extend([
            "-g".into(),
            gop.to_string(),
            "-keyint_min".into(),
            gop.to_string(),
        ]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::super::Presets;
    use super::*;

    fn ladder_preset() -> Preset {
        Presets::builtin()
            .iter()
            .find(|p| p.ladder.is_some())
            .cloned()
            .expect("a built-in ladder")
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn rungs_taller_than_the_source_are_skipped_never_upscaled() {
        let preset = ladder_preset();
        let ladder = preset.ladder.as_ref().expect("ladder");
        let sizes = |width, height| {
            let source = SourcePicture {
                width,
                height,
                frame_rate: None,
                has_audio: false,
            };
            ladder
                .rungs_for(&source)
                .iter()
                .map(|r| source.fitted(r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sizes(3840, 2160),
            [(1920, 1080), (1280, 720), (854, 480), (640, 360)]
        );
        assert_eq!(sizes(1280, 720), [(1280, 720), (854, 480), (640, 360)]);
        assert_eq!(sizes(640, 360), [(640, 360)]);
        assert_eq!(sizes(320, 240), [(320, 240)], "the lowest, no larger");
        // A wide film fills the 1080p box's width: its full size on top.
        assert_eq!(
            sizes(1920, 800),
            [(1920, 800), (1280, 534), (854, 356), (640, 266)]
        );
        // A phone's portrait video (as shown) fills the boxes' height.
        assert_eq!(sizes(1080, 1920)[..2], [(608, 1080), (406, 720)]);
    }

    #[test]
    fn one_decode_aligned_keyframes_and_an_audio_group() {
        let preset = ladder_preset();
        let source = SourcePicture {
            width: 854,
            height: 480,
            frame_rate: Some(25.0),
            has_audio: true,
        };
        let args = preset
            .ladder_args(0, Path::new("/t/x.part"), &source, Some(0))
            .expect("a ladder");
        let text = joined(&args);
        for expected in [
            "[0:v:0]scale=854:480,setsar=1,format=yuv420p,split=2[l0v0][l0v1c];\
             [l0v1c]scale=640:360,setsar=1[l0v1]",
            "-map [l0v0] -map [l0v1] -map 0:a:0",
            "-b:v:0 1400k",
            "-b:v:1 800k",
            "-force_key_frames expr:gte(t,n_forced*4) -sc_threshold 0 -g 100 -keyint_min 100",
            "-f hls -hls_time 4 -hls_playlist_type event -hls_segment_type fmp4",
            "-hls_flags independent_segments+temp_file",
            "-master_pl_name .ffmpeg-master.m3u8",
            "v:0,agroup:audio,name:480p v:1,agroup:audio,name:360p a:0,agroup:audio,name:audio",
            "-hls_segment_filename /t/x.part/%v/seg%05d.m4s",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert!(!text.contains("1080p") && !text.contains("720p"), "{text}");

        let silent = SourcePicture {
            has_audio: false,
            ..source
        };
        let text = joined(
            &preset
                .ladder_args(1, Path::new("/t/y"), &silent, Some(0))
                .expect("a ladder"),
        );
        assert!(
            text.contains("-an") && !text.contains("agroup") && text.contains("[l1v0]"),
            "{text}"
        );
    }

    #[test]
    fn rungs_keep_the_source_shape_in_even_pixels_never_larger() {
        let rung = |width, height| Rung {
            width,
            height,
            bitrate_kbps: 1,
        };
        let picture = |width, height| SourcePicture {
            width,
            height,
            frame_rate: None,
            has_audio: false,
        };
        let hd = picture(1920, 1080);
        assert_eq!(hd.fitted(&rung(1280, 720)), (1280, 720));
        assert_eq!(hd.fitted(&rung(854, 480)), (854, 480));
        assert_eq!(hd.fitted(&rung(640, 360)), (640, 360));
        assert_eq!(picture(1080, 1920).fitted(&rung(1920, 1080)), (608, 1080));
        assert_eq!(picture(320, 240).fitted(&rung(640, 360)), (320, 240));
        assert_eq!(picture(720, 576).fitted(&rung(640, 360)), (450, 360));
        let unknown = picture(u32::MAX, u32::MAX);
        assert_eq!(unknown.fitted(&rung(640, 360)), (640, 360));
    }

    #[test]
    fn rungs_must_shrink() {
        let text = include_str!("../../../presets/hls-ladder.toml");
        let bad = text.replace("width = 854, height = 480", "width = 854, height = 800");
        let err = super::super::parse("x.toml", &bad)
            .expect_err("taller")
            .to_string();
        assert!(err.contains("hls.rungs"), "{err}");
        let bad = text.replace("segment_seconds = 4", "segment_seconds = 0");
        let err = super::super::parse("x.toml", &bad)
            .expect_err("zero")
            .to_string();
        assert!(err.contains("hls.segment_seconds"), "{err}");
    }
}
