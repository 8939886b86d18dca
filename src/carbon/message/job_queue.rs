//! `TaskType="JobQueue"`: one job, as the manual's §6 builds it.
//!
//! Every form the manual describes either becomes a field here or is
//! refused by name ([`MessageError::Unsupported`]): a client is never left
//! believing a notification, filter or FTP upload will happen when it will
//! not. Blank elements (`<PostconversionTasks/>`, `<Filter_0/>`,
//! `AssignedTags=""`, as the seed sends) ask for nothing and are accepted.

use super::{MessageError, TaskType, number, signed, unsupported};
use crate::carbon::guid::Guid;
use crate::carbon::xml::Element;

/// Most sources or destinations one job may have (a bound on the work one
/// request can cause).
pub const MAX_MODULES: usize = 64;

/// 27 MHz ticks in one second: the unit of Carbon times.
pub const TICKS_PER_SECOND: u64 = 27_000_000;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobQueue {
    pub job_name: Option<String>,
    /// `Description`: kept and reported as the job's description.
    pub description: Option<String>,
    pub user: Option<String>,
    pub sources: Vec<Source>,
    pub destinations: Vec<Destination>,
    /// `ProjectSettings Priority.DWD`, 0–255 (default 100 when absent).
    pub priority: Option<u32>,
    /// Settings the request carries that this encoder does not apply
    /// (exporter overrides such as `CML_V_SizeX.DWD`: the preset decides),
    /// each named with where it was. Accepted, and reported as warnings of
    /// the job, so that a client copying a saved project still works and
    /// still learns what was not applied.
    pub unapplied: Vec<String>,
}

/// One `Sources/Module_n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub file: SourceFile,
    /// `InOutPoints`: the part of the source to encode.
    pub trim: Option<Trim>,
    /// `PostconversionTasks/FileCopy_n`: copies of the source once encoded.
    pub copies: Vec<FileCopy>,
    /// See [`JobQueue::unapplied`].
    pub unapplied: Vec<String>,
}

/// Where a source's media comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceFile {
    /// `Filename` (or `RemoteFilename`, `FullUNCFilename`): one file.
    One(String),
    /// `MultiSource.DWD="1"`: one file per media type.
    Multi(MultiSource),
}

/// `MultiSource.DWD="1"`: `ModuleData/SourceModules/MultiSrcModule_n` and
/// the `StreamTypeTable` saying which file gives the video and the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiSource {
    pub files: Vec<String>,
    pub video: Track,
    pub audio: Track,
}

/// Which `MultiSrcModule_n` a media type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// `StreamType=0`: the master's own track (`MultiSrcModule_0`).
    Master,
    /// `StreamType=1`: none.
    Absent,
    /// `StreamType=2`: `MultiSrcModule_<StreamPtr>`.
    From(usize),
}

/// `InOutPoints Inpoint_0.QWD` / `Outpoint_0.QWD`, in 27 MHz ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    pub in_ticks: u64,
    /// `None`: to the end (`-1`).
    pub out_ticks: Option<u64>,
}

/// `FileCopy_n`: copy a file into another folder once the job is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    pub target_folder: String,
    /// The copy's name; default: the file's own.
    pub target_file: Option<String>,
    /// `OverWrite.DWD="1"`: replace a file already there.
    pub overwrite: bool,
}

/// One `Destinations/Module_n`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Destination {
    pub preset_guid: Option<String>,
    pub module_guid: Option<String>,
    /// `DestinationName`: a label, kept and reported.
    pub name: Option<String>,
    pub module_data: ModuleData,
    /// `PostconversionTasks/FileCopy_n`: copies of the output.
    pub copies: Vec<FileCopy>,
    /// See [`JobQueue::unapplied`].
    pub unapplied: Vec<String>,
}

/// `ModuleData` of a destination: where the output goes and how it is named.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModuleData {
    /// `CML_P_Path`, else `FullUNCPath`; absent: the preset's own folder.
    pub path: Option<String>,
    /// `CML_P_BaseFileName`; absent: `%s`, the source's base name.
    pub base_file_name: Option<String>,
}

impl Source {
    /// A plain one-file source.
    pub fn file(name: impl Into<String>) -> Source {
        Source {
            file: SourceFile::One(name.into()),
            trim: None,
            copies: Vec::new(),
            unapplied: Vec::new(),
        }
    }

    /// The file that names the job: the one file, or the video's.
    pub fn main_file(&self) -> &str {
        match &self.file {
            SourceFile::One(f) => f,
            SourceFile::Multi(m) => m
                .file_of(m.video)
                .or_else(|| m.files.first().map(String::as_str))
                .unwrap_or_default(),
        }
    }
}

impl MultiSource {
    /// The file a track comes from, `None` for [`Track::Absent`].
    pub fn file_of(&self, track: Track) -> Option<&str> {
        match track {
            Track::Master => self.files.first().map(String::as_str),
            Track::Absent => None,
            Track::From(i) => self.files.get(i).map(String::as_str),
        }
    }
}

impl Destination {
    /// The preset this destination asks for: `PresetGUID`, else `ModuleGUID`.
    pub fn preset(&self) -> Option<&str> {
        self.preset_guid
            .as_deref()
            .filter(|g| !g.trim().is_empty())
            .or(self.module_guid.as_deref())
    }
}

impl JobQueue {
    /// A job in the seed's shape: one source, encoded with `preset` into
    /// `dest_dir` under the source's base name (`CML_P_BaseFileName="%s"`).
    /// The preset is named as both `PresetGUID` and `ModuleGUID`, as the seed does.
    pub fn single(source: &str, preset: Guid, dest_dir: &str) -> Self {
        let preset = preset.to_string();
        JobQueue {
            sources: vec![Source::file(source)],
            destinations: vec![Destination {
                preset_guid: Some(preset.clone()),
                module_guid: Some(preset),
                module_data: ModuleData {
                    path: Some(dest_dir.to_owned()),
                    base_file_name: Some("%s".to_owned()),
                },
                ..Destination::default()
            }],
            ..JobQueue::default()
        }
    }

    pub(super) fn parse(root: &Element) -> Result<JobQueue, MessageError> {
        const TASK: TaskType = TaskType::JobQueue;
        for name in ["Notify", "PreconversionTasks", "PreConversionTasks"] {
            refuse_unless_blank(root.find(name), name)?;
        }
        for name in ["EmailSettings", "FTPSettings", "WatchSource"] {
            if root.find(name).is_some() {
                return Err(unsupported(TASK, format!("<{name}>")));
            }
        }
        let sources = modules(root, "Sources", parse_source)?;
        let destinations = modules(root, "Destinations", parse_destination)?;
        for (what, count) in [
            ("Sources", sources.len()),
            ("Destinations", destinations.len()),
        ] {
            if count > MAX_MODULES {
                return Err(MessageError::invalid(
                    TASK,
                    format!("{what} has {count} modules; at most {MAX_MODULES} are accepted"),
                ));
            }
        }
        let (priority, unapplied) = match root.find("ProjectSettings") {
            Some(settings) => parse_project_settings(settings)?,
            None => (None, Vec::new()),
        };
        // Older clients put the priority on the root.
        let priority = match priority {
            Some(p) => Some(p),
            None => match number(TASK, root, "Priority.DWD")? {
                Some(p) => Some(p),
                None => number(TASK, root, "JobPriority.DWD")?,
            },
        };
        Ok(JobQueue {
            job_name: root.get("JobName").map(str::to_owned),
            description: root.get("Description").map(str::to_owned),
            user: root.get("User").map(str::to_owned),
            sources,
            destinations,
            priority,
            unapplied,
        })
    }

    /// Every setting of the request that is not applied, in document order.
    pub fn all_unapplied(&self) -> Vec<String> {
        let mut all = self.unapplied.clone();
        all.extend(
            self.sources
                .iter()
                .flat_map(|s| s.unapplied.iter().cloned()),
        );
        all.extend(
            self.destinations
                .iter()
                .flat_map(|d| d.unapplied.iter().cloned()),
        );
        all
    }

    /// The request's `<cnpsXML>` (or, named `Job`, `JobCommand Query`'s
    /// answer): the same document a client would send.
    pub fn to_element(&self, name: &str) -> Element {
        let mut root = Element::new(name)
            .attr("TaskType", TaskType::JobQueue)
            .opt_attr("JobName", self.job_name.as_deref())
            .opt_attr("Description", self.description.as_deref())
            .opt_attr("User", self.user.as_deref());
        root = root.child(
            Element::new("Sources")
                .numbered_children("Module", self.sources.iter().map(source_element)),
        );
        root = root.child(
            Element::new("Destinations")
                .numbered_children("Module", self.destinations.iter().map(destination_element)),
        );
        if let Some(priority) = self.priority {
            root = root.child(Element::new("ProjectSettings").attr("Priority.DWD", priority));
        }
        root
    }
}

/// The `Module_n` of `<Sources>` or `<Destinations>`, each read by `parse`.
fn modules<T>(
    root: &Element,
    list: &str,
    parse: fn(&Element, usize) -> Result<T, MessageError>,
) -> Result<Vec<T>, MessageError> {
    let Some(list_element) = root.find(list) else {
        return Ok(Vec::new());
    };
    list_element
        .numbered("Module")
        .map_err(|e| MessageError::invalid(TaskType::JobQueue, format!("{list}: {e}")))?
        .into_iter()
        .enumerate()
        .map(|(i, m)| parse(m, i))
        .collect()
}

/// Refuses an element that asks for something (`what` names it) unless it
/// is blank.
fn refuse_unless_blank(element: Option<&Element>, what: &str) -> Result<(), MessageError> {
    match element {
        Some(e) if !e.is_blank() => Err(unsupported(TaskType::JobQueue, format!("<{what}>"))),
        _ => Ok(()),
    }
}

fn flag(e: &Element, name: &str) -> Result<bool, MessageError> {
    Ok(number(TaskType::JobQueue, e, name)?.is_some_and(|n: u32| n != 0))
}

fn parse_source(m: &Element, index: usize) -> Result<Source, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let at = |what: &str| format!("Sources/Module_{index} {what}");
    for (name, what) in [
        ("RemoteFTPFilename", "RemoteFTPFilename (FTP sources)"),
        ("Markers", "<Markers>"),
    ] {
        if m.get(name).is_some_and(|v| !v.trim().is_empty()) {
            return Err(unsupported(TASK, at(what)));
        }
        refuse_unless_blank(m.find(name), &at(what))?;
    }
    for (name, what) in [
        (
            "ComplexSource.DWD",
            "ComplexSource.DWD=\"1\" (one video and several audio files)",
        ),
        (
            "TransitionSource.DWD",
            "TransitionSource.DWD=\"1\" (transitions)",
        ),
    ] {
        if flag(m, name)? {
            return Err(unsupported(TASK, at(what)));
        }
    }
    check_children(m, &at(""))?;
    let names: Vec<&str> = ["Filename", "RemoteFilename", "FullUNCFilename"]
        .into_iter()
        .filter(|n| m.get(n).is_some_and(|v| !v.trim().is_empty()))
        .collect();
    if names.len() > 1 {
        return Err(MessageError::invalid(
            TASK,
            at(&format!(
                "has {}: they are mutually exclusive, send one",
                names.join(" and ")
            )),
        ));
    }
    let mut unapplied = Vec::new();
    let one = names
        .first()
        .and_then(|n| m.get(n))
        .or_else(|| m.get_any(&["Filename", "RemoteFilename", "FullUNCFilename"]))
        .map(str::to_owned);
    let file = if flag(m, "MultiSource.DWD")? {
        let multi = parse_multi_source(m, &at("MultiSource"))?;
        if let Some(own) = &one
            && multi.files.first() != Some(own)
        {
            return Err(MessageError::invalid(
                TASK,
                at(
                    "has both Filename and MultiSource.DWD=\"1\": name the files in MultiSrcModule_n",
                ),
            ));
        }
        SourceFile::Multi(multi)
    } else {
        let data = m.find("ModuleData");
        if data.is_some_and(|d| d.children.iter().any(|c| !c.is_blank())) {
            return Err(unsupported(
                TASK,
                at("<ModuleData> children (special sources)"),
            ));
        }
        unapplied.extend(
            data.map(|d| not_applied(d, &[], &at("ModuleData")))
                .unwrap_or_default(),
        );
        SourceFile::One(one.unwrap_or_default())
    };
    Ok(Source {
        file,
        trim: parse_trim(m, &at("InOutPoints"))?,
        copies: parse_copies(m, &at("PostconversionTasks"))?,
        unapplied,
    })
}

/// Children a source or destination module may hold that videoshare does
/// not carry out: refused unless blank.
fn check_children(m: &Element, at: &str) -> Result<(), MessageError> {
    for child in &m.children {
        let name = child.name.as_str();
        let known = [
            "ModuleData",
            "InOutPoints",
            "PostconversionTasks",
            "PostConversionTasks",
            "Markers",
        ];
        if known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        // Filter_0, Filter_1, Filter_Video, Filter_Audio, Notify,
        // ConversionErrorTasks, FTPSettings, …: all ask for work we do not do.
        refuse_unless_blank(Some(child), &format!("{at}<{name}>"))?;
    }
    Ok(())
}

fn parse_multi_source(m: &Element, at: &str) -> Result<MultiSource, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let data = m.find("ModuleData").ok_or_else(|| {
        MessageError::invalid(
            TASK,
            format!("{at}: no <ModuleData><SourceModules><MultiSrcModule_0 Filename=\"…\"/>"),
        )
    })?;
    let holder = data.find("SourceModules").unwrap_or(data);
    let files: Vec<String> = holder
        .numbered("MultiSrcModule")
        .map_err(|e| MessageError::invalid(TASK, format!("{at}: {e}")))?
        .into_iter()
        .map(|f| f.get("Filename").unwrap_or_default().to_owned())
        .collect();
    if files.is_empty() || files.iter().any(|f| f.trim().is_empty()) {
        return Err(MessageError::invalid(
            TASK,
            format!(
                "{at}: every MultiSrcModule_n needs a Filename, and there must be at least one"
            ),
        ));
    }
    let table = data.find("StreamTypeTable");
    let track = |index: usize, default: Track| -> Result<Track, MessageError> {
        let Some(table) = table else {
            return Ok(default);
        };
        let kind: Option<u32> = number(TASK, table, &format!("StreamType_{index}.DWD"))?;
        let pointer: Option<u32> = number(TASK, table, &format!("StreamPtr_{index}.DWD"))?;
        let track = match kind {
            None => default,
            Some(0) => Track::Master,
            Some(1) => Track::Absent,
            Some(2) => Track::From(pointer.unwrap_or(0) as usize),
            Some(other) => {
                return Err(MessageError::invalid(
                    TASK,
                    format!(
                        "{at}: StreamType_{index}.DWD={other}; expected 0 (master), 1 (none) or 2 (MultiSrcModule_<StreamPtr>)"
                    ),
                ));
            }
        };
        if let Track::From(i) = track
            && i >= files.len()
        {
            return Err(MessageError::invalid(
                TASK,
                format!("{at}: StreamPtr_{index}.DWD={i} but there is no MultiSrcModule_{i}"),
            ));
        }
        Ok(track)
    };
    let default_audio = if files.len() > 1 {
        Track::From(1)
    } else {
        Track::Master
    };
    let video = track(0, Track::Master)?;
    let audio = track(1, default_audio)?;
    Ok(MultiSource {
        files,
        video,
        audio,
    })
}

fn parse_trim(m: &Element, at: &str) -> Result<Option<Trim>, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let points = m.find("InOutPoints");
    let (inpoint, outpoint) = match points {
        Some(p) => {
            let ins = p.numbered_attrs("Inpoint", ".QWD");
            let outs = p.numbered_attrs("Outpoint", ".QWD");
            if ins.iter().chain(&outs).any(|(i, _)| *i > 0) {
                return Err(unsupported(
                    TASK,
                    format!("{at}: more than one in/out segment"),
                ));
            }
            (ins.first().map(|(_, v)| *v), outs.first().map(|(_, v)| *v))
        }
        // The legacy form, on the module itself.
        None => (m.get("Inpoint.QWD"), m.get("Outpoint.QWD")),
    };
    if inpoint.is_none() && outpoint.is_none() {
        return Ok(None);
    }
    let ticks = |name: &str, text: Option<&str>| -> Result<Option<i64>, MessageError> {
        text.map(|t| signed(TASK, name, t)).transpose()
    };
    let in_ticks = ticks("Inpoint_0.QWD", inpoint)?.unwrap_or(0);
    let out_ticks = ticks("Outpoint_0.QWD", outpoint)?;
    // The legacy `Inpoint.QWD="-1"` means "not set": the start.
    let in_ticks = if in_ticks == -1 { 0 } else { in_ticks };
    if in_ticks < 0 {
        return Err(MessageError::invalid(
            TASK,
            format!("{at}: Inpoint_0.QWD {in_ticks} is negative"),
        ));
    }
    let out_ticks = match out_ticks {
        None | Some(-1) => None,
        Some(out) if out <= in_ticks => {
            return Err(MessageError::invalid(
                TASK,
                format!(
                    "{at}: Outpoint_0.QWD {out} is not after Inpoint_0.QWD {in_ticks} (27 MHz ticks; -1 = the end)"
                ),
            ));
        }
        Some(out) => Some(out as u64),
    };
    Ok(Some(Trim {
        in_ticks: in_ticks as u64,
        out_ticks,
    }))
}

fn parse_copies(m: &Element, at: &str) -> Result<Vec<FileCopy>, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let Some(tasks) = m.find_any(&["PostconversionTasks", "PostConversionTasks"]) else {
        return Ok(Vec::new());
    };
    for child in &tasks.children {
        let is_copy = child.name.len() > "FileCopy_".len()
            && child.name[.."FileCopy_".len()].eq_ignore_ascii_case("FileCopy_");
        if !is_copy {
            // FTPUpload_n, FileDelete, ExternalProcess_n: even blank, they ask for work.
            return Err(unsupported(TASK, format!("{at}/<{}>", child.name)));
        }
        refuse_unless_blank(child.find("Notify"), &format!("{at}/{}/Notify", child.name))?;
    }
    tasks
        .numbered("FileCopy")
        .map_err(|e| MessageError::invalid(TASK, format!("{at}: {e}")))?
        .into_iter()
        .map(|c| {
            let target_folder = c
                .get("TargetFolder")
                .filter(|f| !f.trim().is_empty())
                .ok_or_else(|| {
                    MessageError::invalid(TASK, format!("{at}/{}: TargetFolder is missing", c.name))
                })?;
            Ok(FileCopy {
                target_folder: target_folder.to_owned(),
                target_file: c
                    .get("TargetFile")
                    .filter(|f| !f.trim().is_empty())
                    .map(str::to_owned),
                overwrite: flag(c, "OverWrite.DWD")?,
            })
        })
        .collect()
}

fn parse_destination(m: &Element, index: usize) -> Result<Destination, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let at = |what: &str| format!("Destinations/Module_{index} {what}");
    for name in ["AssignedTags", "AssignedAgentIPs"] {
        if m.get(name).is_some_and(|v| !v.trim().is_empty()) {
            return Err(unsupported(
                TASK,
                at(&format!(
                    "{name} (this encoder has no tags or agents to choose)"
                )),
            ));
        }
    }
    for child in &m.children {
        let known = ["ModuleData", "PostconversionTasks", "PostConversionTasks"];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(&child.name)) {
            refuse_unless_blank(Some(child), &at(&format!("<{}>", child.name)))?;
        }
    }
    let data = m.find("ModuleData");
    let unapplied = data
        .map(|d| {
            not_applied(
                d,
                &["CML_P_Path", "CML_P_BaseFileName", "FullUNCPath"],
                &at("ModuleData"),
            )
        })
        .unwrap_or_default();
    let get = |name: &str| {
        data.and_then(|d| d.get(name))
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
    };
    Ok(Destination {
        preset_guid: m.get("PresetGUID").map(str::to_owned),
        module_guid: m.get("ModuleGUID").map(str::to_owned),
        name: m.get("DestinationName").map(str::to_owned),
        module_data: ModuleData {
            path: get("CML_P_Path").or_else(|| get("FullUNCPath")),
            base_file_name: get("CML_P_BaseFileName"),
        },
        copies: parse_copies(m, &at("PostconversionTasks"))?,
        unapplied,
    })
}

/// The attributes with a value that are not among `known`, as
/// "`at` NAME=\"VALUE\"": settings (an exporter's `CML_V_…`, say) this
/// encoder does not apply.
fn not_applied(e: &Element, known: &[&str], at: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(k, v)| !v.trim().is_empty() && !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        .map(|(k, v)| format!("{at} {k}=\"{v}\""))
        .collect()
}

fn parse_project_settings(s: &Element) -> Result<(Option<u32>, Vec<String>), MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let unapplied = not_applied(
        s,
        &[
            "Priority.DWD",
            "JobPriority.DWD",
            "Stitching.DWD",
            "TempDir",
            "MultiTargetSplitting.DWD",
            "RenderMacroGrid.DWD",
            "MacroGridSegments.DWD",
            "AssignedTags",
            "AssignedAgentIPs",
            "KernelGUID",
        ],
        "ProjectSettings",
    );
    for (name, what) in [
        (
            "Stitching.DWD",
            "ProjectSettings Stitching.DWD=\"1\" (joining sources)",
        ),
        (
            "MultiTargetSplitting.DWD",
            "ProjectSettings MultiTargetSplitting.DWD=\"1\"",
        ),
        (
            "RenderMacroGrid.DWD",
            "ProjectSettings RenderMacroGrid.DWD=\"1\" (segmented rendering)",
        ),
    ] {
        if flag(s, name)? {
            return Err(unsupported(TASK, what.to_owned()));
        }
    }
    for name in ["AssignedTags", "AssignedAgentIPs", "KernelGUID"] {
        if s.get(name).is_some_and(|v| !v.trim().is_empty()) {
            return Err(unsupported(TASK, format!("ProjectSettings {name}")));
        }
    }
    let priority = match number(TASK, s, "Priority.DWD")? {
        Some(p) => Some(p),
        None => number(TASK, s, "JobPriority.DWD")?,
    };
    Ok((priority, unapplied))
}

fn copies_element(copies: &[FileCopy]) -> Element {
    Element::new("PostconversionTasks").numbered_children(
        "FileCopy",
        copies.iter().map(|c| {
            Element::new("FileCopy")
                .attr("TargetFolder", &c.target_folder)
                .opt_attr("TargetFile", c.target_file.as_deref())
                .attr("OverWrite.DWD", u8::from(c.overwrite))
        }),
    )
}

fn source_element(s: &Source) -> Element {
    let mut e = Element::new("Module");
    match &s.file {
        SourceFile::One(f) => e = e.attr("Filename", f),
        SourceFile::Multi(m) => {
            let code = |t: Track| match t {
                Track::Master => (0, 0),
                Track::Absent => (1, 0),
                Track::From(i) => (2, i),
            };
            let (v, vp) = code(m.video);
            let (a, ap) = code(m.audio);
            e = e.attr("MultiSource.DWD", 1).child(
                Element::new("ModuleData")
                    .child(
                        Element::new("StreamTypeTable")
                            .attr("StreamType_0.DWD", v)
                            .attr("StreamPtr_0.DWD", vp)
                            .attr("StreamType_1.DWD", a)
                            .attr("StreamPtr_1.DWD", ap),
                    )
                    .child(
                        Element::new("SourceModules").numbered_children(
                            "MultiSrcModule",
                            m.files
                                .iter()
                                .map(|f| Element::new("MultiSrcModule").attr("Filename", f)),
                        ),
                    ),
            );
        }
    }
    if let Some(trim) = s.trim {
        let out = trim.out_ticks.map_or(-1, |t| t as i64);
        e = e.child(
            Element::new("InOutPoints")
                .attr("Inpoint_0.QWD", trim.in_ticks)
                .attr("Outpoint_0.QWD", out),
        );
    }
    if !s.copies.is_empty() {
        e = e.child(copies_element(&s.copies));
    }
    e
}

fn destination_element(d: &Destination) -> Element {
    let data = Element::new("ModuleData")
        .opt_attr("CML_P_Path", d.module_data.path.as_deref())
        .opt_attr(
            "CML_P_BaseFileName",
            d.module_data.base_file_name.as_deref(),
        );
    let mut e = Element::new("Module")
        .opt_attr("PresetGUID", d.preset_guid.as_deref())
        .opt_attr("ModuleGUID", d.module_guid.as_deref())
        .opt_attr("DestinationName", d.name.as_deref())
        .child(data);
    if !d.copies.is_empty() {
        e = e.child(copies_element(&d.copies));
    }
    e
}
