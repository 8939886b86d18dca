//! Checking a preset file: every field, and that this machine's ffmpeg
//! has the encoders it names. Each error names the field.

use super::ladder::LadderFile;
use super::{AudioSpec, Preset, VideoSpec};
use crate::carbon::PresetId;
use crate::carbon::guid::InvalidGuid;
use serde::Deserialize;

/// What is wrong with one preset file.
#[derive(Debug, thiserror::Error)]
pub enum InvalidPreset {
    #[error("{}", .0.to_string().trim())]
    Toml(#[from] toml::de::Error),
    #[error("guid: {0}")]
    Guid(InvalidGuid),
    #[error("name: must be 1-100 printable characters")]
    Name,
    #[error("container: {0:?} is not one of {list}", list = CONTAINERS.join(", "))]
    Container(String),
    #[error("extension: {0:?} must be 1-8 letters or digits, without the dot")]
    Extension(String),
    #[error("a preset needs a [video] or an [audio] table, or both")]
    NoStreams,
    #[error("{field}: {codec:?} is not an ffmpeg encoder name")]
    CodecName { field: &'static str, codec: String },
    #[error("{field}: must be {range}")]
    OutOfRange {
        field: &'static str,
        range: &'static str,
    },
    #[error("{field}: must be an even number from 16 to {max}")]
    Size { field: &'static str, max: u32 },
    #[error("video.speed: {speed:?} is not {expected}")]
    Speed { speed: String, expected: SpeedKind },
    #[error("container \"hls\" goes with a [video] and an [hls] table, and [hls] only with it")]
    Ladder,
    #[error(
        "hls.rungs: 1-7 rungs, each shorter than the one above ([video] is the top), even sizes"
    )]
    Rungs,
    #[error("{field}: this machine's ffmpeg has no encoder {codec:?} (see `ffmpeg -encoders`)")]
    NoEncoder { field: &'static str, codec: String },
}

/// What a codec's `speed` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedKind {
    /// x264/x265: a `-preset` name.
    X26x,
    /// libvpx: a `-cpu-used` number.
    Vpx,
    /// Any other encoder.
    Plain,
}

impl std::fmt::Display for SpeedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpeedKind::X26x => write!(f, "one of {}", X26X_SPEEDS.join(", ")),
            SpeedKind::Vpx => f.write_str("a -cpu-used number from -8 to 8"),
            SpeedKind::Plain => f.write_str("a plain name"),
        }
    }
}

/// A preset file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PresetFile {
    guid: String,
    name: String,
    #[serde(default)]
    description: String,
    container: String,
    extension: String,
    video: Option<VideoSpec>,
    audio: Option<AudioSpec>,
    hls: Option<LadderFile>,
}

/// The ffmpeg muxers a preset may use: each writes one self-contained file
/// (no playlists or segments beside it), except `hls` (a ladder preset:
/// a folder of playlists and segments, see [`super::ladder`]).
const CONTAINERS: [&str; 11] = [
    "hls", "mp4", "mov", "ipod", "webm", "matroska", "ogg", "flv", "mpegts", "adts", "mp3",
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
    pub(super) fn validate(self) -> Result<Preset, InvalidPreset> {
        let guid: PresetId = self.guid.parse().map_err(InvalidPreset::Guid)?;
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(InvalidPreset::Name);
        }
        if !CONTAINERS.contains(&self.container.as_str()) {
            return Err(InvalidPreset::Container(self.container));
        }
        let extension_ok = !self.extension.is_empty()
            && self.extension.len() <= 8
            && self.extension.chars().all(|c| c.is_ascii_alphanumeric());
        if !extension_ok {
            return Err(InvalidPreset::Extension(self.extension));
        }
        if self.video.is_none() && self.audio.is_none() {
            return Err(InvalidPreset::NoStreams);
        }
        if let Some(v) = &self.video {
            check_video(v)?;
        }
        let ladder = match (self.container == "hls", self.hls, &self.video) {
            (true, Some(hls), Some(top)) => Some(hls.validate(top)?),
            (false, None, _) => None,
            _ => return Err(InvalidPreset::Ladder),
        };
        if let Some(a) = &self.audio {
            if !is_plain_name(&a.codec) {
                return Err(InvalidPreset::CodecName {
                    field: "audio.codec",
                    codec: a.codec.clone(),
                });
            }
            if !(8..=1024).contains(&a.bitrate_kbps) {
                return Err(InvalidPreset::OutOfRange {
                    field: "audio.bitrate_kbps",
                    range: "8-1024",
                });
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
            ladder,
            builtin: false,
        })
    }
}

fn check_video(v: &VideoSpec) -> Result<(), InvalidPreset> {
    if !is_plain_name(&v.codec) {
        return Err(InvalidPreset::CodecName {
            field: "video.codec",
            codec: v.codec.clone(),
        });
    }
    if !(50..=100_000).contains(&v.bitrate_kbps) {
        return Err(InvalidPreset::OutOfRange {
            field: "video.bitrate_kbps",
            range: "50-100000",
        });
    }
    for (field, value, max) in [
        ("video.width", v.width, 7680),
        ("video.height", v.height, 4320),
    ] {
        if !(16..=max).contains(&value) || value % 2 != 0 {
            return Err(InvalidPreset::Size { field, max });
        }
    }
    if let Some(rate) = v.frame_rate
        && !(rate.is_finite() && (1.0..=240.0).contains(&rate))
    {
        return Err(InvalidPreset::OutOfRange {
            field: "video.frame_rate",
            range: "1-240",
        });
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
                SpeedKind::X26x
            } else if vpx {
                SpeedKind::Vpx
            } else {
                SpeedKind::Plain
            };
            return Err(InvalidPreset::Speed {
                speed: speed.clone(),
                expected,
            });
        }
    }
    Ok(())
}

/// Checks the preset's codecs are encoders ffmpeg has here, so a typo stops
/// the start instead of failing every job.
pub(super) fn check_encoders(
    preset: &Preset,
    encoders: &std::collections::HashSet<String>,
) -> Result<(), InvalidPreset> {
    let wanted = [
        ("video.codec", preset.video.as_ref().map(|v| &v.codec)),
        ("audio.codec", preset.audio.as_ref().map(|a| &a.codec)),
    ];
    for (field, codec) in wanted {
        if let Some(codec) = codec
            && !encoders.contains(codec)
        {
            return Err(InvalidPreset::NoEncoder {
                field,
                codec: codec.clone(),
            });
        }
    }
    Ok(())
}
