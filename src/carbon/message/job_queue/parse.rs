//! Reading a `JobQueue` from its `<cnpsXML>` element.

use super::{
    Destination, FileCopy, JobQueue, MAX_MODULES, ModuleData, MultiSource, Source, SourceFile,
    Track, Trim,
};
use crate::carbon::message::{MessageError, TaskType, number, signed, unsupported};
use crate::carbon::xml::Element;

impl JobQueue {
    pub(crate) fn parse(root: &Element) -> Result<JobQueue, MessageError> {
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
        if m.value(name).is_some() {
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
        .filter(|n| m.value(n).is_some())
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
            && child
                .name
                .get(.."FileCopy_".len())
                .is_some_and(|stem| stem.eq_ignore_ascii_case("FileCopy_"));
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
            let target_folder = c.value("TargetFolder").ok_or_else(|| {
                MessageError::invalid(TASK, format!("{at}/{}: TargetFolder is missing", c.name))
            })?;
            Ok(FileCopy {
                target_folder: target_folder.to_owned(),
                target_file: c.value("TargetFile").map(str::to_owned),
                overwrite: flag(c, "OverWrite.DWD")?,
            })
        })
        .collect()
}

fn parse_destination(m: &Element, index: usize) -> Result<Destination, MessageError> {
    const TASK: TaskType = TaskType::JobQueue;
    let at = |what: &str| format!("Destinations/Module_{index} {what}");
    for name in ["AssignedTags", "AssignedAgentIPs"] {
        if m.value(name).is_some() {
            return Err(unsupported(
                TASK,
                at(&format!(
                    "{name} (this encoder has no tags or agents to choose)"
                )),
            ));
        }
    }
    for child in &m.children {
        // TargetFiles is what a server reports a job wrote (`JobCommand
        // Query`'s <Job>); sent back in a resubmitted job it asks nothing.
        let known = [
            "ModuleData",
            "PostconversionTasks",
            "PostConversionTasks",
            "TargetFiles",
        ];
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
    let get = |name: &str| data.and_then(|d| d.value(name)).map(str::to_owned);
    Ok(Destination {
        preset_guid: m.get("PresetGUID").map(str::to_owned),
        module_guid: m.get("ModuleGUID").map(str::to_owned),
        name: m.get("DestinationName").map(str::to_owned),
        module_data: ModuleData {
            path: get("CML_P_Path").or_else(|| get("FullUNCPath")),
            base_file_name: get("CML_P_BaseFileName"),
        },
        copies: parse_copies(m, &at("PostconversionTasks"))?,
        target_files: m
            .find("TargetFiles")
            .map(|t| t.attr_series("File"))
            .unwrap_or_default(),
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
        if s.value(name).is_some() {
            return Err(unsupported(TASK, format!("ProjectSettings {name}")));
        }
    }
    let priority = match number(TASK, s, "Priority.DWD")? {
        Some(p) => Some(p),
        None => number(TASK, s, "JobPriority.DWD")?,
    };
    Ok((priority, unapplied))
}
