//! Typed Carbon requests and replies, and their XML form (quick-xml + serde).
//!
//! Owns the document shapes of §2 of `docs/carbon-protocol.md`: which element
//! holds what, attribute names and order, the reply size budget. It knows no
//! sockets (see `frame`) and no job logic (see `encoder`).
//!
//! Carbon numbers sibling elements (`Module_0`, `Module_1`, `Criteria_0`,
//! `Job_0`…); [`Indexed`] maps such a family to a `Vec` in both directions.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use quick_xml::events::Event;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::guid::Guid;
use super::latin1;
use super::status::JobStatus;

/// Replies the seed's client parses must stay below this many payload bytes, so
/// the length field has at most three digits (see carbon-protocol.md §1).
pub const SEED_REPLY_BUDGET: usize = 999;

/// What is wrong with a request document.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MessageError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("the root element must be <cnpsXML>, found <{0}>")]
    WrongRoot(String),
    #[error("the document has no root element")]
    Empty,
    #[error("the request has no TaskType attribute")]
    MissingTaskType,
    #[error("unknown TaskType {0:?}; supported: JobQueue, JobStatusList")]
    UnknownTaskType(String),
    #[error("invalid {task} request: {reason}")]
    Invalid { task: &'static str, reason: String },
}

// ---------------------------------------------------------------------------
// Numbered element families
// ---------------------------------------------------------------------------

/// The name stem of a numbered element family, and how many members a
/// document may hold (a bound on the work one request can cause).
pub trait Family {
    const STEM: &'static str;
    const MAX: usize;
}

macro_rules! family {
    ($name:ident, $stem:literal, $max:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;
        impl Family for $name {
            const STEM: &'static str = $stem;
            const MAX: usize = $max;
        }
    };
}
family!(ModuleN, "Module_", 64);
family!(CriteriaN, "Criteria_", 64);
// Replies list every job a server has.
family!(JobN, "Job_", usize::MAX);

/// `<Stem_0 .../><Stem_1 .../>…` as an ordered list. Children with other
/// names are ignored; a repeated index is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed<T, F>(pub Vec<T>, PhantomData<F>);

impl<T, F> Indexed<T, F> {
    pub fn new(items: Vec<T>) -> Self {
        Indexed(items, PhantomData)
    }
}

impl<T, F> Default for Indexed<T, F> {
    fn default() -> Self {
        Indexed::new(Vec::new())
    }
}

impl<T: Serialize, F: Family> Serialize for Indexed<T, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (i, item) in self.0.iter().enumerate() {
            map.serialize_entry(&format!("{}{i}", F::STEM), item)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>, F: Family> Deserialize<'de> for Indexed<T, F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, F>(PhantomData<(T, F)>);
        impl<'de, T: Deserialize<'de>, F: Family> Visitor<'de> for V<T, F> {
            type Value = Indexed<T, F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "elements named {}0, {}1, …", F::STEM, F::STEM)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut items: BTreeMap<u32, T> = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let index = key
                        .strip_prefix(F::STEM)
                        .and_then(|n| n.parse::<u32>().ok());
                    let Some(index) = index else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if items.len() == F::MAX {
                        return Err(serde::de::Error::custom(format!(
                            "more than {} {}N elements",
                            F::MAX,
                            F::STEM
                        )));
                    }
                    if items.insert(index, map.next_value()?).is_some() {
                        return Err(serde::de::Error::custom(format!("{key} appears twice")));
                    }
                }
                Ok(Indexed::new(items.into_values().collect()))
            }
            // `<Sources/>` or `<Sources></Sources>` with nothing inside.
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Indexed::default())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Indexed::default())
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// A request a Carbon server understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    JobQueue(JobQueue),
    JobStatusList(JobStatusList),
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

/// One `Sources/Module_N`.
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

/// How a criterion compares a job field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    Like,
    LessThan,
    GreaterThan,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equal => "EQUAL",
            Operator::Like => "LIKE",
            Operator::LessThan => "LESSTHAN",
            Operator::GreaterThan => "GREATERTHAN",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operator {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            Operator::Equal,
            Operator::Like,
            Operator::LessThan,
            Operator::GreaterThan,
        ]
        .into_iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            format!("unknown Operator {text:?}; expected EQUAL, LIKE, LESSTHAN or GREATERTHAN")
        })
    }
}

serde_as_text!(Operator);

// Wire shapes of the requests (private: the public types above are the API).

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "@TaskType", default)]
    task_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "cnpsXML")]
struct JobQueueWire {
    #[serde(rename = "@TaskType", default)]
    task_type: String,
    #[serde(rename = "@JobName", default, skip_serializing_if = "Option::is_none")]
    job_name: Option<String>,
    #[serde(rename = "@User", default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(rename = "Sources", default)]
    sources: Indexed<Source, ModuleN>,
    #[serde(rename = "Destinations", default)]
    destinations: Indexed<Destination, ModuleN>,
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
    #[serde(rename = "@TaskType", default)]
    task_type: String,
    #[serde(rename = "Filter", default, skip_serializing_if = "Option::is_none")]
    filter: Option<Indexed<Criterion, CriteriaN>>,
}

fn invalid(task: &'static str) -> impl Fn(quick_xml::DeError) -> MessageError {
    move |e| MessageError::Invalid {
        task,
        reason: e.to_string(),
    }
}

impl Request {
    /// Parses a request document (already decoded to text).
    pub fn parse(text: &str) -> Result<Request, MessageError> {
        check_document(text)?;
        let envelope: Envelope =
            quick_xml::de::from_str(text).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let task = envelope.task_type.ok_or(MessageError::MissingTaskType)?;
        if task.eq_ignore_ascii_case("JobQueue") {
            let wire: JobQueueWire = quick_xml::de::from_str(text).map_err(invalid("JobQueue"))?;
            Ok(Request::JobQueue(JobQueue {
                job_name: wire.job_name,
                user: wire.user,
                sources: wire.sources.0,
                destinations: wire.destinations.0,
                priority: wire.project_settings.and_then(|p| p.priority),
            }))
        } else if task.eq_ignore_ascii_case("JobStatusList") {
            let wire: JobStatusListWire =
                quick_xml::de::from_str(text).map_err(invalid("JobStatusList"))?;
            Ok(Request::JobStatusList(JobStatusList {
                criteria: wire.filter.map(|f| f.0).unwrap_or_default(),
            }))
        } else {
            Err(MessageError::UnknownTaskType(task))
        }
    }

    /// The request as a document, ready for [`latin1::encode`].
    pub fn to_xml(&self) -> String {
        let written = match self {
            Request::JobQueue(job) => quick_xml::se::to_string(&JobQueueWire {
                task_type: "JobQueue".to_owned(),
                job_name: job.job_name.clone(),
                user: job.user.clone(),
                sources: Indexed::new(job.sources.clone()),
                destinations: Indexed::new(job.destinations.clone()),
                project_settings: job.priority.map(|p| ProjectSettings { priority: Some(p) }),
            }),
            Request::JobStatusList(list) => quick_xml::se::to_string(&JobStatusListWire {
                task_type: "JobStatusList".to_owned(),
                filter: (!list.criteria.is_empty()).then(|| Indexed::new(list.criteria.clone())),
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

/// Checks the document is well-formed, has no DTD and that its root is `cnpsXML`.
fn check_document(text: &str) -> Result<(), MessageError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut root: Option<String> = None;
    loop {
        match reader.read_event() {
            Err(e) => {
                return Err(MessageError::Malformed(format!(
                    "{e} (at byte {})",
                    reader.error_position()
                )));
            }
            Ok(Event::DocType(_)) => return Err(MessageError::Dtd),
            Ok(Event::Start(e) | Event::Empty(e)) if root.is_none() => {
                root = Some(e.name().0.to_owned());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
        }
    }
    match root {
        None => Err(MessageError::Empty),
        Some(name) if name == "cnpsXML" => Ok(()),
        Some(name) => Err(MessageError::WrongRoot(name)),
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

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
}

/// A reply from a Carbon server.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `JobQueue` accepted: the new job's GUID.
    Queued { guid: Guid },
    /// `JobStatusList`: the matching jobs.
    StatusList { jobs: Vec<JobEntry> },
    /// `Success="FALSE"`.
    Failed { error: String },
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct QueuedWire {
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
    #[serde(rename = "JobStatusList")]
    list: Indexed<&'a JobEntry, JobN>,
}

#[derive(Serialize)]
#[serde(rename = "cnpsXML")]
struct FailedWire<'a> {
    #[serde(rename = "@Success")]
    success: &'static str,
    #[serde(rename = "@Error")]
    error: &'a str,
}

/// Any reply, as a client reads it.
#[derive(Deserialize)]
struct ReplyWire {
    #[serde(rename = "@GUID", alias = "@Guid", default)]
    guid: Option<String>,
    #[serde(rename = "@Success", default)]
    success: Option<String>,
    #[serde(rename = "@Error", default)]
    error: Option<String>,
    #[serde(rename = "JobStatusList", default)]
    job_status_list: Option<Indexed<JobEntry, JobN>>,
}

impl Reply {
    /// The reply as a document. Replies the seed parses are kept within
    /// [`SEED_REPLY_BUDGET`] encoded bytes by shortening free text.
    pub fn to_xml(&self) -> String {
        let written = match self {
            Reply::Queued { guid } => quick_xml::se::to_string(&QueuedWire {
                guid: *guid,
                success: "TRUE",
            }),
            Reply::StatusList { jobs } if jobs.len() == 1 => {
                return status_list_within_budget(&jobs[0]);
            }
            Reply::StatusList { jobs } => quick_xml::se::to_string(&StatusListWire {
                success: "TRUE",
                list: Indexed::new(jobs.iter().collect()),
            }),
            Reply::Failed { error } => {
                return failed_within_budget(error);
            }
        };
        written.unwrap_or_default()
    }

    pub fn to_payload(&self) -> Vec<u8> {
        latin1::encode(&self.to_xml())
    }

    /// Parses a reply document (already decoded to text).
    pub fn parse(text: &str) -> Result<Reply, MessageError> {
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
        if let Some(list) = wire.job_status_list {
            return Ok(Reply::StatusList { jobs: list.0 });
        }
        match wire.guid {
            Some(guid) => Ok(Reply::Queued {
                guid: guid.parse().map_err(|e: super::guid::InvalidGuid| {
                    MessageError::Malformed(e.to_string())
                })?,
            }),
            None => Ok(Reply::StatusList { jobs: Vec::new() }),
        }
    }
}

const ELLIPSIS: &str = "...";

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

fn render_status_list(job: &JobEntry) -> String {
    quick_xml::se::to_string(&StatusListWire {
        success: "TRUE",
        list: Indexed::new(vec![job]),
    })
    .unwrap_or_default()
}

/// A one-job status list within [`SEED_REPLY_BUDGET`]: the room the fixed
/// fields leave is shared fairly between `Name`, `Description`,
/// `SourceDescription` and `User`; a field that needs less than its share
/// leaves the rest to the others.
fn status_list_within_budget(job: &JobEntry) -> String {
    let whole = render_status_list(job);
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
    let fixed = latin1::encoded_len(&render_status_list(&job)) - fields.len();
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
    render_status_list(&job)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's submit template, exactly as printed in the article (its line
    /// breaks inside `CML_P_Path` included).
    pub const SEED_SUBMIT: &str = "<cnpsXML TaskType=\"JobQueue\">\n<Sources>\n<Module_0 Filename=\"c:\\videoshare\\uploaded\\holiday.flv\"/>\n</Sources>\n<Destinations><Module_0\nPresetGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nModuleGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nAssignedTags=\"\"><ModuleData CML_P_Path=\"C:\\Program\nFiles\\Adobe\\Flash Media Server\n3.5\\applications\\videoshare\\streams\\_definst_\" CML_P_BaseFileName=\"%s\"/><PostconversionTasks/><Filter_1/><Filter_0/></Module_0></Destinations>\n</cnpsXML>";

    pub const SEED_STATUS: &str = "<cnpsXML TaskType=\"JobStatusList\">\n<Filter>\n<Criteria_0 Parameter =\"Guid\" Operator=\"EQUAL\" Value=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" />\n</Filter>\n</cnpsXML>";

    fn sample_job() -> JobEntry {
        JobEntry {
            name: "holiday.flv".into(),
            guid: "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
                .parse()
                .expect("guid"),
            state: "Active".into(),
            status: JobStatus::Started,
            progress: 42,
            description: String::new(),
            user: String::new(),
            source_description: "holiday.flv".into(),
            agent_ip: "127.0.0.1".into(),
            priority: 100,
            check_in_time: Some("11/25/26 09:30:00".into()),
            start_time: Some("11/25/26 09:30:01".into()),
            completed_time: None,
            check_in_time_cnlt: Some("2026-11-25 09:30:00".into()),
            start_time_cnlt: Some("2026-11-25 09:30:01".into()),
            completed_time_cnlt: None,
        }
    }

    #[test]
    fn parses_the_seed_submit_template() {
        let Request::JobQueue(job) = Request::parse(SEED_SUBMIT).expect("parses") else {
            panic!("not a JobQueue");
        };
        assert_eq!(
            job.sources,
            vec![Source {
                filename: "c:\\videoshare\\uploaded\\holiday.flv".into()
            }]
        );
        assert_eq!(job.destinations.len(), 1);
        let dest = &job.destinations[0];
        assert_eq!(
            dest.preset(),
            Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}")
        );
        assert_eq!(
            dest.module_data.path.as_deref(),
            Some(
                "C:\\Program Files\\Adobe\\Flash Media Server 3.5\\applications\\videoshare\\streams\\_definst_"
            ),
            "line breaks in attribute values are normalised to spaces"
        );
        assert_eq!(dest.module_data.base_file_name.as_deref(), Some("%s"));
        assert_eq!(job.priority, None);
    }

    #[test]
    fn parses_the_seed_status_template_with_space_before_equals() {
        let Request::JobStatusList(list) = Request::parse(SEED_STATUS).expect("parses") else {
            panic!("not a JobStatusList");
        };
        assert_eq!(
            list,
            JobStatusList::by_guid(
                "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
                    .parse()
                    .expect("guid")
            )
        );
    }

    #[test]
    fn requests_round_trip() {
        let job = JobQueue {
            job_name: Some("a & b".into()),
            user: Some("ann".into()),
            sources: vec![Source {
                filename: "/data/uploaded/x \"y\".mp4".into(),
            }],
            destinations: vec![Destination {
                preset_guid: Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}".into()),
                module_guid: Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}".into()),
                module_data: ModuleData {
                    path: Some("/data/streams".into()),
                    base_file_name: Some("%s".into()),
                },
            }],
            priority: Some(7),
        };
        let req = Request::JobQueue(job);
        assert_eq!(Request::parse(&req.to_xml()).expect("round trip"), req);
        let list = Request::JobStatusList(JobStatusList::by_guid(Guid::new_random()));
        assert_eq!(Request::parse(&list.to_xml()).expect("round trip"), list);
        let all = Request::JobStatusList(JobStatusList::default());
        assert_eq!(Request::parse(&all.to_xml()).expect("round trip"), all);
    }

    #[test]
    fn refuses_bad_documents_with_reasons() {
        type Check = fn(&MessageError) -> bool;
        let cases: [(&str, Check); 7] = [
            ("<cnpsXML TaskType=\"JobQueue\"><Sources>", |e| {
                matches!(e, MessageError::Malformed(_))
            }),
            ("", |e| matches!(e, MessageError::Empty)),
            (
                "<other TaskType=\"JobQueue\"/>",
                |e| matches!(e, MessageError::WrongRoot(n) if n == "other"),
            ),
            ("<cnpsXML/>", |e| matches!(e, MessageError::MissingTaskType)),
            (
                "<cnpsXML TaskType=\"Reboot\"/>",
                |e| matches!(e, MessageError::UnknownTaskType(t) if t == "Reboot"),
            ),
            (
                "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><cnpsXML TaskType=\"JobQueue\"/>",
                |e| matches!(e, MessageError::Dtd),
            ),
            (
                "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"Guid\" Operator=\"NEAR\" Value=\"x\"/></Filter></cnpsXML>",
                |e| matches!(e, MessageError::Invalid { reason, .. } if reason.contains("NEAR")),
            ),
        ];
        for (doc, expected) in cases {
            let err = Request::parse(doc).expect_err(doc);
            assert!(expected(&err), "{doc:?} gave {err:?}");
        }
    }

    #[test]
    fn numbered_families_are_bounded_and_unique() {
        let sources: String = (0..65)
            .map(|i| format!("<Module_{i} Filename=\"/a\"/>"))
            .collect();
        let doc = format!("<cnpsXML TaskType=\"JobQueue\"><Sources>{sources}</Sources></cnpsXML>");
        let err = Request::parse(&doc).expect_err("too many");
        assert!(err.to_string().contains("more than 64 Module_N"), "{err}");
        let twice = "<cnpsXML TaskType=\"JobQueue\"><Sources><Module_0 Filename=\"/a\"/><Module_0 Filename=\"/b\"/></Sources></cnpsXML>";
        assert!(
            Request::parse(twice)
                .expect_err("dup")
                .to_string()
                .contains("Module_0 appears twice")
        );
    }

    #[test]
    fn golden_job_queue_reply() {
        let guid: Guid = "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
            .parse()
            .expect("guid");
        assert_eq!(
            Reply::Queued { guid }.to_xml(),
            "<cnpsXML GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" Success=\"TRUE\"/>"
        );
    }

    #[test]
    fn golden_status_list_reply() {
        let xml = Reply::StatusList {
            jobs: vec![sample_job()],
        }
        .to_xml();
        assert_eq!(
            xml,
            "<cnpsXML Success=\"TRUE\"><JobStatusList><Job_0 Name=\"holiday.flv\" \
             GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" State=\"Active\" Status=\"STARTED\" \
             Progress.DWD=\"42\" User=\"\" SourceDescription=\"holiday.flv\" AgentIP=\"127.0.0.1\" \
             Priority.DWD=\"100\" CheckInTime=\"11/25/26 09:30:00\" StartTime=\"11/25/26 09:30:01\" \
             CheckInTime_CNLT=\"2026-11-25 09:30:00\" StartTime_CNLT=\"2026-11-25 09:30:01\"/>\
             </JobStatusList></cnpsXML>"
        );
        assert_eq!(
            Reply::parse(&xml).expect("parses"),
            Reply::StatusList {
                jobs: vec![sample_job()]
            }
        );
    }

    #[test]
    fn golden_failed_reply() {
        assert_eq!(
            Reply::Failed {
                error: "unknown preset \"x\"".into()
            }
            .to_xml(),
            "<cnpsXML Success=\"FALSE\" Error=\"unknown preset &quot;x&quot;\"/>"
        );
    }

    #[test]
    fn long_fields_are_shortened_to_fit_the_seed_budget() {
        let mut job = sample_job();
        job.name = "ü&<".repeat(800);
        job.source_description = "日本語".repeat(300);
        job.description = "x".repeat(5000);
        job.user = "u".repeat(2000);
        job.completed_time = Some("11/25/26 09:31:00".into());
        job.completed_time_cnlt = Some("2026-11-25 09:31:00".into());
        let reply = Reply::StatusList { jobs: vec![job] };
        let payload = reply.to_payload();
        assert!(
            payload.len() <= SEED_REPLY_BUDGET,
            "{} bytes",
            payload.len()
        );
        let Reply::StatusList { jobs } = Reply::parse(&latin1::decode(&payload)).expect("parses")
        else {
            panic!("not a status list");
        };
        assert!(jobs[0].name.ends_with(ELLIPSIS) && jobs[0].name.starts_with("ü&<"));
        assert_eq!(jobs[0].status, JobStatus::Started);

        let failed = Reply::Failed {
            error: "<".repeat(3000),
        }
        .to_payload();
        assert!(failed.len() <= SEED_REPLY_BUDGET);
    }

    /// What the seed's Flex `dataHandler` does with a reply frame: skip 13 + 1
    /// bytes, read 2 as the "length", skip 1, parse everything else as XML.
    pub fn seed_view(frame: &[u8]) -> &[u8] {
        &frame[17..]
    }

    #[test]
    fn the_seed_client_can_parse_our_framed_replies() {
        let guid = Guid::new_random();
        let queued = super::super::frame::frame_bytes(&Reply::Queued { guid }.to_payload());
        let text = latin1::decode(seed_view(&queued));
        // attributes()[0] is the GUID
        let mut reader = quick_xml::Reader::from_str(text.trim_start());
        let Ok(Event::Empty(root)) = reader.read_event() else {
            panic!("{text}")
        };
        let first = root
            .attributes()
            .next()
            .expect("an attribute")
            .expect("valid");
        assert_eq!(first.key.0, "GUID");
        assert_eq!(
            first
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .expect("value"),
            guid.to_string()
        );
    }
}
