//! What a preset means as ffmpeg output options (the rest of the command
//! line is built by [`crate::media::ffmpeg_args`]).

use super::{AudioSpec, Preset, VideoSpec};

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
            None => args.extend(sound_map(audio_input.unwrap_or(0))),
        }
        match (&self.audio, sound.or(self.video.is_none().then_some(0))) {
            (Some(a), Some(_)) => args.extend(audio_args(a)),
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

    /// The picture alone, encoded as [`Preset::output_args`] encodes it,
    /// without sound or container options (a chunk's piece); `None` for an
    /// audio-only preset.
    pub fn video_only_args(&self) -> Option<Vec<String>> {
        let video = self.video.as_ref()?;
        let mut args: Vec<String> = vec!["-map".into(), "0:v:0".into()];
        args.extend(video_args(video));
        args.push("-an".into());
        Some(args)
    }

    /// The sound alone, input `audio_input`'s, encoded as
    /// [`Preset::output_args`] encodes it, without container options (the
    /// sound of a chunked job); `None` for a preset without sound.
    pub fn sound_only_args(&self, audio_input: usize) -> Option<Vec<String>> {
        let audio = self.audio.as_ref()?;
        let mut args = sound_map(audio_input).to_vec();
        args.extend(audio_args(audio));
        Some(args)
    }

    /// Whether the source must have a picture.
    pub fn needs_video(&self) -> bool {
        self.video.is_some()
    }
}

/// The sound of input `input`, and no picture.
fn sound_map(input: usize) -> [String; 3] {
    ["-map".into(), format!("{input}:a:0"), "-vn".into()]
}

/// The encode options of an audio track (stereo), for files and ladders.
pub(super) fn audio_args(a: &AudioSpec) -> [String; 6] {
    [
        "-c:a".into(),
        a.codec.clone(),
        "-b:a".into(),
        format!("{}k", a.bitrate_kbps),
        "-ac".into(),
        "2".into(),
    ]
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
