//! How a job looks to a browser: its status, percent and the label under the
//! progress bar (the seed page's wording).

use serde::Serialize;

use crate::carbon::{Guid, JobStatus};
use crate::store::Upload;

/// One job as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub guid: Guid,
    /// The name the user uploaded.
    pub file: String,
    pub status: JobStatus,
    pub progress: u32,
    pub label: String,
    /// True once nothing more will happen to the job.
    pub done: bool,
}

impl From<&Upload> for JobView {
    fn from(upload: &Upload) -> Self {
        JobView {
            guid: upload.guid,
            file: upload.original_name.clone(),
            status: upload.status,
            progress: upload.progress,
            label: label(upload.status, upload.progress, &upload.description),
            done: upload.status.is_terminal(),
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
}
