//! Typed Carbon requests and replies, in the shapes of the Carbon API
//! manual (`carbon-manual.md`), read and written through [`Element`].
//!
//! One file per task type: its request (parsed from and written to
//! `<cnpsXML>`) and its reply (written to and read from `<Reply>`).
//! [`record`] is the job record every job reply shares; [`budget`] keeps
//! the replies the seed's page parses under 1000 bytes. Nothing here knows
//! sockets (see `frame`) or job logic (see `encoder`).
//!
//! Readers are lenient where real clients and servers differ: attribute
//! names in any case, the legacy `JobType`, command parameters on a child
//! element or on the root, replies with a `<Reply>` or an older `<cnpsXML>`
//! root. Writers are exact: the manual's names and order, ours after.

mod budget;
mod job_command;
mod job_evaluate;
mod job_queue;
mod job_status_list;
mod node;
mod profile_list;
mod record;
#[cfg(test)]
mod tests;

pub use budget::{ELLIPSIS, SEED_REPLY_BUDGET};
pub use job_command::{Command, CommandKind, DestinationInfo, JobCommand, JobInfo};
pub use job_evaluate::{
    AudioDescription, EvaluatedSource, Evaluation, JobEvaluate, PublicDescription, VideoDescription,
};
pub use job_queue::{
    Destination, FileCopy, JobQueue, ModuleData, MultiSource, Source, SourceFile, TICKS_PER_SECOND,
    Track, Trim,
};
pub use job_status_list::{
    Criterion, Direction, JobListing, JobStatusList, ListSettings, MAX_LIST, Operator, StatusList,
};
pub use node::{
    NodeCommand, NodeCommandKind, NodeProperties, NodeSettings, NodeStatus, VersionInfo,
};
pub use profile_list::{Profile, ProfileList, flags as profile_flags};
pub use record::JobEntry;

use crate::carbon::guid::Guid;
use crate::carbon::text;
use crate::carbon::xml::{Element, XmlError};

/// What is wrong with a request or reply document.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("the root element must be <cnpsXML>, found <{0}>")]
    WrongRoot(String),
    #[error("the request has no TaskType attribute")]
    MissingTaskType,
    #[error("{0}")]
    UnknownTaskType(String),
    #[error("invalid {task} request: {reason}")]
    Invalid { task: &'static str, reason: String },
    #[error("{task}: {what} is not supported by videoshare")]
    Unsupported { task: &'static str, what: String },
}

impl MessageError {
    pub(crate) fn invalid(task: TaskType, reason: impl std::fmt::Display) -> MessageError {
        MessageError::Invalid {
            task: task.as_str(),
            reason: reason.to_string(),
        }
    }
}

fn unsupported(task: TaskType, what: impl Into<String>) -> MessageError {
    MessageError::Unsupported {
        task: task.as_str(),
        what: what.into(),
    }
}

/// A whole number attribute (`.DWD`), if present.
fn number<N: std::str::FromStr>(
    task: TaskType,
    e: &Element,
    name: &str,
) -> Result<Option<N>, MessageError> {
    e.value(name)
        .map(|v| parse_number(task, name, v))
        .transpose()
}

fn parse_number<N: std::str::FromStr>(
    task: TaskType,
    name: &str,
    text: &str,
) -> Result<N, MessageError> {
    text.trim().parse().map_err(|_| {
        MessageError::invalid(
            task,
            format!("{name}={text:?} is not a whole number in range"),
        )
    })
}

/// A signed 64-bit attribute (`.QWD`, where `-1` means "the end" or "all").
fn signed(task: TaskType, name: &str, text: &str) -> Result<i64, MessageError> {
    parse_number(task, name, text)
}

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
        CarbonRoles => "CarbonRoles",
        NodeList => "NodeList",
        NodeCommand => "NodeCommand",
    }
}

/// Task types the manual describes that videoshare does not serve: named
/// in the refusal, so a client learns it is the task, not a typo.
const NOT_SERVED: &[&str] = &[
    "WatchCreate",
    "WatchList",
    "WatchCommand",
    "ProfileSave",
    "ProfileCommand",
    "TagList",
    "DirCreate",
    "DirList",
    "ServerConnectionTest",
    "FormPresetCreate",
    "FormPresetList",
    "FormPresetCommand",
    "FarmList",
];

/// The Carbon API level this module speaks.
pub const API_VERSION: &str = "1.2";

/// A request a Carbon server understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    JobQueue(JobQueue),
    JobStatusList(JobStatusList),
    /// Name and GUID of each job (one page of them).
    JobList(ListSettings),
    JobCommand(JobCommand),
    JobEvaluate(JobEvaluate),
    ProfileList(ProfileList),
    /// The server's identity.
    Version,
    /// Whether the server is a Coder, a Server or an Agent.
    CarbonRoles,
    /// The nodes' IPs.
    NodeList,
    NodeCommand(NodeCommand),
}

impl Request {
    /// Parses a request document (already decoded to text).
    pub fn parse(text: &str) -> Result<Request, MessageError> {
        let root = Element::parse(text)?;
        if !root.name.eq_ignore_ascii_case("cnpsXML") {
            return Err(MessageError::WrongRoot(root.name));
        }
        let word = root
            .get("TaskType")
            // The name before API 1.25, still accepted.
            .or_else(|| root.get("JobType"))
            .ok_or(MessageError::MissingTaskType)?;
        let task: TaskType = match word.parse() {
            Ok(task) => task,
            Err(_)
                if NOT_SERVED
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(word.trim())) =>
            {
                return Err(MessageError::UnknownTaskType(format!(
                    "TaskType {} is not served by videoshare",
                    word.trim()
                )));
            }
            Err(e) => return Err(MessageError::UnknownTaskType(e.to_string())),
        };
        Ok(match task {
            TaskType::JobQueue => Request::JobQueue(JobQueue::parse(&root)?),
            TaskType::JobStatusList => Request::JobStatusList(JobStatusList::parse(&root)?),
            TaskType::JobList => Request::JobList(ListSettings::parse(&root, task)?),
            TaskType::JobCommand => Request::JobCommand(JobCommand::parse(&root)?),
            TaskType::JobEvaluate => Request::JobEvaluate(JobEvaluate::parse(&root)?),
            TaskType::ProfileList => Request::ProfileList(ProfileList::parse(&root)?),
            TaskType::Version => Request::Version,
            TaskType::CarbonRoles => Request::CarbonRoles,
            TaskType::NodeList => Request::NodeList,
            TaskType::NodeCommand => Request::NodeCommand(NodeCommand::parse(&root)?),
        })
    }

    pub fn task_type(&self) -> TaskType {
        match self {
            Request::JobQueue(_) => TaskType::JobQueue,
            Request::JobStatusList(_) => TaskType::JobStatusList,
            Request::JobList(_) => TaskType::JobList,
            Request::JobCommand(_) => TaskType::JobCommand,
            Request::JobEvaluate(_) => TaskType::JobEvaluate,
            Request::ProfileList(_) => TaskType::ProfileList,
            Request::Version => TaskType::Version,
            Request::CarbonRoles => TaskType::CarbonRoles,
            Request::NodeList => TaskType::NodeList,
            Request::NodeCommand(_) => TaskType::NodeCommand,
        }
    }

    /// The shape of a successful reply to this request.
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Request::JobQueue(_) => ReplyKind::Queued,
            Request::JobStatusList(_) => ReplyKind::StatusList,
            Request::JobList(_) => ReplyKind::JobList,
            Request::JobCommand(c) if c.command == Command::Query => ReplyKind::Job,
            Request::JobCommand(_) => ReplyKind::Info,
            Request::JobEvaluate(_) => ReplyKind::Evaluated,
            Request::ProfileList(_) => ReplyKind::Profiles,
            Request::Version => ReplyKind::Version,
            Request::CarbonRoles => ReplyKind::Roles,
            Request::NodeList => ReplyKind::Nodes,
            Request::NodeCommand(c) => match c.kind {
                NodeCommandKind::GetProperties => ReplyKind::Properties,
                _ => ReplyKind::Node,
            },
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

    /// The request as a document, in the manual's form.
    pub fn to_xml(&self) -> String {
        let root = || {
            Element::new("cnpsXML")
                .attr("CarbonAPIVer", API_VERSION)
                .attr("TaskType", self.task_type())
        };
        let root = match self {
            Request::JobQueue(job) => {
                let mut written = job.to_element("cnpsXML");
                written
                    .attrs
                    .insert(0, ("CarbonAPIVer".into(), API_VERSION.into()));
                written
            }
            Request::JobStatusList(list) => list.write(root()),
            Request::JobList(settings) => job_status_list::write_job_list(settings, root()),
            Request::JobCommand(c) => c.write(root()),
            Request::JobEvaluate(e) => e.write(root()),
            Request::ProfileList(p) => p.write(root()),
            Request::Version | Request::CarbonRoles | Request::NodeList => root(),
            Request::NodeCommand(n) => n.write(root()),
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}",
            root.to_xml()
        )
    }

    /// The request as payload bytes on the wire.
    pub fn to_payload(&self) -> Vec<u8> {
        text::encode(&self.to_xml())
    }
}

/// A reply from a Carbon server.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `JobQueue` accepted: the new job's GUID.
    Queued {
        guid: Guid,
    },
    /// `JobStatusList`: one page of the matching jobs.
    StatusList(StatusList),
    /// `JobList`.
    JobList(JobListing),
    /// Every `JobCommand` but `Query`: the job afterwards.
    Info(Box<JobInfo>),
    /// `JobCommand Query`: the job as submitted.
    Job(Box<JobQueue>),
    /// `JobEvaluate`.
    Evaluated(Evaluation),
    /// `ProfileList`.
    Profiles {
        profiles: Vec<Profile>,
    },
    Version(VersionInfo),
    /// `CarbonRoles`: `CLIENT`, `SERVER` or `AGENT`.
    Roles {
        role: String,
    },
    /// `NodeList`: each node's IP.
    Nodes {
        ips: Vec<String>,
    },
    /// `NodeCommand GetNodeStatus` and the Set commands.
    Node(NodeStatus),
    /// `NodeCommand GetServerNodeStatus`.
    ServerNode(NodeStatus),
    /// `NodeCommand GetProperties`.
    Properties(NodeProperties),
    /// `Success="FALSE"`.
    Failed {
        error: String,
    },
}

/// The shape of a successful reply, as a client expects it from its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Queued,
    StatusList,
    JobList,
    Info,
    Job,
    Evaluated,
    Profiles,
    Version,
    Roles,
    Nodes,
    Node,
    Properties,
}

impl Reply {
    /// The reply as a document. Replies the seed parses are kept within
    /// [`SEED_REPLY_BUDGET`] encoded bytes by shortening free text.
    pub fn to_xml(&self) -> String {
        let ok = || Element::new("Reply").attr("Success", "TRUE");
        let reply = match self {
            // The seed reads attributes()[0] as the GUID.
            Reply::Queued { guid } => Element::new("Reply")
                .attr("GUID", guid)
                .attr("Success", "TRUE"),
            Reply::StatusList(list) => return list.to_xml(),
            Reply::JobList(list) => return list.to_xml(),
            Reply::Info(info) => ok().child(info.to_element()),
            Reply::Job(job) => ok().child(job.to_element("Job")),
            Reply::Evaluated(e) => ok().child(e.to_element()),
            Reply::Profiles { profiles } => ok().child(profile_list::to_element(profiles)),
            Reply::Version(v) => ok()
                .attr("Version", &v.version)
                .attr("Product", &v.product)
                .attr("CarbonAPIVer", &v.api_version),
            Reply::Roles { role } => ok().attr("CarbonRole", role),
            Reply::Nodes { ips } => {
                ok().child(Element::new("NodeList").with_attr_series("Node", ips))
            }
            Reply::Node(node) => ok().child(node.to_element("NodeStatus")),
            Reply::ServerNode(node) => ok().child(node.to_element("ServerNodeStatus")),
            Reply::Properties(p) => ok().child(
                Element::new("NodeProperties")
                    .attr("Version", &p.version)
                    .attr("Tags", &p.tags),
            ),
            Reply::Failed { error } => return failed_within_budget(error),
        };
        reply.to_xml()
    }

    pub fn to_payload(&self) -> Vec<u8> {
        text::encode(&self.to_xml())
    }

    /// Parses a reply document (already decoded to text) to a request whose
    /// successful reply has the shape `expected`. Reads the manual's
    /// `<Reply>` and the older `<cnpsXML>` root alike.
    pub fn parse(text: &str, expected: ReplyKind) -> Result<Reply, MessageError> {
        let root = Element::parse(text)?;
        let success = root
            .get("Success")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("TRUE"));
        if !success {
            return Ok(Reply::Failed {
                error: root.get("Error").map(str::to_owned).unwrap_or_else(|| {
                    "the server refused the request without a reason".to_owned()
                }),
            });
        }
        let missing = |what: &str| MessageError::Malformed(format!("the reply has no {what}"));
        Ok(match expected {
            ReplyKind::Queued => Reply::Queued {
                guid: root
                    .get_any(&["GUID", "Guid"])
                    .ok_or_else(|| missing("GUID"))?
                    .parse()
                    .map_err(|e: crate::carbon::guid::InvalidGuid| {
                        MessageError::Malformed(e.to_string())
                    })?,
            },
            ReplyKind::StatusList => Reply::StatusList(StatusList::from_reply(&root)?),
            ReplyKind::JobList => Reply::JobList(JobListing::from_reply(&root)?),
            ReplyKind::Info => match JobInfo::from_reply(&root) {
                Ok(info) => Reply::Info(Box::new(info)),
                // An older server acknowledged some commands (Remove) with
                // just the job's GUID.
                Err(e) => match root.get_any(&["GUID", "Guid"]).and_then(|g| g.parse().ok()) {
                    Some(guid) => Reply::Queued { guid },
                    None => return Err(e),
                },
            },
            ReplyKind::Job => Reply::Job(Box::new(job_command::job_from_reply(&root)?)),
            ReplyKind::Evaluated => Reply::Evaluated(Evaluation::from_reply(&root)?),
            ReplyKind::Profiles => Reply::Profiles {
                profiles: profile_list::from_reply(&root)?,
            },
            ReplyKind::Version => Reply::Version(VersionInfo {
                version: root
                    .get("Version")
                    .ok_or_else(|| missing("Version"))?
                    .to_owned(),
                product: root.get("Product").unwrap_or_default().to_owned(),
                api_version: root.get("CarbonAPIVer").unwrap_or_default().to_owned(),
            }),
            ReplyKind::Roles => Reply::Roles {
                role: root
                    .get_any(&["CarbonRole", "CarbonRoles"])
                    .ok_or_else(|| missing("CarbonRole"))?
                    .to_owned(),
            },
            ReplyKind::Nodes => Reply::Nodes {
                ips: root
                    .find("NodeList")
                    .map(|l| l.attr_series("Node"))
                    .unwrap_or_default(),
            },
            ReplyKind::Node if root.find("ServerNodeStatus").is_some() => {
                Reply::ServerNode(NodeStatus::from_reply(&root)?)
            }
            ReplyKind::Node => Reply::Node(NodeStatus::from_reply(&root)?),
            ReplyKind::Properties => {
                let p = root
                    .find("NodeProperties")
                    .ok_or_else(|| missing("NodeProperties"))?;
                Reply::Properties(NodeProperties {
                    version: p.get("Version").unwrap_or_default().to_owned(),
                    tags: p.get("Tags").unwrap_or_default().to_owned(),
                })
            }
        })
    }
}

/// `<Reply Success="FALSE" Error="…"/>`, the reason shortened to fit the
/// seed's budget.
fn failed_within_budget(error: &str) -> String {
    let render = |error: &str| {
        Element::new("Reply")
            .attr("Success", "FALSE")
            .attr("Error", error)
            .to_xml()
    };
    let fixed = text::encoded_len(&render(""));
    render(&budget::fit(error, SEED_REPLY_BUDGET.saturating_sub(fixed)))
}
