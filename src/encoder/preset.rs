//! Encoding presets: one TOML file per preset, and what a preset means as
//! ffmpeg output options.
//!
//! The built-in presets are the files of the repository's `presets/` folder,
//! compiled in; a configured presets folder adds more (a GUID may be defined
//! once). A file that does not describe a usable preset stops the start with
//! an error naming the file and the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::carbon::Guid;

/// The seed's preset: H.264 800 kbit/s, 720×480, AAC, MP4 with the index
/// first ("480p" in the Flash Media Encoding Server preset editor).
pub const SEED_PRESET: Guid = Guid::from_u128(0x85DCCE70_0B4F_4328_86D1_5FC7756D9777);

/// The Carbon `ProfileType` of every preset: they describe destinations.
pub const PROFILE_TYPE: &str = "Destination";

/// The built-in presets: `(file name, text)`.
const BUILTIN: [(&str, &str); 6] = [
    (
        "seed-480p.toml",
        include_str!("../../presets/seed-480p.toml"),
    ),
    (
        "h264-360p.toml",
        include_str!("../../presets/h264-360p.toml"),
    ),
    (
        "h264-720p.toml",
        include_str!("../../presets/h264-720p.toml"),
    ),
    (
        "h264-1080p.toml",
        include_str!("../../presets/h264-1080p.toml"),
    ),
    (
        "aac-audio.toml",
        include_str!("../../presets/aac-audio.toml"),
    ),
    (
        "vp9-webm-720p.toml",
        include_str!("../../presets/vp9-webm-720p.toml"),
    ),
];

/// One preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub guid: Guid,
    pub name: String,
    pub description: String,
    /// File extension of the output.
    pub extension: String,
    /// ffmpeg muxer name (`-f`), e.g. `mp4`.
    pub container: String,
    /// `None`: audio only.
    pub video: Option<VideoSpec>,
    /// `None`: no sound.
    pub audio: Option<AudioSpec>,
    /// Compiled in (a SYSTEM profile), not read from the presets folder.
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSpec {
    /// ffmpeg encoder name, e.g. `libx264`.
    pub codec: String,
    pub bitrate_kbps: u32,
    pub width: u32,
    pub height: u32,
    /// Output frames per second; the source's when absent.
    pub frame_rate: Option<f64>,
    /// Speed/quality trade-off: x264/x265 `-preset` name, or libvpx's
    /// `-cpu-used` number; the encoder's default when absent.
    pub speed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    pub codec: String,
    pub bitrate_kbps: u32,
}

/// A preset file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    guid: String,
    name: String,
    #[serde(default)]
    description: String,
    container: String,
    extension: String,
    video: Option<VideoSpec>,
    audio: Option<AudioSpec>,
}

/// Why the presets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("preset file {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("preset file {file}: cannot read it: {error}")]
    Unreadable { file: String, error: std::io::Error },
    #[error("presets folder {folder}: cannot list it: {error}")]
    Folder {
        folder: String,
        error: std::io::Error,
    },
    #[error("preset {guid} is defined twice: in {first} and in {second}")]
    Duplicate {
        guid: Guid,
        first: String,
        second: String,
    },
}

/// The ffmpeg muxers a preset may use: each writes one self-contained file
/// (no playlists or segments beside it).
const CONTAINERS: [&str; 10] = [
    "mp4", "mov", "ipod", "webm", "matroska", "ogg", "flv", "mpegts", "adts", "mp3",
];

/// x264/x265 `-preset` names, fastest first.
const X26X_SPEEDS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// A name ffmpeg knows things by: letters, digits, `_` and `-`.
fn is_plain_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl PresetFile {
    /// Checks every field; the error names the field.
    fn validate(self) -> Result<Preset, String> {
        let guid: Guid = self.guid.parse().map_err(|e| format!("guid: {e}"))?;
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err("name: must be 1-100 printable characters".into());
        }
        if !CONTAINERS.contains(&self.container.as_str()) {
            return Err(format!(
                "container: {:?} is not one of {}",
                self.container,
                CONTAINERS.join(", ")
            ));
        }
        let extension_ok = !self.extension.is_empty()
            && self.extension.len() <= 8
            && self.extension.chars().all(|c| c.is_ascii_alphanumeric());
        if !extension_ok {
            return Err(format!(
                "extension: {:?} must be 1-8 letters or digits, without the dot",
                self.extension
            ));
        }
        if self.video.is_none() && self.audio.is_none() {
            return Err("a preset needs a [video] or an [audio] table, or both".into());
        }
        if let Some(v) = &self.video {
            check_video(v)?;
        }
        if let Some(a) = &self.audio {
            if !is_plain_name(&a.codec) {
                return Err(format!(
                    "audio.codec: {:?} is not an ffmpeg encoder name",
                    a.codec
                ));
            }
            if !(8..=1024).contains(&a.bitrate_kbps) {
                return Err("audio.bitrate_kbps: must be 8-1024".into());
            }
        }
        Ok(Preset {
            guid,
            name,
            description: self.description.trim().to_owned(),
            extension: self.extension.to_ascii_lowercase(),
            container: self.container,
            video: self.video,
            audio: self.audio,
            builtin: false,
        })
    }
}

fn check_video(v: &VideoSpec) -> Result<(), String> {
    if !is_plain_name(&v.codec) {
        return Err(format!(
            "video.codec: {:?} is not an ffmpeg encoder name",
            v.codec
        ));
    }
    if !(50..=100_000).contains(&v.bitrate_kbps) {
        return Err("video.bitrate_kbps: must be 50-100000".into());
    }
    for (field, value, max) in [("width", v.width, 7680), ("height", v.height, 4320)] {
        if !(16..=max).contains(&value) || value % 2 != 0 {
            return Err(format!(
                "video.{field}: must be an even number from 16 to {max}"
            ));
        }
    }
    if let Some(rate) = v.frame_rate
        && !(rate.is_finite() && (1.0..=240.0).contains(&rate))
    {
        return Err("video.frame_rate: must be 1-240".into());
    }
    if let Some(speed) = &v.speed {
        let x26x = ["libx264", "libx265"].contains(&v.codec.as_str());
        let vpx = v.codec.starts_with("libvpx");
        let ok = if x26x {
            X26X_SPEEDS.contains(&speed.as_str())
        } else if vpx {
            speed.parse::<i8>().is_ok_and(|n| (-8..=8).contains(&n))
        } else {
            is_plain_name(speed)
        };
        if !ok {
            let expected = if x26x {
                format!("one of {}", X26X_SPEEDS.join(", "))
            } else if vpx {
                "a -cpu-used number from -8 to 8".to_owned()
            } else {
                "a plain name".to_owned()
            };
            return Err(format!("video.speed: {speed:?} is not {expected}"));
        }
    }
    Ok(())
}

/// Parses one preset file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Preset, PresetError> {
    let invalid = |reason: String| PresetError::Invalid {
        file: file.to_owned(),
        reason,
    };
    // toml's message names the line, column and field.
    let raw: PresetFile =
        toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_owned()))?;
    raw.validate().map_err(invalid)
}

impl Preset {
    /// ffmpeg options between the inputs and the output path; the video
    /// is input 0's, the sound input `audio_input`'s (`None`: no sound).
    ///
    /// The picture is scaled to fit the frame with its aspect ratio kept and
    /// padded (letterboxed) to exactly `width×height`; yuv420p so every
    /// browser plays it. Sound is optional in the source unless the preset
    /// is audio only.
    pub fn output_args(&self, audio_input: Option<usize>) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let sound = audio_input.filter(|_| self.audio.is_some());
        match &self.video {
            Some(v) => {
                args.extend(["-map".into(), "0:v:0".into()]);
                if let Some(input) = sound {
                    args.extend(["-map".into(), format!("{input}:a:0?")]);
                }
                args.extend(video_args(v));
            }
            None => {
                let input = audio_input.unwrap_or(0);
                args.extend(["-map".into(), format!("{input}:a:0"), "-vn".into()]);
            }
        }
        match (&self.audio, sound.or(self.video.is_none().then_some(0))) {
            (Some(a), Some(_)) => args.extend([
                "-c:a".into(),
                a.codec.clone(),
                "-b:a".into(),
                format!("{}k", a.bitrate_kbps),
                "-ac".into(),
                "2".into(),
            ]),
            _ => args.push("-an".into()),
        }
        if self.container == "mp4" {
            // The index goes first so playback starts before the download ends.
            args.extend(["-movflags".into(), "+faststart".into()]);
        }
        // Named explicitly: the output is written under a temp name.
        args.extend(["-f".into(), self.container.clone()]);
        args
    }

    /// Whether the source must have a picture.
    pub fn needs_video(&self) -> bool {
        self.video.is_some()
    }
}

fn video_args(v: &VideoSpec) -> Vec<String> {
    let (w, h) = (v.width, v.height);
    let kbps = v.bitrate_kbps;
    let mut args: Vec<String> = vec!["-c:v".into(), v.codec.clone()];
    if let Some(speed) = &v.speed {
        if v.codec.starts_with("libvpx") {
            args.extend([
                "-deadline".into(),
                "good".into(),
                "-cpu-used".into(),
                speed.clone(),
            ]);
            args.extend(["-row-mt".into(), "1".into()]);
        } else {
            args.extend(["-preset".into(), speed.clone()]);
        }
    }
    args.extend([
        "-b:v".into(),
        format!("{kbps}k"),
        "-maxrate".into(),
        format!("{kbps}k"),
        "-bufsize".into(),
        format!("{}k", kbps * 2),
        "-vf".into(),
        format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
        ),
        "-pix_fmt".into(),
        "yuv420p".into(),
    ]);
    if let Some(rate) = v.frame_rate {
        args.extend(["-r".into(), rate.to_string()]);
    }
    args
}

/// The presets an encoder knows, in a stable order (built-ins first).
#[derive(Debug, Clone)]
pub struct Presets {
    list: Vec<Preset>,
}

impl Presets {
    /// The built-in set.
    pub fn builtin() -> Self {
        let list = BUILTIN
            .iter()
            // The built-in files are checked by this module's tests.
            .filter_map(|(file, text)| parse(file, text).ok())
            .map(|preset| Preset {
                builtin: true,
                ..preset
            })
            .collect();
        Presets { list }
    }

    /// The built-ins plus every `*.toml` file of `folder` (sorted by name).
    pub fn load(folder: Option<&Path>) -> Result<Self, PresetError> {
        let mut sources: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(file, text)| (format!("built-in {file}"), (*text).to_owned()))
            .collect();
        if let Some(folder) = folder {
            for path in preset_files(folder)? {
                let file = path.display().to_string();
                let text =
                    std::fs::read_to_string(&path).map_err(|error| PresetError::Unreadable {
                        file: file.clone(),
                        error,
                    })?;
                sources.push((file, text));
            }
        }
        let mut list = Vec::with_capacity(sources.len());
        let mut defined: HashMap<Guid, String> = HashMap::new();
        let encoders = ffmpeg_encoders();
        for (file, text) in sources {
            let preset = Preset {
                builtin: file.starts_with("built-in "),
                ..parse(&file, &text)?
            };
            if let Some(encoders) = &encoders {
                check_encoders(&preset, encoders).map_err(|reason| PresetError::Invalid {
                    file: file.clone(),
                    reason,
                })?;
            }
            if let Some(first) = defined.insert(preset.guid, file.clone()) {
                return Err(PresetError::Duplicate {
                    guid: preset.guid,
                    first,
                    second: file,
                });
            }
            list.push(preset);
        }
        Ok(Presets { list })
    }

    pub fn get(&self, guid: Guid) -> Option<&Preset> {
        self.list.iter().find(|p| p.guid == guid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Preset> {
        self.list.iter()
    }
}

/// The encoder names this machine's ffmpeg has (`ffmpeg -encoders`);
/// `None` when ffmpeg cannot be asked (encodes would fail and say so).
fn ffmpeg_encoders() -> Option<std::collections::HashSet<String>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The list follows a ` ------` line: ` V....D libx264  description`.
    let names = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect::<std::collections::HashSet<_>>();
    (!names.is_empty()).then_some(names)
}

/// Checks the preset's codecs are encoders ffmpeg has here, so a typo stops
/// the start instead of failing every job.
fn check_encoders(
    preset: &Preset,
    encoders: &std::collections::HashSet<String>,
) -> Result<(), String> {
    let wanted = [
        ("video.codec", preset.video.as_ref().map(|v| &v.codec)),
        ("audio.codec", preset.audio.as_ref().map(|a| &a.codec)),
    ];
    for (field, codec) in wanted {
        if let Some(codec) = codec
            && !encoders.contains(codec)
        {
            return Err(format!(
                "{field}: this machine's ffmpeg has no encoder {codec:?} (see `ffmpeg -encoders`)"
            ));
        }
    }
    Ok(())
}

fn preset_files(folder: &Path) -> Result<Vec<PathBuf>, PresetError> {
    let listing_failed = |error| PresetError::Folder {
        folder: folder.display().to_string(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(listing_failed)? {
        let path = entry.map_err(listing_failed)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_is_valid() {
        for (file, text) in BUILTIN {
            parse(file, text).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(Presets::builtin().iter().count(), BUILTIN.len());
    }

    #[test]
    fn seed_preset_matches_the_article() {
        let presets = Presets::builtin();
        let seed = presets.get(SEED_PRESET).expect("built in");
        assert_eq!(
            seed.guid.to_string(),
            "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"
        );
        let args = seed.output_args(Some(0)).join(" ");
        for expected in [
            "-c:v libx264",
            "-preset veryfast",
            "-b:v 800k",
            "pad=720:480",
            "-c:a aac",
            "-movflags +faststart",
        ] {
            assert!(args.contains(expected), "{expected} missing from {args}");
        }
    }

    #[test]
    fn audio_only_and_vp9_map_to_their_own_options() {
        let presets = Presets::builtin();
        let audio = presets
            .iter()
            .find(|p| p.video.is_none())
            .expect("an audio-only preset");
        let args = audio.output_args(Some(0)).join(" ");
        assert!(
            args.contains("-map 0:a:0 -vn") && !args.contains("-c:v"),
            "{args}"
        );
        let vp9 = presets
            .iter()
            .find(|p| p.container == "webm")
            .expect("a WebM preset");
        let args = vp9.output_args(Some(0)).join(" ");
        assert!(
            args.contains("-c:v libvpx-vp9 -deadline good -cpu-used 6"),
            "{args}"
        );
    }

    #[test]
    fn bad_files_name_the_field() {
        let good = BUILTIN[0].1;
        let cases = [
            (good.replace("width = 720", "width = 721"), "video.width"),
            (good.replace("guid = \"{", "guid = \"{X"), "guid"),
            (
                good.replace("container = \"mp4\"", "container = \"mp4; rm\""),
                "container",
            ),
            (
                good.replace("extension = \"mp4\"", "extension = \".mp4\""),
                "extension",
            ),
            (
                good.replace("bitrate_kbps = 128", "bitrate_kbps = 0"),
                "audio.bitrate_kbps",
            ),
            (good.replace("speed = ", "sped = "), "sped"),
            (good.replace("veryfast", "veryfastt"), "video.speed"),
            (good.replace("width = 720", "width = \"wide\""), "width"),
            ("name = \"x\"".to_owned(), "guid"),
        ];
        for (text, field) in cases {
            let err = parse("x.toml", &text).expect_err(field).to_string();
            assert!(
                err.starts_with("preset file x.toml: ") && err.contains(field),
                "{err}"
            );
        }
    }

    #[test]
    fn a_folder_adds_presets_and_a_guid_is_defined_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mine = BUILTIN[0]
            .1
            .replace(
                "85DCCE70-0B4F-4328-86D1-5FC7756D9777",
                "11111111-2222-3333-4444-555555555555",
            )
            .replace("H.264 480p 800 kbit/s", "Mine");
        std::fs::write(dir.path().join("mine.toml"), &mine).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let presets = Presets::load(Some(dir.path())).expect("loads");
        assert_eq!(presets.iter().count(), BUILTIN.len() + 1);
        assert!(presets.iter().any(|p| p.name == "Mine"));

        std::fs::write(
            dir.path().join("mine.toml"),
            mine.replace("libx264", "h264_nonsense"),
        )
        .expect("write");
        let err = Presets::load(Some(dir.path()))
            .expect_err("unknown encoder")
            .to_string();
        assert!(
            err.contains("mine.toml") && err.contains("video.codec"),
            "{err}"
        );
        std::fs::write(dir.path().join("mine.toml"), &mine).expect("write");

        std::fs::write(dir.path().join("copy.toml"), BUILTIN[0].1).expect("write");
        let err = Presets::load(Some(dir.path()))
            .expect_err("duplicate")
            .to_string();
        assert!(
            err.contains("defined twice") && err.contains("copy.toml"),
            "{err}"
        );
    }
}
