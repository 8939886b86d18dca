//! How a job looks to a browser: its status, percent, the label under the
//! progress bar (the seed page's wording), the live facts of the encode
//! (speed, ETA, place in the queue) and the controls that apply to it.

use std::time::Instant;

use serde::Serialize;

use crate::carbon::message::Command;
use crate::carbon::{Guid, JobEntry, JobStatus};
use crate::owner::Owner;
use crate::store::Upload;

/// One job as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub guid: Guid,
    /// The name the user uploaded.
    pub file: String,
    /// The preset's name ('' when unknown).
    pub preset: String,
    pub status: JobStatus,
    pub progress: u32,
    pub label: String,
    /// True once nothing more will happen to the job unless it is retried.
    pub done: bool,
    /// Unix milliseconds of the upload.
    pub created_at: i64,
    #[serde(flatten)]
    pub live: Live,
    /// The controls that apply in this status.
    pub actions: Vec<Action>,
    /// The videos the job wrote (names in the library: a file, or a
    /// ladder's folder), once COMPLETED.
    pub outputs: Vec<String>,
    /// Whose job this is; never sent to a browser.
    #[serde(skip)]
    pub owner: Option<Owner>,
}

/// What is known only while a job is active, from the encoder's reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Live {
    /// Frames encoded per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Media seconds encoded per second ("× realtime").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Seconds until the encode should finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
    /// 1 for the job that starts next, while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// The library item (an HLS ladder's folder) that can be watched
    /// while the job still encodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

/// A control on the page, and the Carbon command it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Resume,
    Stop,
    Retry,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "stop" => Action::Stop,
            "retry" => Action::Retry,
            _ => return None,
        })
    }

    pub fn command(self) -> Command {
        match self {
            Action::Pause => Command::Pause,
            Action::Resume => Command::Resume,
            Action::Stop => Command::Stop,
            Action::Retry => Command::Requeue,
        }
    }

    /// The controls a job in `status` offers.
    pub fn available(status: JobStatus) -> Vec<Action> {
        use JobStatus::*;
        match status {
            Queued | Starting | Preparing | Started | Resuming => vec![Action::Pause, Action::Stop],
            Paused | Pausing => vec![Action::Resume, Action::Stop],
            Stopping | Completed => Vec::new(),
            Error | Invalid | Stopped => vec![Action::Retry],
        }
    }
}

impl JobView {
    pub fn new(upload: &Upload, live: Live, outputs: Vec<String>) -> JobView {
        JobView {
            guid: upload.guid,
            file: upload.original_name.clone(),
            preset: upload.preset_name.clone(),
            status: upload.status,
            progress: upload.progress,
            label: label(upload.status, upload.progress, &upload.description),
            done: upload.status.is_terminal(),
            created_at: upload.created_at,
            // A finished job has no live facts, whatever was last shown
            // while it ran (a page may read the row before the poller
            // has published the end).
            live: if upload.status.is_terminal() {
                Live::default()
            } else {
                live
            },
            actions: Action::available(upload.status),
            outputs: outputs
                .iter()
                .map(|o| super::library::ladder::item_name(o).to_owned())
                .collect(),
            owner: upload.owner.clone(),
        }
    }
}

impl From<&Upload> for JobView {
    fn from(upload: &Upload) -> Self {
        JobView::new(upload, Live::default(), Vec::new())
    }
}

/// Follows one active job's progress to estimate when it ends.
#[derive(Debug, Clone, Copy)]
pub struct EtaClock {
    status: JobStatus,
    /// When the percent was first seen at `from`.
    since: Instant,
    from: u32,
}

impl EtaClock {
    pub fn start(status: JobStatus, progress: u32, now: Instant) -> Self {
        EtaClock {
            status,
            since: now,
            from: progress,
        }
    }

    /// The live facts for the encoder's latest report. The ETA is the
    /// average pace since the encode (re)started, projected over what is
    /// left: it needs nothing but the percent, so it works with any Carbon
    /// server. A change of status (a pause) starts the clock again.
    pub fn observe(&mut self, entry: &JobEntry, progress: u32, now: Instant) -> Live {
        if entry.status != self.status || progress < self.from {
            *self = EtaClock::start(entry.status, progress, now);
        }
        let encoding = matches!(entry.status, JobStatus::Started | JobStatus::Resuming);
        let gained = progress.saturating_sub(self.from);
        let eta_secs = (encoding && gained > 0).then(|| {
            let per_percent = now.duration_since(self.since).as_secs_f64() / f64::from(gained);
            (per_percent * f64::from(100 - progress.min(100))).round() as u64
        });
        Live {
            fps: entry.fps.filter(|_| encoding),
            speed: entry.speed.filter(|_| encoding),
            eta_secs,
            queue_position: entry
                .queue_position
                .filter(|_| entry.status == JobStatus::Queued),
            watch: None,
        }
    }
}

/// The text under the bar for a status and percent.
pub fn label(status: JobStatus, progress: u32, description: &str) -> String {
    use JobStatus::*;
    match status {
        Completed => "Encoding complete".to_owned(),
        Error | Invalid if description.is_empty() => "Encoding failed".to_owned(),
        Error | Invalid => format!("Encoding failed: {description}"),
        Stopped => "Encoding stopped".to_owned(),
        Paused | Pausing => format!("Paused at {progress}%"),
        Started | Resuming if progress > 0 => format!("Encoding .. {progress}% completed"),
        Starting | Started | Preparing | Resuming => "Preparing encoding..".to_owned(),
        Queued | Stopping => "Waiting in encoding queue".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_seed_page() {
        assert_eq!(label(JobStatus::Queued, 0, ""), "Waiting in encoding queue");
        assert_eq!(label(JobStatus::Starting, 0, ""), "Preparing encoding..");
        assert_eq!(label(JobStatus::Started, 0, ""), "Preparing encoding..");
        assert_eq!(
            label(JobStatus::Started, 42, ""),
            "Encoding .. 42% completed"
        );
        assert_eq!(label(JobStatus::Completed, 100, ""), "Encoding complete");
        assert_eq!(
            label(JobStatus::Error, 10, "ffmpeg failed"),
            "Encoding failed: ffmpeg failed"
        );
    }

    fn entry(status: JobStatus, progress: u32) -> JobEntry {
        let xml = format!(
            r#"<Job_0 GUID="{{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}}" Status="{status}" Progress.DWD="{progress}" FPS.DBL="50" Speed.DBL="2" QueuePosition.DWD="3"/>"#,
            status = status.as_str()
        );
        let element = crate::carbon::xml::Element::parse(&xml).expect("xml");
        JobEntry::from_element(&element).expect("entry")
    }

    #[test]
    fn the_eta_projects_the_pace_and_restarts_after_a_pause() {
        let t0 = Instant::now();
        let secs = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut clock = EtaClock::start(JobStatus::Queued, 0, t0);
        let waiting = clock.observe(&entry(JobStatus::Queued, 0), 0, t0);
        assert_eq!(waiting.queue_position, Some(3));
        assert_eq!((waiting.fps, waiting.eta_secs), (None, None));

        clock.observe(&entry(JobStatus::Started, 0), 0, secs(1));
        let going = clock.observe(&entry(JobStatus::Started, 20), 20, secs(11));
        // 20 % in 10 s: 80 % more takes 40 s.
        assert_eq!(going.eta_secs, Some(40));
        assert_eq!((going.fps, going.speed), (Some(50.0), Some(2.0)));
        assert_eq!(going.queue_position, None);

        let paused = clock.observe(&entry(JobStatus::Paused, 20), 20, secs(100));
        assert_eq!((paused.fps, paused.eta_secs), (None, None));
        // The pause is not counted: the pace is measured again from here.
        clock.observe(&entry(JobStatus::Started, 20), 20, secs(200));
        let again = clock.observe(&entry(JobStatus::Started, 60), 60, secs(204));
        assert_eq!(again.eta_secs, Some(4));
    }

    #[test]
    fn controls_follow_the_status() {
        assert_eq!(
            Action::available(JobStatus::Started),
            [Action::Pause, Action::Stop]
        );
        assert_eq!(
            Action::available(JobStatus::Paused),
            [Action::Resume, Action::Stop]
        );
        assert_eq!(Action::available(JobStatus::Error), [Action::Retry]);
        assert!(Action::available(JobStatus::Completed).is_empty());
        assert_eq!(Action::parse("retry"), Some(Action::Retry));
        assert_eq!(Action::parse("Remove"), None);
    }
}
