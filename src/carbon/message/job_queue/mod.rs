//! `TaskType="JobQueue"`: one job, as the manual's §6 builds it.
//!
//! Every form the manual describes either becomes a field here or is
//! refused by name ([`MessageError::Unsupported`]): a client is never left
//! believing a notification, filter or FTP upload will happen when it will
//! not. Blank elements (`<PostconversionTasks/>`, `<Filter_0/>`,
//! `AssignedTags=""`, as the seed sends) ask for nothing and are accepted.
//!
//! The types are here; [`parse`] reads them from `<cnpsXML>`, [`write`]
//! writes them back (a request, or `JobCommand Query`'s `<Job>`).

mod parse;
mod write;

pub(crate) use write::target_files_element;

use crate::carbon::guid::PresetId;

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
    /// `TargetFiles`: in `JobCommand Query`'s answer, the files written
    /// (the output, then its copies); nothing a request asks for.
    pub target_files: Vec<String>,
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
    pub fn single(source: &str, preset: PresetId, dest_dir: &str) -> Self {
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
}
