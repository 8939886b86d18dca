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

    /// The coarse lifecycle word written as `State`: `Waiting`, `Active` or `Done`.
    pub fn state(self) -> &'static str {
        match self {
            JobStatus::Queued => "Waiting",
            s if s.is_terminal() => "Done",
            _ => "Active",
        }
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
}
