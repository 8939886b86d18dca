//! Requests: one type per `TaskType`, parsed from and written to XML.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{MessageError, ReplyKind, check_document, criteria, modules};
use crate::carbon::guid::{Guid, InvalidGuid};
use crate::carbon::latin1;

keyword_enum! {
    /// The `TaskType` of a request.
    pub enum TaskType ("TaskType") {
        JobQueue => "JobQueue",
        JobStatusList => "JobStatusList",
        JobList => "JobList",
        JobCommand => "JobCommand",
        JobEvaluate => "JobEvaluate",
        ProfileList => "ProfileList",
        Version => "Version",
        NodeCommand => "NodeCommand",
    }
}

/// A request a Carbon server understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    JobQueue(JobQueue),
    JobStatusList(JobStatusList),
    /// The GUIDs of every job.
    JobList,
    JobCommand(JobCommand),
    JobEvaluate(JobEvaluate),
    ProfileList(ProfileList),
    /// The server's identity.
    Version,
    NodeCommand(NodeCommand),
}

/// `TaskType="JobQueue"`: enqueue one job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobQueue {
    pub job_name: Option<String>,
    pub user: Option<String>,
    pub sources: Vec<Source>,
    pub destinations: Vec<Destination>,
    /// `ProjectSettings Priority.DWD`, 0–255 (default 100 when absent).
    pub priority: Option<u32>,
}

impl JobQueue {
    /// A job in the seed's shape: one source, encoded with `preset` into
    /// `dest_dir` under the source's base name (`CML_P_BaseFileName="%s"`).
    /// The preset is named as both `PresetGUID` and `ModuleGUID`, as the seed does.
    pub fn single(source: &str, preset: Guid, dest_dir: &str) -> Self {
        let preset = preset.to_string();
        JobQueue {
            sources: vec![Source {
                filename: source.to_owned(),
            }],
            destinations: vec![Destination {
                preset_guid: Some(preset.clone()),
                module_guid: Some(preset),
                module_data: ModuleData {
                    path: Some(dest_dir.to_owned()),
                    base_file_name: Some("%s".to_owned()),
                },
            }],
            ..JobQueue::default()
        }
    }
}

/// One `Sources/Module_N`: a file as the server names it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Source {
    #[serde(rename = "@Filename", alias = "@FileName", alias = "@filename")]
    pub filename: String,
}

/// One `Destinations/Module_N`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Destination {
    #[serde(
        rename = "@PresetGUID",
        alias = "@PresetGuid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub preset_guid: Option<String>,
    #[serde(
        rename = "@ModuleGUID",
        alias = "@ModuleGuid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub module_guid: Option<String>,
    #[serde(rename = "ModuleData", default)]
    pub module_data: ModuleData,
}

/// `ModuleData` of a destination: where the output goes and how it is named.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModuleData {
    #[serde(
        rename = "@CML_P_Path",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<String>,
    #[serde(
        rename = "@CML_P_BaseFileName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub base_file_name: Option<String>,
}

impl Destination {
    /// The preset this destination asks for: `PresetGUID`, else `ModuleGUID`.
    pub fn preset(&self) -> Option<&str> {
        self.preset_guid.as_deref().or(self.module_guid.as_deref())
    }
}

/// `TaskType="JobStatusList"`: list jobs matching every criterion.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobStatusList {
    pub criteria: Vec<Criterion>,
}

impl JobStatusList {
    /// The filter the seed's page sends: one job by GUID.
    pub fn by_guid(guid: Guid) -> Self {
        JobStatusList {
            criteria: vec![Criterion {
                parameter: "Guid".to_owned(),
                operator: Operator::Equal,
                value: guid.to_string(),
            }],
        }
    }
}

/// One `Filter/Criteria_N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    #[serde(rename = "@Parameter")]
    pub parameter: String,
    #[serde(rename = "@Operator")]
    pub operator: Operator,
    #[serde(rename = "@Value")]
    pub value: String,
}

keyword_enum! {
    /// How a criterion compares a job field with its value.
    pub enum Operator ("Operator") {
        Equal => "EQUAL",
        Like => "LIKE",
        LessThan => "LESSTHAN",
        GreaterThan => "GREATERTHAN",
    }
}

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

/// `TaskType="JobCommand"`: query or control one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCommand {
    pub guid: Guid,
    pub command: Command,
}

/// What a `JobCommand` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The whole job record: status, sources, destinations, outputs.
    QueryInfo,
    /// The job's status.
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

/// `TaskType="JobEvaluate"`: describe source files without encoding them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobEvaluate {
    pub sources: Vec<Source>,
}

/// `TaskType="ProfileList"`: the presets, optionally of one `ProfileType`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileList {
    pub profile_type: Option<String>,
}

keyword_enum! {
    /// `TaskType="NodeCommand"`: the state of this node, or of every node of
    /// the server (videoshare is a one-node server).
    pub enum NodeCommand ("Command") {
        GetNodeStatus => "GetNodeStatus",
        GetServerNodeStatus => "GetServerNodeStatus",
    }
}

// Wire shapes of the requests (private: the public types above are the API).

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "@TaskType", default)]
    task_type: Option<String>,
}

/// Requests that are only a `TaskType` (`JobList`, `Version`).
#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct BareWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct JobQueueWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(rename = "@JobName", default, skip_serializing_if = "Option::is_none")]
    job_name: Option<String>,
    #[serde(rename = "@User", default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(rename = "Sources", default, with = "modules")]
    sources: Vec<Source>,
    #[serde(rename = "Destinations", default, with = "modules")]
    destinations: Vec<Destination>,
    #[serde(
        rename = "ProjectSettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    project_settings: Option<ProjectSettings>,
}

#[derive(Serialize, Deserialize)]
struct ProjectSettings {
    #[serde(
        rename = "@Priority.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    priority: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct JobStatusListWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(rename = "Filter", default, skip_serializing_if = "Option::is_none")]
    filter: Option<Filter>,
}

#[derive(Serialize, Deserialize)]
struct Filter(#[serde(with = "criteria")] Vec<Criterion>);

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct JobCommandWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(rename = "@Command", default)]
    command: Option<String>,
    #[serde(rename = "@GUID", alias = "@Guid", alias = "@guid", default)]
    guid: Option<String>,
    #[serde(
        rename = "@Priority.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    priority: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct JobEvaluateWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(rename = "Sources", default, with = "modules")]
    sources: Vec<Source>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct ProfileListWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(
        rename = "ProfileAttributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    attributes: Option<ProfileAttributes>,
}

#[derive(Serialize, Deserialize)]
struct ProfileAttributes {
    #[serde(
        rename = "@ProfileType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    profile_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct NodeCommandWire {
    #[serde(rename = "@TaskType")]
    task_type: TaskType,
    #[serde(rename = "@Command", default)]
    command: Option<String>,
}

/// Reads `text` as the wire struct of `task`.
fn read<T: DeserializeOwned>(text: &str, task: TaskType) -> Result<T, MessageError> {
    quick_xml::de::from_str(text).map_err(|e| invalid(task, e.to_string()))
}

fn invalid(task: TaskType, reason: String) -> MessageError {
    MessageError::Invalid {
        task: task.as_str(),
        reason,
    }
}

/// A required keyword attribute such as `Command`, parsed.
fn keyword<K>(task: TaskType, name: &str, value: Option<String>) -> Result<K, MessageError>
where
    K: std::str::FromStr<Err = String>,
{
    value
        .ok_or_else(|| invalid(task, format!("the {name} attribute is missing")))?
        .parse()
        .map_err(|e| invalid(task, e))
}

impl JobCommandWire {
    fn into_command(self) -> Result<JobCommand, MessageError> {
        let task = TaskType::JobCommand;
        let kind: CommandKind = keyword(task, "Command", self.command)?;
        let text = self.guid.ok_or_else(|| {
            invalid(
                task,
                "the GUID attribute (GUID=\"{...}\") is missing".to_owned(),
            )
        })?;
        let guid = text
            .parse()
            .map_err(|e: InvalidGuid| invalid(task, format!("GUID {text:?}: {e}")))?;
        let command = match kind {
            CommandKind::QueryInfo => Command::QueryInfo,
            CommandKind::Query => Command::Query,
            CommandKind::Stop => Command::Stop,
            CommandKind::Pause => Command::Pause,
            CommandKind::Resume => Command::Resume,
            CommandKind::SetPriority => Command::SetPriority(self.priority.ok_or_else(|| {
                invalid(task, "SetPriority needs Priority.DWD=\"0..255\"".to_owned())
            })?),
            CommandKind::Requeue => Command::Requeue,
            CommandKind::Remove => Command::Remove,
        };
        Ok(JobCommand { guid, command })
    }
}

impl Request {
    /// Parses a request document (already decoded to text).
    pub fn parse(text: &str) -> Result<Request, MessageError> {
        check_document(text)?;
        let envelope: Envelope =
            quick_xml::de::from_str(text).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let task: TaskType = envelope
            .task_type
            .ok_or(MessageError::MissingTaskType)?
            .parse()
            .map_err(MessageError::UnknownTaskType)?;
        Ok(match task {
            TaskType::JobQueue => {
                let wire: JobQueueWire = read(text, task)?;
                Request::JobQueue(JobQueue {
                    job_name: wire.job_name,
                    user: wire.user,
                    sources: wire.sources,
                    destinations: wire.destinations,
                    priority: wire.project_settings.and_then(|p| p.priority),
                })
            }
            TaskType::JobStatusList => {
                let wire: JobStatusListWire = read(text, task)?;
                Request::JobStatusList(JobStatusList {
                    criteria: wire.filter.map(|f| f.0).unwrap_or_default(),
                })
            }
            TaskType::JobList => Request::JobList,
            TaskType::JobCommand => {
                Request::JobCommand(read::<JobCommandWire>(text, task)?.into_command()?)
            }
            TaskType::JobEvaluate => {
                let wire: JobEvaluateWire = read(text, task)?;
                Request::JobEvaluate(JobEvaluate {
                    sources: wire.sources,
                })
            }
            TaskType::ProfileList => {
                let wire: ProfileListWire = read(text, task)?;
                Request::ProfileList(ProfileList {
                    profile_type: wire.attributes.and_then(|a| a.profile_type),
                })
            }
            TaskType::Version => Request::Version,
            TaskType::NodeCommand => {
                let wire: NodeCommandWire = read(text, task)?;
                Request::NodeCommand(keyword(task, "Command", wire.command)?)
            }
        })
    }

    pub fn task_type(&self) -> TaskType {
        match self {
            Request::JobQueue(_) => TaskType::JobQueue,
            Request::JobStatusList(_) => TaskType::JobStatusList,
            Request::JobList => TaskType::JobList,
            Request::JobCommand(_) => TaskType::JobCommand,
            Request::JobEvaluate(_) => TaskType::JobEvaluate,
            Request::ProfileList(_) => TaskType::ProfileList,
            Request::Version => TaskType::Version,
            Request::NodeCommand(_) => TaskType::NodeCommand,
        }
    }

    /// The shape of a successful reply to this request.
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Request::JobQueue(_) => ReplyKind::Queued,
            Request::JobStatusList(_) => ReplyKind::StatusList,
            Request::JobList => ReplyKind::JobList,
            Request::JobCommand(c) => match c.command {
                Command::QueryInfo => ReplyKind::Info,
                Command::Remove => ReplyKind::Removed,
                _ => ReplyKind::Status,
            },
            Request::JobEvaluate(_) => ReplyKind::Evaluated,
            Request::ProfileList(_) => ReplyKind::Profiles,
            Request::Version => ReplyKind::Version,
            Request::NodeCommand(NodeCommand::GetNodeStatus) => ReplyKind::Node,
            Request::NodeCommand(NodeCommand::GetServerNodeStatus) => ReplyKind::ServerNodes,
        }
    }

    /// Whether sending this request twice has the same effect and reply as
    /// once (a client may then retry it on a fresh connection). A second
    /// `Remove` would answer "no such job" for a job the first removed.
    pub fn is_idempotent(&self) -> bool {
        match self {
            Request::JobQueue(_) => false,
            Request::JobCommand(c) => !matches!(c.command, Command::Requeue | Command::Remove),
            _ => true,
        }
    }

    /// The request as a document, ready for [`latin1::encode`].
    pub fn to_xml(&self) -> String {
        let task_type = self.task_type();
        let written = match self {
            Request::JobQueue(job) => quick_xml::se::to_string(&JobQueueWire {
                task_type,
                job_name: job.job_name.clone(),
                user: job.user.clone(),
                sources: job.sources.clone(),
                destinations: job.destinations.clone(),
                project_settings: job.priority.map(|p| ProjectSettings { priority: Some(p) }),
            }),
            Request::JobStatusList(list) => quick_xml::se::to_string(&JobStatusListWire {
                task_type,
                filter: (!list.criteria.is_empty()).then(|| Filter(list.criteria.clone())),
            }),
            Request::JobList | Request::Version => {
                quick_xml::se::to_string(&BareWire { task_type })
            }
            Request::JobCommand(c) => quick_xml::se::to_string(&JobCommandWire {
                task_type,
                command: Some(c.command.kind().as_str().to_owned()),
                guid: Some(c.guid.to_string()),
                priority: match c.command {
                    Command::SetPriority(p) => Some(p),
                    _ => None,
                },
            }),
            Request::JobEvaluate(e) => quick_xml::se::to_string(&JobEvaluateWire {
                task_type,
                sources: e.sources.clone(),
            }),
            Request::ProfileList(p) => quick_xml::se::to_string(&ProfileListWire {
                task_type,
                attributes: p.profile_type.clone().map(|t| ProfileAttributes {
                    profile_type: Some(t),
                }),
            }),
            Request::NodeCommand(n) => quick_xml::se::to_string(&NodeCommandWire {
                task_type,
                command: Some(n.as_str().to_owned()),
            }),
        };
        // Serialising plain strings and numbers into a String cannot fail.
        written.unwrap_or_default()
    }

    /// The request as payload bytes on the wire.
    pub fn to_payload(&self) -> Vec<u8> {
        latin1::encode(&self.to_xml())
    }
}
