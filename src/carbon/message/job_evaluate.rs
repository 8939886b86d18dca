//! `TaskType="JobEvaluate"`: probe a job's sources without encoding; the
//! reply describes each in the manual's units (§7).

use super::{Destination, JobQueue, MessageError, Source, TaskType};
use crate::carbon::xml::Element;

/// The sources (and destinations, echoed) of a job to evaluate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobEvaluate {
    pub sources: Vec<Source>,
    pub destinations: Vec<Destination>,
}

impl JobEvaluate {
    /// Reads the request as a JobQueue's `<Sources>`/`<Destinations>`.
    pub(super) fn parse(root: &Element) -> Result<JobEvaluate, MessageError> {
        let job = JobQueue::parse(root).map_err(|e| match e {
            MessageError::Invalid { reason, .. } => {
                MessageError::invalid(TaskType::JobEvaluate, reason)
            }
            other => other,
        })?;
        Ok(JobEvaluate {
            sources: job.sources,
            destinations: job.destinations,
        })
    }

    pub(super) fn write(&self, root: Element) -> Element {
        let job = JobQueue {
            sources: self.sources.clone(),
            destinations: self.destinations.clone(),
            ..JobQueue::default()
        };
        let written = job.to_element("cnpsXML");
        let mut root = root;
        root.children = written.children;
        root
    }
}

/// What one source holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvaluatedSource {
    /// The file as the client named it.
    pub filename: String,
    /// videoshare extension: the container format(s) ffprobe recognised.
    pub format: String,
    pub description: PublicDescription,
}

/// `<PublicDescription>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublicDescription {
    /// `Duration.QWD`: 27 MHz ticks, when known.
    pub duration_ticks: Option<u64>,
    pub video: Option<VideoDescription>,
    pub audio: Option<AudioDescription>,
}

/// `<Video>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoDescription {
    pub width: u32,
    pub height: u32,
    pub codec: String,
    /// `Progressive`, `Top First` or `Bottom First`.
    pub interlacing: String,
    /// `Video_Aspect_X.DWD` / `Video_Aspect_Y.DWD`: the picture's shape.
    pub aspect: Option<(u32, u32)>,
    /// `FrameDuration.QWD`: one frame in 27 MHz ticks, for a constant rate.
    pub frame_duration_ticks: Option<u64>,
}

/// `<Audio>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioDescription {
    pub sample_rate: u32,
    /// Bits per sample.
    pub sample_size: u32,
    pub channels: u32,
    pub codec: String,
}

impl VideoDescription {
    /// Frames per second, from the frame duration.
    pub fn frame_rate(&self) -> Option<f64> {
        self.frame_duration_ticks
            .filter(|t| *t > 0)
            .map(|t| 27_000_000.0 / t as f64)
    }
}

/// `JobEvaluateResult`: each source described, each destination echoed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub sources: Vec<EvaluatedSource>,
    pub destinations: Vec<Destination>,
}

impl Evaluation {
    pub(super) fn to_element(&self) -> Element {
        let sources = self.sources.iter().map(|s| {
            let d = &s.description;
            let mut public =
                Element::new("PublicDescription").opt_attr("Duration.QWD", d.duration_ticks);
            if let Some(v) = &d.video {
                public = public.child(
                    Element::new("Video")
                        .attr("Size_X.DWD", v.width)
                        .attr("Size_Y.DWD", v.height)
                        .attr("Codec", &v.codec)
                        .attr("Interlacing", &v.interlacing)
                        .opt_attr("Video_Aspect_X.DWD", v.aspect.map(|a| a.0))
                        .opt_attr("Video_Aspect_Y.DWD", v.aspect.map(|a| a.1))
                        .opt_attr("FrameDuration.QWD", v.frame_duration_ticks),
                );
            }
            if let Some(a) = &d.audio {
                public = public.child(
                    Element::new("Audio")
                        .attr("SampleRate.DWD", a.sample_rate)
                        .attr("SampleSize.DWD", a.sample_size)
                        .attr("Channels.DWD", a.channels)
                        .attr("Codec", &a.codec),
                );
            }
            Element::new("Module")
                .attr("Filename", &s.filename)
                .attr("Format", &s.format)
                .child(Element::new("ModuleData"))
                .child(public)
        });
        let echoed = JobQueue {
            destinations: self.destinations.clone(),
            ..JobQueue::default()
        }
        .to_element("x");
        let destinations = echoed
            .find("Destinations")
            .cloned()
            .unwrap_or_else(|| Element::new("Destinations"));
        Element::new("JobEvaluateResult")
            .child(Element::new("Sources").numbered_children("Module", sources))
            .child(destinations)
    }

    pub(super) fn from_reply(reply: &Element) -> Result<Evaluation, MessageError> {
        let result = reply
            .find("JobEvaluateResult")
            .ok_or_else(|| MessageError::Malformed("the reply has no JobEvaluateResult".into()))?;
        let modules = result
            .find("Sources")
            .map(|s| s.numbered("Module"))
            .transpose()
            .map_err(|e| MessageError::Malformed(e.to_string()))?
            .unwrap_or_default();
        let int = |e: &Element, n: &str| e.get(n).and_then(|v| v.trim().parse::<u64>().ok());
        let sources = modules
            .into_iter()
            .map(|m| {
                let public = m.find("PublicDescription");
                let video = public
                    .and_then(|p| p.find("Video"))
                    .map(|v| VideoDescription {
                        width: int(v, "Size_X.DWD").unwrap_or(0) as u32,
                        height: int(v, "Size_Y.DWD").unwrap_or(0) as u32,
                        codec: v.get("Codec").unwrap_or_default().to_owned(),
                        interlacing: v.get("Interlacing").unwrap_or_default().to_owned(),
                        aspect: int(v, "Video_Aspect_X.DWD")
                            .zip(int(v, "Video_Aspect_Y.DWD"))
                            .map(|(x, y)| (x as u32, y as u32)),
                        frame_duration_ticks: int(v, "FrameDuration.QWD"),
                    });
                let audio = public
                    .and_then(|p| p.find("Audio"))
                    .map(|a| AudioDescription {
                        sample_rate: int(a, "SampleRate.DWD").unwrap_or(0) as u32,
                        sample_size: int(a, "SampleSize.DWD").unwrap_or(0) as u32,
                        channels: int(a, "Channels.DWD").unwrap_or(0) as u32,
                        codec: a.get("Codec").unwrap_or_default().to_owned(),
                    });
                EvaluatedSource {
                    filename: m.get("Filename").unwrap_or_default().to_owned(),
                    format: m.get("Format").unwrap_or_default().to_owned(),
                    description: PublicDescription {
                        duration_ticks: public.and_then(|p| int(p, "Duration.QWD")),
                        video,
                        audio,
                    },
                }
            })
            .collect();
        Ok(Evaluation {
            sources,
            destinations: Vec::new(),
        })
    }
}
