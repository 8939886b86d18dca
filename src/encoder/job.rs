//! The job state machine and the job's Carbon view: which status may follow
//! which, how a stored job reads as a `Job_N` entry, and how `JobStatusList`
//! criteria match it.

use chrono::{Local, NaiveDateTime, TimeZone, Utc};

use crate::carbon::message::{Criterion, Operator};
use crate::carbon::{JobEntry, JobStatus};
use crate::store::Job;

/// The statuses a job may move to `to` from: the whole state machine in one
/// place. Every status write passes through it.
///
/// A job is worked on in STARTING (probing) and STARTED (ffmpeg running); a
/// PAUSED job is either a running encode whose ffmpeg is suspended (it has a
/// start time) or a queued job held back from the scheduler (it has none).
pub fn allowed_from(to: JobStatus) -> &'static [JobStatus] {
    use JobStatus::*;
    match to {
        // Interrupted by a shutdown, a held job resumed, or requeued.
        Queued => &[
            Starting, Started, Paused, Stopped, Error, Completed, Invalid,
        ],
        Starting => &[Queued],
        // Probed and encoding, or a suspended encode resumed.
        Started => &[Starting, Paused],
        Paused => &[Queued, Starting, Started],
        // A running encode asked to stop; it is STOPPED once ffmpeg is gone.
        Stopping => &[Starting, Started, Paused],
        // Straight to STOPPED when no worker holds the job on this node.
        Stopped => &[Queued, Starting, Started, Paused, Stopping],
        // An encode that finished while being paused or stopped still counts.
        Completed => &[Started, Paused, Stopping],
        // Not from STOPPING: a job asked to stop ends STOPPED.
        Error => &[Starting, Started, Paused],
        // Never entered: Carbon's transient statuses a socket client may
        // filter on but this encoder does not use.
        Preparing | Pausing | Resuming | Invalid => &[],
    }
}

/// Statuses a job may be requeued from (`JobCommand Requeue`): the
/// finished ones among `allowed_from(Queued)`.
pub const REQUEUEABLE: [JobStatus; 4] = [
    JobStatus::Stopped,
    JobStatus::Error,
    JobStatus::Completed,
    JobStatus::Invalid,
];

fn local_time(ms: i64) -> Option<NaiveDateTime> {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.naive_local())
}

fn utc_time(ms: i64) -> Option<NaiveDateTime> {
    Utc.timestamp_millis_opt(ms).single().map(|t| t.naive_utc())
}

/// A time in Carbon's three forms: `MM/DD/YY hh:mm:ss` and
/// `YYYY-MM-DD hh:mm:ss` (`_CNLT`) in local time, `_SCM` in GMT.
struct CarbonTime {
    plain: Option<String>,
    cnlt: Option<String>,
    scm: Option<String>,
}

fn carbon_time(ms: Option<i64>) -> CarbonTime {
    let long = "%Y-%m-%d %H:%M:%S";
    let local = ms.and_then(local_time);
    CarbonTime {
        plain: local.map(|t| t.format("%m/%d/%y %H:%M:%S").to_string()),
        cnlt: local.map(|t| t.format(long).to_string()),
        scm: ms.and_then(utc_time).map(|t| t.format(long).to_string()),
    }
}

/// What the manual's `AgentIP` says of a job no node has taken yet.
pub const UNASSIGNED: &str = "unassigned";

/// The job as a `Job_N` entry (and `JobInfo` record).
pub fn entry(job: &Job, agent_ip: &str) -> JobEntry {
    let check_in = carbon_time(Some(job.check_in_time));
    let start = carbon_time(job.start_time);
    let completed = carbon_time(job.completed_time);
    // Why a job failed is an error; why it stopped, a warning.
    let failure = (!job.failure.is_empty()).then(|| job.failure.clone());
    let mut warnings = job.notes.clone();
    let errors = match job.status {
        JobStatus::Error | JobStatus::Invalid => failure.into_iter().collect(),
        _ => {
            warnings.extend(failure);
            Vec::new()
        }
    };
    JobEntry {
        name: job.name.clone(),
        guid: job.guid,
        state: job.status.nex_state().to_owned(),
        status: job.status,
        progress: job.progress,
        description: job.description.clone(),
        user: job.user.clone(),
        source_description: job
            .source_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        // A node took the job when it was claimed (its start time).
        agent_ip: if job.start_time.is_some() {
            agent_ip.to_owned()
        } else {
            UNASSIGNED.to_owned()
        },
        priority: job.priority,
        delete_processed_source: false,
        check_in_time: check_in.plain,
        start_time: start.plain,
        completed_time: completed.plain,
        check_in_time_cnlt: check_in.cnlt,
        start_time_cnlt: start.cnlt,
        completed_time_cnlt: completed.cnlt,
        check_in_time_scm: check_in.scm,
        start_time_scm: start.scm,
        completed_time_scm: completed.scm,
        errors,
        warnings,
        fps: None,
        speed: None,
        queue_position: None,
    }
}

/// A job field as a filter sees it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Field {
    Text(String),
    Number(i64),
    Time(Option<NaiveDateTime>),
}

/// The filterable job fields (case-insensitive; `.DWD` optional; times
/// also with `_CNLT` (local) or `_SCM` (GMT); `JobName` is `Name`, as in
/// the manual's example).
pub const FIELDS: [&str; 14] = [
    "Name",
    "GUID",
    "State",
    "Status",
    "Progress",
    "Description",
    "User",
    "SourceDescription",
    "AgentIP",
    "Priority",
    "DeleteProcessedSource",
    "CheckInTime",
    "StartTime",
    "CompletedTime",
];

/// Why a filter cannot be evaluated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FilterError {
    #[error("unknown job field {0:?}; known fields: {fields}", fields = FIELDS.join(", "))]
    UnknownField(String),
    #[error("{value:?} is not a valid value for {field} with {operator}")]
    BadValue {
        field: String,
        operator: &'static str,
        value: String,
    },
}

/// A parameter's field, and whether it asks for GMT (`_SCM`).
fn field_name(parameter: &str) -> Option<(&'static str, bool)> {
    let bare = parameter.trim();
    let lower = bare.to_ascii_lowercase();
    let (bare, gmt) = if lower.ends_with("_scm") {
        (&bare[..bare.len() - 4], true)
    } else if lower.ends_with("_cnlt") || lower.ends_with(".dwd") {
        (
            &bare[..bare.len() - if lower.ends_with("_cnlt") { 5 } else { 4 }],
            false,
        )
    } else {
        (bare, false)
    };
    let bare = if bare.eq_ignore_ascii_case("JobName") {
        "Name"
    } else {
        bare
    };
    FIELDS
        .into_iter()
        .find(|f| f.eq_ignore_ascii_case(bare))
        .map(|f| (f, gmt))
}

fn field(job: &Job, entry: &JobEntry, name: &str, gmt: bool) -> Field {
    let time = |ms: Option<i64>| Field::Time(ms.and_then(if gmt { utc_time } else { local_time }));
    match name {
        "Name" => Field::Text(entry.name.clone()),
        "GUID" => Field::Text(entry.guid.to_string()),
        "State" => Field::Text(entry.state.clone()),
        "Status" => Field::Text(entry.status.as_str().to_owned()),
        "Progress" => Field::Number(i64::from(entry.progress)),
        "Description" => Field::Text(entry.description.clone()),
        "User" => Field::Text(entry.user.clone()),
        "SourceDescription" => Field::Text(entry.source_description.clone()),
        "AgentIP" => Field::Text(entry.agent_ip.clone()),
        "Priority" => Field::Number(i64::from(entry.priority)),
        "DeleteProcessedSource" => Field::Number(i64::from(entry.delete_processed_source)),
        "CheckInTime" => time(Some(job.check_in_time)),
        "StartTime" => time(job.start_time),
        _ => time(job.completed_time),
    }
}

/// Checks a parameter names a job field.
pub fn check_field(parameter: &str) -> Result<(), FilterError> {
    field_name(parameter)
        .map(|_| ())
        .ok_or_else(|| FilterError::UnknownField(parameter.to_owned()))
}

/// Checks every criterion names a known field (so a typo is an error rather
/// than an empty list).
pub fn validate(criteria: &[Criterion]) -> Result<(), FilterError> {
    criteria.iter().try_for_each(|c| check_field(&c.parameter))
}

/// Orders two jobs by a field (`ListSettings OrderBy`), ascending; text
/// without regard to case, an unset time first.
pub fn compare_by(
    parameter: &str,
    a: (&Job, &JobEntry),
    b: (&Job, &JobEntry),
) -> std::cmp::Ordering {
    let Some((name, gmt)) = field_name(parameter) else {
        return std::cmp::Ordering::Equal;
    };
    let key = |(job, entry): (&Job, &JobEntry)| match field(job, entry, name, gmt) {
        Field::Text(t) => Field::Text(t.to_lowercase()),
        other => other,
    };
    key(a)
        .partial_cmp(&key(b))
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// The GUID of a `GUID EQUAL` criterion, if there is one: such a filter is
/// answered with one indexed lookup. A value that is not a GUID is an error.
pub fn guid_criterion(criteria: &[Criterion]) -> Result<Option<crate::carbon::Guid>, FilterError> {
    let Some(c) = criteria.iter().find(|c| {
        c.operator == Operator::Equal && field_name(&c.parameter).map(|f| f.0) == Some("GUID")
    }) else {
        return Ok(None);
    };
    c.value
        .parse()
        .map(Some)
        .map_err(|_| FilterError::BadValue {
            field: "GUID".to_owned(),
            operator: Operator::Equal.as_str(),
            value: c.value.clone(),
        })
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    ["%Y-%m-%d %H:%M:%S", "%m/%d/%y %H:%M:%S", "%Y-%m-%d"]
        .into_iter()
        .find_map(|fmt| {
            NaiveDateTime::parse_from_str(text, fmt).ok().or_else(|| {
                chrono::NaiveDate::parse_from_str(text, fmt)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })
}

/// Whether `job` satisfies `criterion` (criteria of a list are AND-ed).
pub fn matches(job: &Job, entry: &JobEntry, criterion: &Criterion) -> Result<bool, FilterError> {
    let (name, gmt) = field_name(&criterion.parameter)
        .ok_or_else(|| FilterError::UnknownField(criterion.parameter.clone()))?;
    let value = criterion.value.as_str();
    let bad = || FilterError::BadValue {
        field: name.to_owned(),
        operator: criterion.operator.as_str(),
        value: value.to_owned(),
    };
    let actual = field(job, entry, name, gmt);
    Ok(match (criterion.operator, actual) {
        (Operator::Like, Field::Text(t)) => like(&t, value),
        (Operator::Like, Field::Number(n)) => like(&n.to_string(), value),
        (Operator::Like, Field::Time(_)) => return Err(bad()),
        (Operator::Equal, Field::Text(_)) if name == "GUID" => {
            match value.parse::<crate::carbon::Guid>() {
                Ok(g) => g == entry.guid,
                Err(_) => return Err(bad()),
            }
        }
        // A State filter may say NEX_JOB_QUEUED for the manual's NEX_JOB_QUEUE.
        (Operator::Equal, Field::Text(_)) if name == "State" => {
            JobStatus::from_nex_state(value) == Some(entry.status)
        }
        (Operator::Equal, Field::Text(t)) => t.eq_ignore_ascii_case(value.trim()),
        (op, Field::Number(n)) => {
            let v: i64 = value.trim().parse().map_err(|_| bad())?;
            compare(op, n.cmp(&v))
        }
        (op, Field::Time(t)) => {
            let v = parse_time(value).ok_or_else(bad)?;
            match t {
                Some(t) => compare(op, t.cmp(&v)),
                None => false,
            }
        }
        (op, Field::Text(t)) => compare(op, t.to_lowercase().cmp(&value.to_lowercase())),
    })
}

fn compare(op: Operator, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Operator::Equal => ordering == Equal,
        Operator::LessThan => ordering == Less,
        Operator::GreaterThan => ordering == Greater,
        Operator::Like => false,
    }
}

/// SQL `LIKE`: `%` any run, `_` any one character; case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn job() -> Job {
        Job {
            seq: 1,
            guid: "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
                .parse()
                .expect("guid"),
            name: "Holiday.mp4".into(),
            user: "ann".into(),
            status: JobStatus::Started,
            progress: 42,
            description: String::new(),
            failure: String::new(),
            notes: Vec::new(),
            priority: 100,
            source_path: PathBuf::from("/data/uploaded/Holiday.mp4"),
            audio: crate::store::jobs::AudioSource::Same,
            trim: None,
            source_copies: Vec::new(),
            check_in_time: 1_764_000_000_000,
            start_time: Some(1_764_000_001_000),
            completed_time: None,
            node: None,
            attempts: 1,
            held: true,
        }
    }

    fn check(parameter: &str, operator: Operator, value: &str) -> Result<bool, FilterError> {
        let job = job();
        let entry = entry(&job, "127.0.0.1");
        matches(
            &job,
            &entry,
            &Criterion {
                parameter: parameter.into(),
                operator,
                value: value.into(),
            },
        )
    }

    #[test]
    fn state_machine_guards_the_working_statuses() {
        use JobStatus::*;
        assert_eq!(allowed_from(Started), &[Starting, Paused]);
        assert!(allowed_from(Completed).contains(&Started));
        assert!(
            !allowed_from(Completed).contains(&Queued),
            "never unencoded"
        );
        assert!(
            allowed_from(Paused).contains(&Starting),
            "paused while probing: ffmpeg starts suspended"
        );
        assert!(
            !allowed_from(Error).contains(&Stopping),
            "a job asked to stop ends STOPPED, whatever else fails"
        );
        for terminal in [Completed, Error, Stopped, Invalid] {
            assert!(REQUEUEABLE.contains(&terminal) && allowed_from(Queued).contains(&terminal));
            for to in JobStatus::ALL {
                if to != Queued {
                    assert!(!allowed_from(to).contains(&terminal), "{terminal} -> {to}");
                }
            }
        }
    }

    #[test]
    fn filters_by_guid_in_any_case() {
        assert_eq!(
            check(
                "Guid",
                Operator::Equal,
                "{0f3c5e0a-2b7d-4c1e-9a57-3d2b8e6f1c40}"
            )
            .ok(),
            Some(true)
        );
        assert_eq!(
            check(
                "GUID",
                Operator::Equal,
                "{00000000-2B7D-4C1E-9A57-3D2B8E6F1C40}"
            )
            .ok(),
            Some(false)
        );
        assert!(matches!(
            check("guid", Operator::Equal, "nope"),
            Err(FilterError::BadValue { .. })
        ));
    }

    #[test]
    fn every_operator() {
        assert_eq!(check("Name", Operator::Like, "hol%.MP_").ok(), Some(true));
        assert_eq!(check("Name", Operator::Like, "%x%").ok(), Some(false));
        assert_eq!(
            check("Progress.DWD", Operator::GreaterThan, "41").ok(),
            Some(true)
        );
        assert_eq!(
            check("progress", Operator::LessThan, "42").ok(),
            Some(false)
        );
        assert_eq!(check("Status", Operator::Equal, "started").ok(), Some(true));
        assert_eq!(
            check("CheckInTime", Operator::GreaterThan, "2020-01-01 00:00:00").ok(),
            Some(true)
        );
        assert_eq!(
            check("CompletedTime", Operator::LessThan, "2099-01-01").ok(),
            Some(false)
        );
        assert_eq!(
            check("JobName", Operator::Equal, "holiday.MP4").ok(),
            Some(true)
        );
        assert_eq!(
            check("State", Operator::Equal, "NEX_JOB_STARTED").ok(),
            Some(true)
        );
        assert_eq!(
            check(
                "CheckInTime_SCM",
                Operator::GreaterThan,
                "2020-01-01 00:00:00"
            )
            .ok(),
            Some(true)
        );
        assert!(matches!(
            check("Colour", Operator::Equal, "red"),
            Err(FilterError::UnknownField(_))
        ));
        assert!(matches!(
            check("Priority", Operator::LessThan, "high"),
            Err(FilterError::BadValue { .. })
        ));
    }

    #[test]
    fn like_wildcards() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(like("abc", "a_c"));
        assert!(like("a", "%%a%"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
        assert!(like("a%x", "a%"), "a % in the text is not a wildcard");
    }
}
