//! `TaskType="JobCommand"`: query or control one job, and its replies:
//! `<JobInfo>` (the record, its failures, sources and targets) for every
//! command, `<Job>` (the job as submitted) for `Query`.

use super::{JobEntry, JobQueue, MessageError, TaskType};
use crate::carbon::guid::{Guid, InvalidGuid, PresetId};
use crate::carbon::xml::Element;

keyword_enum! {
    /// The `Command` word of a `JobCommand`.
    pub enum CommandKind ("Command") {
        QueryInfo => "QueryInfo",
        Query => "Query",
        Stop => "Stop",
        Pause => "Pause",
        Resume => "Resume",
        SetPriority => "SetPriority",
        Requeue => "Requeue",
        Remove => "Remove",
    }
}

/// Query or control one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCommand {
    pub guid: Guid,
    pub command: Command,
}

/// What a `JobCommand` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The job record with its sources, destinations and outputs.
    QueryInfo,
    /// The whole job as submitted, ready to resubmit.
    Query,
    /// End the job; its partial output is deleted. The job stays, STOPPED.
    Stop,
    /// Suspend a running encode (or hold a queued job).
    Pause,
    /// Continue a paused job.
    Resume,
    /// Move the job in the queue: 0–255, higher runs first.
    SetPriority(u32),
    /// Run a finished, failed or stopped job again.
    Requeue,
    /// Forget the job (stopping it first if it runs).
    Remove,
}

impl Command {
    pub fn kind(self) -> CommandKind {
        match self {
            Command::QueryInfo => CommandKind::QueryInfo,
            Command::Query => CommandKind::Query,
            Command::Stop => CommandKind::Stop,
            Command::Pause => CommandKind::Pause,
            Command::Resume => CommandKind::Resume,
            Command::SetPriority(_) => CommandKind::SetPriority,
            Command::Requeue => CommandKind::Requeue,
            Command::Remove => CommandKind::Remove,
        }
    }
}

impl JobCommand {
    /// Reads `<JobCommand Command GUID Priority.DWD/>` (the manual's form),
    /// else the same attributes on the root (the form older clients send).
    pub(super) fn parse(root: &Element) -> Result<JobCommand, MessageError> {
        const TASK: TaskType = TaskType::JobCommand;
        // The manual's own table misprints the element `JobCommmand`.
        let element = root.find_any(&["JobCommand", "JobCommmand"]);
        let get = |name: &str| element.and_then(|e| e.get(name)).or_else(|| root.get(name));
        let kind: CommandKind = get("Command")
            .ok_or_else(|| {
                MessageError::invalid(
                    TASK,
                    "no Command: send <JobCommand Command=\"…\" GUID=\"{…}\"/>".to_owned(),
                )
            })?
            .parse()
            .map_err(|e| MessageError::invalid(TASK, e))?;
        let text = get("GUID").ok_or_else(|| {
            MessageError::invalid(
                TASK,
                "no GUID: send <JobCommand Command=\"…\" GUID=\"{…}\"/>".to_owned(),
            )
        })?;
        let guid = text
            .parse()
            .map_err(|e: InvalidGuid| MessageError::invalid(TASK, format!("GUID: {e}")))?;
        let command = match kind {
            CommandKind::QueryInfo => Command::QueryInfo,
            CommandKind::Query => Command::Query,
            CommandKind::Stop => Command::Stop,
            CommandKind::Pause => Command::Pause,
            CommandKind::Resume => Command::Resume,
            CommandKind::SetPriority => {
                let priority = get("Priority.DWD").ok_or_else(|| {
                    MessageError::invalid(
                        TASK,
                        "SetPriority needs Priority.DWD=\"0..255\"".to_owned(),
                    )
                })?;
                Command::SetPriority(super::parse_number(TASK, "Priority.DWD", priority)?)
            }
            CommandKind::Requeue => Command::Requeue,
            CommandKind::Remove => Command::Remove,
        };
        Ok(JobCommand { guid, command })
    }

    /// The manual's `<JobCommand>` child; the same attributes go on the
    /// root too, which servers that read them there (videoshare before the
    /// manual's shapes) need and the manual's servers pass over.
    pub(super) fn write(&self, root: Element) -> Element {
        let priority = match self.command {
            Command::SetPriority(p) => Some(p),
            _ => None,
        };
        let with_attrs = |e: Element| {
            e.attr("Command", self.command.kind())
                .attr("GUID", self.guid)
                .opt_attr("Priority.DWD", priority)
        };
        with_attrs(root).child(with_attrs(Element::new("JobCommand")))
    }
}

/// The `JobInfo` every `JobCommand` but `Query` answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub job: JobEntry,
    /// The source files, as the server names them.
    pub sources: Vec<String>,
    pub destinations: Vec<DestinationInfo>,
}

/// One destination of a job: its preset, folder, name and, once written,
/// the files it made.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationInfo {
    pub preset_guid: PresetId,
    pub preset_name: String,
    /// `DestinationName`, as submitted.
    pub name: Option<String>,
    /// The output folder, as the server names it.
    pub path: String,
    pub base_name: String,
    /// The files written (the output, then its copies), once done.
    pub target_files: Vec<String>,
}

impl JobInfo {
    pub(super) fn to_element(&self) -> Element {
        self.job
            .to_element("JobInfo")
            .child(
                Element::new("Sources").numbered_children(
                    "Module",
                    self.sources
                        .iter()
                        .map(|f| Element::new("Module").attr("Filename", f)),
                ),
            )
            .child(Element::new("Destinations").numbered_children(
                "Module",
                self.destinations.iter().map(|d| {
                    let mut module = Element::new("Module")
                        .attr("PresetGUID", d.preset_guid)
                        .attr("PresetName", &d.preset_name)
                        .opt_attr("DestinationName", d.name.as_deref())
                        .child(
                            Element::new("ModuleData")
                                .attr("CML_P_Path", &d.path)
                                .attr("CML_P_BaseFileName", &d.base_name),
                        );
                    if !d.target_files.is_empty() {
                        module =
                            module.child(super::job_queue::target_files_element(&d.target_files));
                    }
                    module
                }),
            ))
    }

    /// Reads `<JobInfo>` with its record as attributes (the manual's shape),
    /// or the older `<JobStatus>` record inside or instead of it.
    pub(super) fn from_reply(reply: &Element) -> Result<JobInfo, MessageError> {
        let info = reply.find("JobInfo");
        let record = match (info, reply.find("JobStatus")) {
            (Some(i), _) if i.get_any(&["GUID", "Guid"]).is_some() => i,
            (Some(i), _) if i.find("JobStatus").is_some() => i.find("JobStatus").unwrap_or(i),
            (_, Some(status)) => status,
            (Some(i), None) => i,
            (None, None) => return Err(MessageError::Malformed("the reply has no JobInfo".into())),
        };
        let job = JobEntry::from_element(record)?;
        let Some(info) = info else {
            return Ok(JobInfo {
                job,
                sources: Vec::new(),
                destinations: Vec::new(),
            });
        };
        let modules = |name: &str| -> Vec<&Element> {
            info.find(name)
                .and_then(|m| m.numbered("Module").ok())
                .unwrap_or_default()
        };
        let sources = modules("Sources")
            .into_iter()
            .filter_map(|m| m.get("Filename").map(str::to_owned))
            .collect();
        let destinations = modules("Destinations")
            .into_iter()
            .filter_map(|m| {
                let data = m.find("ModuleData");
                let data_attr =
                    |n: &str| data.and_then(|d| d.get(n)).unwrap_or_default().to_owned();
                // `File_n` attributes, or `File_n` elements with a `Filename`.
                let mut target_files: Vec<String> = match m.find("TargetFiles") {
                    Some(t) => {
                        let mut files = t.attr_series("File");
                        files.extend(
                            t.numbered("File")
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|f| f.get("Filename").map(str::to_owned)),
                        );
                        files
                    }
                    None => Vec::new(),
                };
                // The older shape: one <Output Filename/>.
                if let Some(output) = m.find("Output").and_then(|o| o.get("Filename")) {
                    target_files.push(output.to_owned());
                }
                Some(DestinationInfo {
                    preset_guid: m.get_any(&["PresetGUID", "ModuleGUID"])?.parse().ok()?,
                    preset_name: m.get("PresetName").unwrap_or_default().to_owned(),
                    name: m.get("DestinationName").map(str::to_owned),
                    path: data_attr("CML_P_Path"),
                    base_name: data_attr("CML_P_BaseFileName"),
                    target_files,
                })
            })
            .collect();
        Ok(JobInfo {
            job,
            sources,
            destinations,
        })
    }
}

/// `Query`'s `<Job>`: the job as submitted.
pub(super) fn job_from_reply(reply: &Element) -> Result<JobQueue, MessageError> {
    let job = reply
        .find("Job")
        .ok_or_else(|| MessageError::Malformed("the reply has no Job".into()))?;
    JobQueue::parse(job)
}
