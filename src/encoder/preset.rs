//! Encoding presets: what a preset GUID means as ffmpeg output options.

use crate::carbon::Guid;

/// The seed's preset: H.264 800 kbit/s, 720×480, AAC, MP4 with the index
/// first ("480p" in the Flash Media Encoding Server preset editor).
pub const SEED_PRESET: Guid = Guid::from_u128(0x85DCCE70_0B4F_4328_86D1_5FC7756D9777);

/// The Carbon `ProfileType` of every preset: they describe destinations.
pub const PROFILE_TYPE: &str = "Destination";

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
    pub video: VideoSpec,
    pub audio: Option<AudioSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoSpec {
    /// ffmpeg encoder name, e.g. `libx264`.
    pub codec: String,
    pub bitrate_kbps: u32,
    pub width: u32,
    pub height: u32,
    /// x264 speed/quality trade-off.
    pub speed: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioSpec {
    pub codec: String,
    pub bitrate_kbps: u32,
}

impl Preset {
    /// ffmpeg options between the input and the output path.
    ///
    /// The picture is scaled to fit the frame with its aspect ratio kept and
    /// padded (letterboxed) to exactly `width×height`; yuv420p so every
    /// browser plays it; audio is optional in the source.
    pub fn output_args(&self) -> Vec<String> {
        let v = &self.video;
        let (w, h) = (v.width, v.height);
        let mut args: Vec<String> = vec!["-map".into(), "0:v:0".into()];
        if self.audio.is_some() {
            args.extend(["-map".into(), "0:a:0?".into()]);
        }
        args.extend([
            "-c:v".into(),
            v.codec.clone(),
            "-preset".into(),
            v.speed.clone(),
            "-b:v".into(),
            format!("{}k", v.bitrate_kbps),
            "-maxrate".into(),
            format!("{}k", v.bitrate_kbps),
            "-bufsize".into(),
            format!("{}k", v.bitrate_kbps * 2),
            "-vf".into(),
            format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
            ),
            "-pix_fmt".into(),
            "yuv420p".into(),
        ]);
        match &self.audio {
            Some(a) => args.extend([
                "-c:a".into(),
                a.codec.clone(),
                "-b:a".into(),
                format!("{}k", a.bitrate_kbps),
                "-ac".into(),
                "2".into(),
            ]),
            None => args.push("-an".into()),
        }
        if self.container == "mp4" {
            // The index goes first so playback starts before the download ends.
            args.extend(["-movflags".into(), "+faststart".into()]);
        }
        // Named explicitly: the output is written under a temp name.
        args.extend(["-f".into(), self.container.clone()]);
        args
    }
}

/// The presets an encoder knows.
#[derive(Debug, Clone)]
pub struct Presets {
    list: Vec<Preset>,
}

impl Presets {
    /// The built-in set.
    pub fn builtin() -> Self {
        Presets {
            list: vec![Preset {
                guid: SEED_PRESET,
                name: "H.264 480p 800 kbit/s".into(),
                description: "H.264 800 kbit/s, 720x480, AAC 128 kbit/s, MP4 (fast start)".into(),
                extension: "mp4".into(),
                container: "mp4".into(),
                video: VideoSpec {
                    codec: "libx264".into(),
                    bitrate_kbps: 800,
                    width: 720,
                    height: 480,
                    speed: "veryfast".into(),
                },
                audio: Some(AudioSpec {
                    codec: "aac".into(),
                    bitrate_kbps: 128,
                }),
            }],
        }
    }

    pub fn get(&self, guid: Guid) -> Option<&Preset> {
        self.list.iter().find(|p| p.guid == guid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Preset> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_preset_matches_the_article() {
        let presets = Presets::builtin();
        let seed = presets.get(SEED_PRESET).expect("built in");
        assert_eq!(
            seed.guid.to_string(),
            "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"
        );
        let args = seed.output_args().join(" ");
        for expected in [
            "-c:v libx264",
            "-b:v 800k",
            "pad=720:480",
            "-c:a aac",
            "-movflags +faststart",
        ] {
            assert!(args.contains(expected), "{expected} missing from {args}");
        }
    }
}
