//! `JobEvaluate`: probe each source (through the same path policy as a
//! job's) and describe it in the manual's units; nothing is encoded.

use super::super::{Encoder, EncoderError};
use crate::carbon::message::{
    AudioDescription, EvaluatedSource, Evaluation, JobEvaluate, PublicDescription, Reply,
    TICKS_PER_SECOND, VideoDescription,
};
use crate::media::{AudioStream, MediaInfo, VideoStream};

impl Encoder {
    /// The first source that cannot be read fails the request, naming it.
    pub(super) async fn job_evaluate(&self, request: &JobEvaluate) -> Result<Reply, EncoderError> {
        if request.sources.is_empty() {
            return Err(EncoderError::NothingToEvaluate);
        }
        let mut sources = Vec::with_capacity(request.sources.len());
        for source in &request.sources {
            let file = source.main_file();
            // Resolving stats the file: off the async runtime.
            let (encoder, named) = (self.clone(), file.to_owned());
            let path = crate::fsutil::off_runtime(move || encoder.inner.paths.resolve_file(&named))
                .await
                .map_err(|error| EncoderError::EvaluatePath {
                    file: file.to_owned(),
                    error,
                })?;
            let info = crate::media::probe(path.as_path()).await.map_err(|error| {
                EncoderError::EvaluateProbe {
                    file: file.to_owned(),
                    error,
                }
            })?;
            sources.push(describe(file, &info));
        }
        Ok(Reply::Evaluated(Evaluation {
            sources,
            destinations: request.destinations.clone(),
        }))
    }
}

fn ticks(seconds: f64) -> u64 {
    (seconds * TICKS_PER_SECOND as f64).round() as u64
}

fn describe(file: &str, info: &MediaInfo) -> EvaluatedSource {
    EvaluatedSource {
        filename: file.to_owned(),
        format: info.format_name.clone(),
        description: PublicDescription {
            duration_ticks: info.duration.map(ticks),
            video: info.video.as_ref().map(video),
            audio: info.audio.as_ref().map(audio),
        },
    }
}

fn video(v: &VideoStream) -> VideoDescription {
    let interlacing = match v.field_order.as_deref() {
        Some("tt" | "tb") => "Top First",
        Some("bb" | "bt") => "Bottom First",
        _ => "Progressive",
    };
    VideoDescription {
        width: v.width,
        height: v.height,
        codec: v.codec.clone(),
        interlacing: interlacing.to_owned(),
        aspect: v.display_aspect.or_else(|| {
            // No stated shape: square pixels, the frame's own, reduced.
            let divisor = gcd(v.width, v.height);
            (divisor > 0).then(|| (v.width / divisor, v.height / divisor))
        }),
        // One frame of a constant rate: den/num seconds, in 27 MHz ticks.
        frame_duration_ticks: v
            .constant_rate
            .map(|(num, den)| (den * TICKS_PER_SECOND + num / 2) / num),
    }
}

fn audio(a: &AudioStream) -> AudioDescription {
    AudioDescription {
        sample_rate: a.sample_rate.unwrap_or(0),
        sample_size: a.bits_per_sample.unwrap_or(16),
        channels: a.channels.unwrap_or(0),
        codec: a.codec.clone(),
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_durations_in_27_mhz_ticks() {
        let at = |num, den| {
            video(&VideoStream {
                codec: "h264".into(),
                width: 1920,
                height: 1080,
                frame_rate: None,
                constant_rate: Some((num, den)),
                field_order: None,
                display_aspect: None,
                rotation: 0,
            })
        };
        // The manual's examples.
        assert_eq!(at(25, 1).frame_duration_ticks, Some(1_080_000));
        assert_eq!(at(30000, 1001).frame_duration_ticks, Some(900_900));
        assert_eq!(at(24000, 1001).frame_duration_ticks, Some(1_126_125));
        assert_eq!(at(25, 1).aspect, Some((16, 9)));
        assert_eq!(at(25, 1).interlacing, "Progressive");
        assert_eq!(ticks(60.0), 1_620_000_000);
    }
}
