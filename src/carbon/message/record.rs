//! The job record: the attributes of `JobStatusList/Job_n` and of
//! `JobCommand`'s `JobInfo`, in the manual's order, then videoshare's own.

use super::MessageError;
use crate::carbon::guid::Guid;
use crate::carbon::status::JobStatus;
use crate::carbon::xml::Element;

/// One job as a Carbon server reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEntry {
    pub name: String,
    pub guid: Guid,
    /// The legacy `NEX_JOB_*` word (derived from `status` when written).
    pub state: String,
    pub status: JobStatus,
    /// Integer percent, 0–100.
    pub progress: u32,
    /// The job's `Description` as submitted.
    pub description: String,
    pub user: String,
    /// The source's file name.
    pub source_description: String,
    /// The node that ran the job, or `unassigned`.
    pub agent_ip: String,
    pub priority: u32,
    /// `DeleteProcessedSource.DWD`: the source is deleted on completion.
    pub delete_processed_source: bool,
    /// `MM/DD/YY hh:mm:ss`, server local time.
    pub check_in_time: Option<String>,
    pub start_time: Option<String>,
    pub completed_time: Option<String>,
    /// `YYYY-MM-DD hh:mm:ss`, server local time.
    pub check_in_time_cnlt: Option<String>,
    pub start_time_cnlt: Option<String>,
    pub completed_time_cnlt: Option<String>,
    /// `YYYY-MM-DD hh:mm:ss`, GMT.
    pub check_in_time_scm: Option<String>,
    pub start_time_scm: Option<String>,
    pub completed_time_scm: Option<String>,
    /// `Failures/Errors`: why the job failed.
    pub errors: Vec<String>,
    /// `Failures/Warnings`: what happened to the job short of failing.
    pub warnings: Vec<String>,
    /// videoshare extension: frames per second of the running encode.
    pub fps: Option<f64>,
    /// videoshare extension: media seconds encoded per second ("× realtime").
    pub speed: Option<f64>,
    /// videoshare extension: 1 for the job that starts next, while QUEUED.
    pub queue_position: Option<u32>,
}

impl JobEntry {
    /// What went wrong, in one line: the errors, else the warnings.
    pub fn failure(&self) -> String {
        let list = if self.errors.is_empty() {
            &self.warnings
        } else {
            &self.errors
        };
        list.join("; ")
    }

    /// The record's attributes on an element called `name`, with its
    /// `<Failures>` child.
    pub fn to_element(&self, name: &str) -> Element {
        let times = [
            (
                "CheckInTime",
                &self.check_in_time,
                &self.check_in_time_cnlt,
                &self.check_in_time_scm,
            ),
            (
                "StartTime",
                &self.start_time,
                &self.start_time_cnlt,
                &self.start_time_scm,
            ),
            (
                "CompletedTime",
                &self.completed_time,
                &self.completed_time_cnlt,
                &self.completed_time_scm,
            ),
        ];
        let mut e = Element::new(name)
            .attr("Name", &self.name)
            .attr("GUID", self.guid)
            .attr("State", self.status.nex_state())
            .attr("Status", self.status)
            .attr("Progress.DWD", self.progress)
            .attr("Description", &self.description)
            .attr("User", &self.user)
            .attr("SourceDescription", &self.source_description)
            .attr("AgentIP", &self.agent_ip)
            .attr("Guid", self.guid)
            .attr("Priority.DWD", self.priority)
            .attr(
                "DeleteProcessedSource.DWD",
                u8::from(self.delete_processed_source),
            );
        for (stem, plain, cnlt, scm) in times {
            e = e
                .opt_attr(stem, plain.as_deref())
                .opt_attr(&format!("{stem}_CNLT"), cnlt.as_deref())
                .opt_attr(&format!("{stem}_SCM"), scm.as_deref());
        }
        e.opt_attr("FPS.DBL", self.fps)
            .opt_attr("Speed.DBL", self.speed)
            .opt_attr("QueuePosition.DWD", self.queue_position)
            .child(failures(&self.warnings, &self.errors))
    }

    /// Reads a record from `Job_n`, `JobInfo`, or the older `JobStatus`
    /// element: `Status` (or, from a server that writes only the legacy
    /// word, `State`) and `GUID` are required; the rest default.
    pub fn from_element(e: &Element) -> Result<JobEntry, MessageError> {
        let bad = |what: String| MessageError::Malformed(format!("<{}>: {what}", e.name));
        let guid: Guid = e
            .get_any(&["GUID", "Guid"])
            .ok_or_else(|| bad("no GUID".into()))?
            .parse()
            .map_err(|err: crate::carbon::guid::InvalidGuid| bad(err.to_string()))?;
        let status = match (e.get("Status"), e.get("State")) {
            (Some(s), _) => s
                .parse()
                .map_err(|err: crate::carbon::status::UnknownStatus| bad(err.to_string()))?,
            (None, Some(state)) => JobStatus::from_nex_state(state)
                .ok_or_else(|| bad(format!("unknown State {state:?}")))?,
            (None, None) => return Err(bad("no Status".into())),
        };
        let text = |name: &str| e.get(name).unwrap_or_default().to_owned();
        let opt = |name: &str| e.get(name).map(str::to_owned);
        let number = |name: &str| e.get(name).and_then(|v| v.trim().parse::<u32>().ok());
        let (warnings, mut errors) = read_failures(e);
        // Servers that predate <Failures> wrote the reason as Description.
        let failed = matches!(status, JobStatus::Error | JobStatus::Invalid);
        if failed && errors.is_empty() && e.find("Failures").is_none() {
            errors.extend(
                e.get("Description")
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(JobEntry {
            name: text("Name"),
            guid,
            state: e
                .get("State")
                .map_or_else(|| status.nex_state().to_owned(), str::to_owned),
            status,
            progress: number("Progress.DWD").unwrap_or(0).min(100),
            description: text("Description"),
            user: text("User"),
            source_description: text("SourceDescription"),
            agent_ip: text("AgentIP"),
            priority: number("Priority.DWD").unwrap_or(0),
            delete_processed_source: number("DeleteProcessedSource.DWD") == Some(1),
            check_in_time: opt("CheckInTime"),
            start_time: opt("StartTime"),
            completed_time: opt("CompletedTime"),
            check_in_time_cnlt: opt("CheckInTime_CNLT"),
            start_time_cnlt: opt("StartTime_CNLT"),
            completed_time_cnlt: opt("CompletedTime_CNLT"),
            check_in_time_scm: opt("CheckInTime_SCM"),
            start_time_scm: opt("StartTime_SCM"),
            completed_time_scm: opt("CompletedTime_SCM"),
            errors,
            warnings,
            fps: e.get("FPS.DBL").and_then(|v| v.parse().ok()),
            speed: e.get("Speed.DBL").and_then(|v| v.parse().ok()),
            queue_position: number("QueuePosition.DWD"),
        })
    }
}

/// `<Failures><Warnings><Warning_0 Warning="…"/>…</Warnings><Errors><Error_0
/// Error="…"/>…</Errors></Failures>`: the manual does not describe the
/// items; this is the shape public Carbon clients read (`Error_n@Error`).
fn failures(warnings: &[String], errors: &[String]) -> Element {
    let list = |name: &str, stem: &str, items: &[String]| {
        Element::new(name).numbered_children(
            stem,
            items.iter().map(|text| Element::new(stem).attr(stem, text)),
        )
    };
    Element::new("Failures")
        .child(list("Warnings", "Warning", warnings))
        .child(list("Errors", "Error", errors))
}

/// The texts under `Failures`: each child of `Warnings`/`Errors`, by its
/// `Warning`/`Error` attribute (or `Description`, or its first attribute).
fn read_failures(record: &Element) -> (Vec<String>, Vec<String>) {
    let Some(failures) = record.find("Failures") else {
        return (Vec::new(), Vec::new());
    };
    let texts = |name: &str, own: &str| -> Vec<String> {
        failures
            .find(name)
            .map(|list| {
                list.children
                    .iter()
                    .filter_map(|item| {
                        item.get_any(&[own, "Description"])
                            .or_else(|| item.attrs.first().map(|(_, v)| v.as_str()))
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    (texts("Warnings", "Warning"), texts("Errors", "Error"))
}
