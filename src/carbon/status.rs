//! `JobStatus`: the Carbon job status vocabulary, shared by the encoder (which
//! moves jobs through it) and by clients (which read it off the wire).

use std::fmt;
use std::str::FromStr;

/// A job's status as written in `Status="..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Preparing,
    Starting,
    Started,
    Pausing,
    Paused,
    Resuming,
    Stopping,
    Stopped,
    Completed,
    Error,
    Invalid,
}

impl JobStatus {
    pub const ALL: [JobStatus; 12] = [
        JobStatus::Queued,
        JobStatus::Preparing,
        JobStatus::Starting,
        JobStatus::Started,
        JobStatus::Pausing,
        JobStatus::Paused,
        JobStatus::Resuming,
        JobStatus::Stopping,
        JobStatus::Stopped,
        JobStatus::Completed,
        JobStatus::Error,
        JobStatus::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Preparing => "PREPARING",
            JobStatus::Starting => "STARTING",
            JobStatus::Started => "STARTED",
            JobStatus::Pausing => "PAUSING",
            JobStatus::Paused => "PAUSED",
            JobStatus::Resuming => "RESUMING",
            JobStatus::Stopping => "STOPPING",
            JobStatus::Stopped => "STOPPED",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Error => "ERROR",
            JobStatus::Invalid => "INVALID",
        }
    }

    /// No further change will happen without an operator's command.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Stopped | JobStatus::Completed | JobStatus::Error | JobStatus::Invalid
        )
    }

    /// The legacy `State` word, `NEX_JOB_*`. The manual prints QUEUED's as
    /// `NEX_JOB_QUEUE` (no D) and lists only some: the rest follow the
    /// same pattern.
    pub fn nex_state(self) -> &'static str {
        match self {
            JobStatus::Queued => "NEX_JOB_QUEUE",
            JobStatus::Preparing => "NEX_JOB_PREPARING",
            JobStatus::Starting => "NEX_JOB_STARTING",
            JobStatus::Started => "NEX_JOB_STARTED",
            JobStatus::Pausing => "NEX_JOB_PAUSING",
            JobStatus::Paused => "NEX_JOB_PAUSED",
            JobStatus::Resuming => "NEX_JOB_RESUMING",
            JobStatus::Stopping => "NEX_JOB_STOPPING",
            JobStatus::Stopped => "NEX_JOB_STOPPED",
            JobStatus::Completed => "NEX_JOB_COMPLETED",
            JobStatus::Error => "NEX_JOB_ERROR",
            JobStatus::Invalid => "NEX_JOB_INVALID",
        }
    }

    /// The status a `NEX_JOB_*` word stands for (`NEX_JOB_QUEUED` too).
    pub fn from_nex_state(state: &str) -> Option<JobStatus> {
        let word = state.trim().to_ascii_uppercase();
        let bare = word.strip_prefix("NEX_JOB_")?;
        if bare == "QUEUE" {
            return Some(JobStatus::Queued);
        }
        bare.parse().ok()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0:?} is not a job status; expected one of {list}", list = JobStatus::ALL.map(JobStatus::as_str).join(", "))]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

serde_as_text!(JobStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_status() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().ok(), Some(status));
        }
        assert_eq!(
            "started".parse::<JobStatus>().ok(),
            Some(JobStatus::Started)
        );
        assert!("RUNNING".parse::<JobStatus>().is_err());
    }

    #[test]
    fn legacy_state_words() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::from_nex_state(status.nex_state()), Some(status));
        }
        assert_eq!(
            JobStatus::from_nex_state("NEX_JOB_QUEUED"),
            Some(JobStatus::Queued)
        );
        assert_eq!(JobStatus::from_nex_state("Active"), None);
    }
}
