//! Replies: one type per answer a Carbon server gives, written to and read
//! from XML, with the seed's size budget applied where its page parses them.

use serde::{Deserialize, Serialize};

use super::{MessageError, ModuleData, Source, jobs, modules, nodes, profiles};
use crate::carbon::guid::{Guid, InvalidGuid};
use crate::carbon::latin1;
use crate::carbon::status::JobStatus;

/// Replies the seed's client parses must stay below this many payload bytes, so
/// the length field has at most three digits (see carbon-protocol.md §1).
pub const SEED_REPLY_BUDGET: usize = 999;

/// One `Job_N` of a `JobStatusList` reply, attributes in the documented order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEntry {
    #[serde(rename = "@Name", default)]
    pub name: String,
    #[serde(rename = "@GUID", alias = "@Guid")]
    pub guid: Guid,
    #[serde(rename = "@State", default)]
    pub state: String,
    #[serde(rename = "@Status")]
    pub status: JobStatus,
    #[serde(rename = "@Progress.DWD", default)]
    pub progress: u32,
    #[serde(
        rename = "@Description",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    #[serde(rename = "@User", default)]
    pub user: String,
    #[serde(
        rename = "@SourceDescription",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub source_description: String,
    #[serde(rename = "@AgentIP", default, skip_serializing_if = "String::is_empty")]
    pub agent_ip: String,
    #[serde(rename = "@Priority.DWD", default)]
    pub priority: u32,
    #[serde(
        rename = "@CheckInTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub check_in_time: Option<String>,
    #[serde(
        rename = "@StartTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<String>,
    #[serde(
        rename = "@CompletedTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_time: Option<String>,
    #[serde(
        rename = "@CheckInTime_CNLT",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub check_in_time_cnlt: Option<String>,
    #[serde(
        rename = "@StartTime_CNLT",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time_cnlt: Option<String>,
    #[serde(
        rename = "@CompletedTime_CNLT",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_time_cnlt: Option<String>,
    /// videoshare extension: frames per second of the running encode.
    #[serde(rename = "@FPS.DBL", default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// videoshare extension: media seconds encoded per second ("× realtime").
    #[serde(
        rename = "@Speed.DBL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub speed: Option<f64>,
    /// videoshare extension: 1 for the job that starts next, while QUEUED.
    #[serde(
        rename = "@QueuePosition.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_position: Option<u32>,
}

/// `JobCommand QueryInfo`: the whole job record, free text unshortened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    #[serde(rename = "JobStatus")]
    pub job: JobEntry,
    #[serde(rename = "Sources", default, with = "modules")]
    pub sources: Vec<Source>,
    #[serde(rename = "Destinations", default, with = "modules")]
    pub destinations: Vec<DestinationInfo>,
}

/// One destination of a job: its preset, folder, name and, once written,
/// the output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationInfo {
    #[serde(rename = "@PresetGUID")]
    pub preset_guid: Guid,
    #[serde(rename = "@PresetName", default)]
    pub preset_name: String,
    #[serde(rename = "ModuleData", default)]
    pub module_data: ModuleData,
    #[serde(rename = "Output", default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputFile>,
}

/// A file the job wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    #[serde(rename = "@Filename")]
    pub filename: String,
}

/// One `JobList/Job_N`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct JobRef {
    #[serde(rename = "@GUID", alias = "@Guid")]
    guid: Guid,
}

/// `JobEvaluate`: what one source holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluatedSource {
    #[serde(rename = "@Filename")]
    pub filename: String,
    /// The container format(s) ffprobe recognised, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    #[serde(rename = "@Format", default)]
    pub format: String,
    #[serde(rename = "PublicDescription")]
    pub description: PublicDescription,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PublicDescription {
    #[serde(rename = "Video", default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoDescription>,
    #[serde(rename = "Audio", default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioDescription>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDescription {
    #[serde(rename = "@Width")]
    pub width: u32,
    #[serde(rename = "@Height")]
    pub height: u32,
    /// Frames per second, when the stream declares it.
    #[serde(
        rename = "@FrameRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub frame_rate: Option<f64>,
    /// Seconds, when known.
    #[serde(rename = "@Duration", default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(rename = "@Codec")]
    pub codec: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioDescription {
    #[serde(
        rename = "@SampleRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sample_rate: Option<u32>,
    #[serde(rename = "@Channels", default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    #[serde(rename = "@Codec")]
    pub codec: String,
}

/// `ProfileList`: one preset and its main settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(rename = "@GUID")]
    pub guid: Guid,
    #[serde(rename = "@Name")]
    pub name: String,
    #[serde(rename = "@Description", default)]
    pub description: String,
    #[serde(rename = "@ProfileType", default)]
    pub profile_type: String,
    #[serde(rename = "@Container", default)]
    pub container: String,
    #[serde(rename = "@Extension", default)]
    pub extension: String,
    /// Absent for an audio-only preset.
    #[serde(
        rename = "@VideoCodec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub video_codec: Option<String>,
    /// Absent for an audio-only preset.
    #[serde(
        rename = "@VideoBitrate.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub video_kbps: Option<u32>,
    /// Absent for an audio-only preset.
    #[serde(
        rename = "@Width.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    /// Absent for an audio-only preset.
    #[serde(
        rename = "@Height.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
    #[serde(
        rename = "@AudioCodec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_codec: Option<String>,
    #[serde(
        rename = "@AudioBitrate.DWD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_kbps: Option<u32>,
}

/// `Version`: who answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    #[serde(rename = "@Product", default)]
    pub product: String,
    #[serde(rename = "@Version", default)]
    pub version: String,
    #[serde(rename = "@CarbonAPIVer", default)]
    pub api_version: String,
}

/// `NodeCommand`: one encoding node and its slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(rename = "@Name", default)]
    pub name: String,
    #[serde(rename = "@IP", default)]
    pub ip: String,
    #[serde(rename = "@Enabled.DWD", default)]
    pub enabled: u32,
    #[serde(rename = "@Priority.DWD", default)]
    pub priority: u32,
    /// Encodes this node runs at once.
    #[serde(rename = "@Slots.DWD", default)]
    pub slots: u32,
    #[serde(rename = "@FreeSlots.DWD", default)]
    pub free_slots: u32,
    #[serde(rename = "@RunningJobs.DWD", default)]
    pub running_jobs: u32,
    #[serde(rename = "@QueuedJobs.DWD", default)]
    pub queued_jobs: u32,
}

/// A reply from a Carbon server.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `JobQueue` accepted: the new job's GUID.
    Queued {
        guid: Guid,
    },
    /// `JobStatusList`: the matching jobs.
    StatusList {
        jobs: Vec<JobEntry>,
    },
    /// `JobList`: every job's GUID, oldest first.
    JobList {
        guids: Vec<Guid>,
    },
    /// `JobCommand` `Query` and the control commands: the job afterwards.
    Status(Box<JobEntry>),
    /// `JobCommand QueryInfo`.
    Info(Box<JobInfo>),
    /// `JobCommand Remove`: the job is gone.
    Removed {
        guid: Guid,
    },
    /// `JobEvaluate`: one entry per source.
    Evaluated {
        sources: Vec<EvaluatedSource>,
    },
    /// `ProfileList`.
    Profiles {
        profiles: Vec<Profile>,
    },
    Version(VersionInfo),
    /// `NodeCommand GetNodeStatus`.
    Node(NodeStatus),
    /// `NodeCommand GetServerNodeStatus`: every node of the server.
    ServerNodes {
        nodes: Vec<NodeStatus>,
    },
    /// `Success="FALSE"`.
    Failed {
        error: String,
    },
}

/// The shape of a successful reply, as a client expects it from its request
/// (a `JobQueue` and a `Remove` reply look alike on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Queued,
    StatusList,
    JobList,
    Status,
    Info,
    Removed,
    Evaluated,
    Profiles,
    Version,
    Node,
    ServerNodes,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 11] = [
        ReplyKind::Queued,
        ReplyKind::StatusList,
        ReplyKind::JobList,
        ReplyKind::Status,
        ReplyKind::Info,
        ReplyKind::Removed,
        ReplyKind::Evaluated,
        ReplyKind::Profiles,
        ReplyKind::Version,
        ReplyKind::Node,
        ReplyKind::ServerNodes,
    ];
}

// Wire shapes (private). `Success` comes first except where the seed needs
// the GUID first.

/// `JobQueue` and `Remove`: `<cnpsXML GUID="{...}" Success="TRUE"/>`.
#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct GuidWire {
    // First attribute: the seed reads `attributes()[0]` as the GUID.
    #[serde(rename = "@GUID")]
    guid: Guid,
    #[serde(rename = "@Success")]
    success: &'static str,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct StatusListWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "JobStatusList", with = "jobs")]
    list: &'a [JobEntry],
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct JobListWire {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "JobList", with = "jobs")]
    list: Vec<JobRef>,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct JobStatusWire<'a> {
    #[serde(rename = "@GUID")]
    guid: Guid,
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "JobStatus")]
    job: &'a JobEntry,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct JobInfoWire<'a> {
    #[serde(rename = "@GUID")]
    guid: Guid,
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "JobInfo")]
    info: &'a JobInfo,
}

#[derive(Serialize, Deserialize)]
struct EvaluateResult {
    #[serde(rename = "Sources", default, with = "modules")]
    sources: Vec<EvaluatedSource>,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct EvaluatedWire {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "JobEvaluateResult")]
    result: EvaluateResult,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct ProfilesWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "ProfileList", with = "profiles")]
    list: &'a [Profile],
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct VersionWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "@Product")]
    product: &'a str,
    #[serde(rename = "@Version")]
    version: &'a str,
    #[serde(rename = "@CarbonAPIVer")]
    api_version: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct NodeWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "NodeStatus")]
    node: &'a NodeStatus,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct ServerNodesWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "ServerNodeStatus", with = "nodes")]
    nodes: &'a [NodeStatus],
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct FailedWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "@Error")]
    error: &'a str,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Wrapped<T>(#[serde(with = "jobs")] Vec<T>);
#[derive(Deserialize)]
struct WrappedProfiles(#[serde(with = "profiles")] Vec<Profile>);
#[derive(Deserialize)]
struct WrappedNodes(#[serde(with = "nodes")] Vec<NodeStatus>);

/// Any reply, as a client reads it; the request says which part matters.
#[derive(Deserialize)]
struct ReplyWire {
    #[serde(rename = "@GUID", alias = "@Guid", default)]
    guid: Option<String>,
    #[serde(rename = "@Success", default)]
    success: Option<String>,
    #[serde(rename = "@Error", default)]
    error: Option<String>,
    #[serde(rename = "@Product", default)]
    product: Option<String>,
    #[serde(rename = "@Version", default)]
    version: Option<String>,
    #[serde(rename = "@CarbonAPIVer", default)]
    api_version: Option<String>,
    #[serde(rename = "JobStatusList", default)]
    job_status_list: Option<Wrapped<JobEntry>>,
    #[serde(rename = "JobList", default)]
    job_list: Option<Wrapped<JobRef>>,
    #[serde(rename = "JobStatus", default)]
    job_status: Option<JobEntry>,
    #[serde(rename = "JobInfo", default)]
    job_info: Option<JobInfo>,
    #[serde(rename = "JobEvaluateResult", default)]
    evaluate: Option<EvaluateResult>,
    #[serde(rename = "ProfileList", default)]
    profile_list: Option<WrappedProfiles>,
    #[serde(rename = "NodeStatus", default)]
    node_status: Option<NodeStatus>,
    #[serde(rename = "ServerNodeStatus", default)]
    server_node_status: Option<WrappedNodes>,
}

fn missing(what: &str) -> MessageError {
    MessageError::Malformed(format!("the reply has no {what}"))
}

impl Reply {
    /// The reply as a document. Replies the seed parses are kept within
    /// [`SEED_REPLY_BUDGET`] encoded bytes by shortening free text.
    pub fn to_xml(&self) -> String {
        const OK: &str = "TRUE";
        let written = match self {
            Reply::Queued { guid } | Reply::Removed { guid } => {
                quick_xml::se::to_string(&GuidWire {
                    guid: *guid,
                    success: OK,
                })
            }
            Reply::StatusList { jobs } if jobs.len() == 1 => {
                return one_job_within_budget(&jobs[0], |job| {
                    render(&StatusListWire {
                        success: OK,
                        list: std::slice::from_ref(job),
                    })
                });
            }
            Reply::StatusList { jobs } => quick_xml::se::to_string(&StatusListWire {
                success: OK,
                list: jobs,
            }),
            Reply::JobList { guids } => quick_xml::se::to_string(&JobListWire {
                success: OK,
                list: guids.iter().map(|&guid| JobRef { guid }).collect(),
            }),
            Reply::Status(job) => {
                return one_job_within_budget(job, |job| {
                    render(&JobStatusWire {
                        guid: job.guid,
                        success: OK,
                        job,
                    })
                });
            }
            Reply::Info(info) => quick_xml::se::to_string(&JobInfoWire {
                guid: info.job.guid,
                success: OK,
                info,
            }),
            Reply::Evaluated { sources } => quick_xml::se::to_string(&EvaluatedWire {
                success: OK,
                result: EvaluateResult {
                    sources: sources.clone(),
                },
            }),
            Reply::Profiles { profiles } => quick_xml::se::to_string(&ProfilesWire {
                success: OK,
                list: profiles,
            }),
            Reply::Version(v) => quick_xml::se::to_string(&VersionWire {
                success: OK,
                product: &v.product,
                version: &v.version,
                api_version: &v.api_version,
            }),
            Reply::Node(node) => quick_xml::se::to_string(&NodeWire { success: OK, node }),
            Reply::ServerNodes { nodes } => {
                quick_xml::se::to_string(&ServerNodesWire { success: OK, nodes })
            }
            Reply::Failed { error } => {
                return failed_within_budget(error);
            }
        };
        // Serialising plain strings and numbers into a String cannot fail.
        written.unwrap_or_default()
    }

    pub fn to_payload(&self) -> Vec<u8> {
        latin1::encode(&self.to_xml())
    }

    /// The kind of a successful reply; `None` for [`Reply::Failed`].
    pub fn kind(&self) -> Option<ReplyKind> {
        Some(match self {
            Reply::Queued { .. } => ReplyKind::Queued,
            Reply::StatusList { .. } => ReplyKind::StatusList,
            Reply::JobList { .. } => ReplyKind::JobList,
            Reply::Status(_) => ReplyKind::Status,
            Reply::Info(_) => ReplyKind::Info,
            Reply::Removed { .. } => ReplyKind::Removed,
            Reply::Evaluated { .. } => ReplyKind::Evaluated,
            Reply::Profiles { .. } => ReplyKind::Profiles,
            Reply::Version(_) => ReplyKind::Version,
            Reply::Node(_) => ReplyKind::Node,
            Reply::ServerNodes { .. } => ReplyKind::ServerNodes,
            Reply::Failed { .. } => return None,
        })
    }

    /// Parses a reply document (already decoded to text) to a request whose
    /// successful reply has the shape `expected`.
    pub fn parse(text: &str, expected: ReplyKind) -> Result<Reply, MessageError> {
        let wire: ReplyWire =
            quick_xml::de::from_str(text).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let success = wire
            .success
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("TRUE"));
        if !success {
            return Ok(Reply::Failed {
                error: wire.error.unwrap_or_else(|| {
                    "the server refused the request without a reason".to_owned()
                }),
            });
        }
        let guid = || -> Result<Guid, MessageError> {
            wire.guid
                .as_deref()
                .ok_or_else(|| missing("GUID"))?
                .parse()
                .map_err(|e: InvalidGuid| MessageError::Malformed(e.to_string()))
        };
        Ok(match expected {
            ReplyKind::Queued => Reply::Queued { guid: guid()? },
            ReplyKind::Removed => Reply::Removed { guid: guid()? },
            // A server with no matching job may omit the list altogether.
            ReplyKind::StatusList => Reply::StatusList {
                jobs: wire.job_status_list.map(|l| l.0).unwrap_or_default(),
            },
            ReplyKind::JobList => Reply::JobList {
                guids: wire
                    .job_list
                    .map(|l| l.0.into_iter().map(|j| j.guid).collect())
                    .unwrap_or_default(),
            },
            ReplyKind::Status => Reply::Status(Box::new(
                wire.job_status.ok_or_else(|| missing("JobStatus"))?,
            )),
            ReplyKind::Info => {
                Reply::Info(Box::new(wire.job_info.ok_or_else(|| missing("JobInfo"))?))
            }
            ReplyKind::Evaluated => Reply::Evaluated {
                sources: wire
                    .evaluate
                    .ok_or_else(|| missing("JobEvaluateResult"))?
                    .sources,
            },
            ReplyKind::Profiles => Reply::Profiles {
                profiles: wire.profile_list.map(|l| l.0).unwrap_or_default(),
            },
            ReplyKind::Version => Reply::Version(VersionInfo {
                product: wire.product.unwrap_or_default(),
                version: wire.version.ok_or_else(|| missing("Version"))?,
                api_version: wire.api_version.unwrap_or_default(),
            }),
            ReplyKind::Node => Reply::Node(wire.node_status.ok_or_else(|| missing("NodeStatus"))?),
            ReplyKind::ServerNodes => Reply::ServerNodes {
                nodes: wire
                    .server_node_status
                    .ok_or_else(|| missing("ServerNodeStatus"))?
                    .0,
            },
        })
    }
}

fn render<T: Serialize>(wire: &T) -> String {
    quick_xml::se::to_string(wire).unwrap_or_default()
}

pub(super) const ELLIPSIS: &str = "...";

/// Bytes `text` takes as an attribute value once escaped and encoded.
fn attr_cost(text: &str) -> usize {
    text.chars().map(char_cost).sum()
}

fn char_cost(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        '"' | '\'' => 6,
        other => latin1::encoded_len(other.encode_utf8(&mut [0; 4])),
    }
}

/// `text` itself if it costs at most `room` bytes, else its longest prefix
/// that fits together with an ellipsis marking the cut.
fn fit(text: &str, room: usize) -> String {
    if attr_cost(text) <= room {
        return text.to_owned();
    }
    let mut used = ELLIPSIS.len();
    let mut kept = String::new();
    for c in text.chars() {
        used += char_cost(c);
        if used > room {
            break;
        }
        kept.push(c);
    }
    if room >= ELLIPSIS.len() {
        kept.push_str(ELLIPSIS);
    }
    kept
}

/// A reply holding one job, rendered by `render` within
/// [`SEED_REPLY_BUDGET`]: the room the fixed fields leave is shared fairly
/// between `Name`, `Description`, `SourceDescription` and `User`; a field
/// that needs less than its share leaves the rest to the others.
fn one_job_within_budget(job: &JobEntry, render: impl Fn(&JobEntry) -> String) -> String {
    let whole = render(job);
    if latin1::encoded_len(&whole) <= SEED_REPLY_BUDGET {
        return whole;
    }
    let mut job = job.clone();
    // Measure the fixed part with a one-byte placeholder in each shortened
    // field, so that the names of attributes omitted when empty count too.
    let placeholder = || "x".to_owned();
    let mut fields = [
        std::mem::replace(&mut job.name, placeholder()),
        std::mem::replace(&mut job.description, placeholder()),
        std::mem::replace(&mut job.source_description, placeholder()),
        std::mem::replace(&mut job.user, placeholder()),
    ];
    let fixed = latin1::encoded_len(&render(&job)) - fields.len();
    let mut room = SEED_REPLY_BUDGET.saturating_sub(fixed);
    let mut order: Vec<usize> = (0..fields.len()).collect();
    order.sort_by_key(|&i| attr_cost(&fields[i]));
    for (done, &i) in order.iter().enumerate() {
        let share = room / (order.len() - done);
        fields[i] = fit(&fields[i], share);
        room -= attr_cost(&fields[i]);
    }
    let [name, description, source_description, user] = fields;
    job.name = name;
    job.description = description;
    job.source_description = source_description;
    job.user = user;
    render(&job)
}

fn failed_within_budget(error: &str) -> String {
    let render = |error: &str| {
        quick_xml::se::to_string(&FailedWire {
            success: "FALSE",
            error,
        })
        .unwrap_or_default()
    };
    let fixed = latin1::encoded_len(&render(""));
    render(&fit(error, SEED_REPLY_BUDGET.saturating_sub(fixed)))
}
