//! Encoding presets: one TOML file per preset, loaded and checked
//! ([`check`]), and what a preset means as ffmpeg output options
//! ([`args`]; an HLS ladder's in [`ladder`], its published master
//! playlist in [`master`]).
//!
//! The built-in presets are the files of the repository's `presets/` folder,
//! compiled in; a configured presets folder adds more (a GUID may be defined
//! once). A file that does not describe a usable preset stops the start with
//! an error naming the file and the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::carbon::PresetId;
use crate::media::ffmpeg_args::FfmpegArgs;

mod args;
mod check;
pub mod ladder;
pub mod master;

pub use check::{InvalidPreset, SpeedKind};
pub use ladder::{Ladder, LadderPart, SourcePicture};

/// The seed's preset: H.264 800 kbit/s, 720×480, AAC, MP4 with the index
/// first ("480p" in the Flash Media Encoding Server preset editor).
pub const SEED_PRESET: PresetId = PresetId::from_u128(0x85DCCE70_0B4F_4328_86D1_5FC7756D9777);

/// The built-in HLS ladder (`presets/hls-ladder.toml`).
pub const HLS_LADDER_PRESET: PresetId = PresetId::from_u128(0x5C1E7A3B_9D24_4F6E_8B0A_2E7D4C9F1A63);

/// The Carbon `ProfileType` of every preset: they describe destinations.
pub const PROFILE_TYPE: &str = "Destination";

/// The built-in presets: `(file name, text)`.
const BUILTIN: [(&str, &str); 7] = [
    (
        "seed-480p.toml",
        include_str!("../../../presets/seed-480p.toml"),
    ),
    (
        "h264-360p.toml",
        include_str!("../../../presets/h264-360p.toml"),
    ),
    (
        "h264-720p.toml",
        include_str!("../../../presets/h264-720p.toml"),
    ),
    (
        "h264-1080p.toml",
        include_str!("../../../presets/h264-1080p.toml"),
    ),
    (
        "aac-audio.toml",
        include_str!("../../../presets/aac-audio.toml"),
    ),
    (
        "vp9-webm-720p.toml",
        include_str!("../../../presets/vp9-webm-720p.toml"),
    ),
    (
        "hls-ladder.toml",
        include_str!("../../../presets/hls-ladder.toml"),
    ),
];

/// One preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub guid: PresetId,
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
    /// An HLS ladder (`container = "hls"`): `video` is its top rung, and
    /// the output is a folder with a master playlist, not one file.
    pub ladder: Option<Ladder>,
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

/// Why the presets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("preset file {file}: {reason}")]
    Invalid { file: String, reason: InvalidPreset },
    #[error("preset file {file}: cannot read it: {error}")]
    Unreadable { file: String, error: std::io::Error },
    #[error("presets folder {folder}: cannot list it: {error}")]
    Folder {
        folder: String,
        error: std::io::Error,
    },
    #[error("preset {guid} is defined twice: in {first} and in {second}")]
    Duplicate {
        guid: PresetId,
        first: String,
        second: String,
    },
}

/// Parses one preset file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Preset, PresetError> {
    let invalid = |reason: InvalidPreset| PresetError::Invalid {
        file: file.to_owned(),
        reason,
    };
    // toml's message names the line, column and field.
    let raw: check::PresetFile = toml::from_str(text).map_err(|e| invalid(e.into()))?;
    raw.validate().map_err(invalid)
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
        let mut defined: HashMap<PresetId, String> = HashMap::new();
        let encoders = ffmpeg_encoders();
        for (file, text) in sources {
            let preset = Preset {
                builtin: file.starts_with("built-in "),
                ..parse(&file, &text)?
            };
            if let Some(encoders) = &encoders {
                check::check_encoders(&preset, encoders).map_err(|reason| {
                    PresetError::Invalid {
                        file: file.clone(),
                        reason,
                    }
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

    pub fn get(&self, guid: PresetId) -> Option<&Preset> {
        self.list.iter().find(|p| p.guid == guid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Preset> {
        self.list.iter()
    }
}

/// The encoder names this machine's ffmpeg has (`ffmpeg -encoders`);
/// `None` when ffmpeg cannot be asked (encodes would fail and say so).
pub(crate) fn ffmpeg_encoders() -> Option<std::collections::HashSet<String>> {
    let out = std::process::Command::new("ffmpeg")
        .args(FfmpegArgs::new().with(["-encoders"]))
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
