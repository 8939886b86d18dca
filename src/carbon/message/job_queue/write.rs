//! Writing a `JobQueue` as the document a client sends.

use super::{Destination, FileCopy, JobQueue, Source, SourceFile, Track};
use crate::carbon::message::TaskType;
use crate::carbon::xml::Element;

impl JobQueue {
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
    if !d.target_files.is_empty() {
        e = e.child(target_files_element(&d.target_files));
    }
    e
}

/// `<TargetFiles File_0="…" File_1="…"/>`: the files a destination wrote,
/// as public clients read them (`TargetFiles/@File_0`).
pub(crate) fn target_files_element(files: &[String]) -> Element {
    Element::new("TargetFiles").with_attr_series("File", files)
}
