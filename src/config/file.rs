//! The TOML config file (`--config FILE`): presets folder, allowed roots,
//! path mappings, watch folders and XML job folders.
//!
//! Parsed strictly (an unknown key is an error) and checked at start; every
//! error names the file and the field (`watch[1].output`). Relative paths
//! are relative to the file's own folder. Owns only the file's shape and
//! its checks: what the folders do lives in [`crate::ingest`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::carbon::PresetId;
use crate::carbon::guid::InvalidGuid;
use crate::encoder::paths::PathMapping;
use crate::encoder::preset::{Presets, SEED_PRESET};

/// How long a dropped file's size and time must stay the same before it is
/// taken, unless a folder says otherwise.
pub const DEFAULT_SETTLE_SECS: f64 = 3.0;

/// How often folders are listed again in case a file-system event was missed.
pub const DEFAULT_RESCAN_SECS: f64 = 5.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    presets: Option<PathBuf>,
    #[serde(default)]
    roots: Vec<PathBuf>,
    seed_mappings: Option<bool>,
    #[serde(default)]
    path_mapping: Vec<RawMapping>,
    #[serde(default)]
    watch: Vec<RawWatch>,
    #[serde(default)]
    xml_folder: Vec<RawXmlFolder>,
    rescan_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    from: String,
    to: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    folder: PathBuf,
    output: Option<PathBuf>,
    presets: Option<Vec<RawPresetRef>>,
    base_name: Option<String>,
    settle_secs: Option<f64>,
}

/// A watch folder's preset: its GUID, or the GUID with its own output name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPresetRef {
    Guid(String),
    Named { guid: String, base_name: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXmlFolder {
    folder: PathBuf,
    settle_secs: Option<f64>,
}

/// The checked settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// More presets, besides the built-ins.
    pub presets_dir: Option<PathBuf>,
    /// Folders jobs may use besides the data folder's (watch folders and
    /// their outputs are added on their own).
    pub roots: Vec<PathBuf>,
    /// Whether the seed's two Windows folders map to `uploaded/`, `streams/`.
    pub seed_mappings: bool,
    pub mappings: Vec<PathMapping>,
    pub watch: Vec<WatchFolder>,
    pub xml_folders: Vec<XmlFolder>,
    pub rescan: Duration,
}

/// A folder whose dropped media files are encoded with `presets` into `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchFolder {
    pub folder: PathBuf,
    pub output: PathBuf,
    pub presets: Vec<WatchPreset>,
    pub settle: Duration,
}

/// One output of a watch folder's jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchPreset {
    pub guid: PresetId,
    /// `CML_P_BaseFileName` of this output (`%s`: the source's name).
    pub base_name: String,
}

/// A folder whose dropped `*.xml` `JobQueue` documents are submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlFolder {
    pub folder: PathBuf,
    pub settle: Duration,
}

/// Why the config file is unusable.
#[derive(Debug, thiserror::Error)]
#[error("config file {file}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub reason: SettingsError,
}

/// What is wrong in the config file; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
    #[error("{}", .0.to_string().trim())]
    Toml(#[from] toml::de::Error),
    #[error("{field}: {} is not a folder", .path.display())]
    NotAFolder { field: String, path: PathBuf },
    #[error("{field}: {}: {error}", .path.display())]
    NoFolder {
        field: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{field}: must be between 0.1 and 3600 seconds")]
    Seconds { field: String },
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: list at least one preset GUID")]
    NoPresets { field: String },
    #[error("{field}[{index}]: {error}")]
    PresetGuid {
        field: String,
        index: usize,
        error: InvalidGuid,
    },
    #[error("{field}: {} is also where its outputs go; name another output folder", .folder.display())]
    OutputIsInput { field: String, folder: PathBuf },
    #[error("{field}: {} is already {first}", .folder.display())]
    SameFolder {
        field: String,
        folder: PathBuf,
        first: String,
    },
    #[error(
        "{field}: {} is inside {ingest}; its outputs would be taken as new files",
        .output.display()
    )]
    OutputInsideIngest {
        field: String,
        output: PathBuf,
        ingest: String,
    },
    #[error("{field}: {} is the data folder's {what}; watch another folder", .folder.display())]
    Reserved {
        field: String,
        folder: PathBuf,
        what: String,
    },
    #[error("{field}: no preset has GUID {guid}; known: {known}")]
    UnknownPreset {
        field: String,
        guid: PresetId,
        known: String,
    },
}

impl Settings {
    /// No file: the seed's mappings and nothing else.
    pub fn defaults() -> Self {
        Settings {
            seed_mappings: true,
            rescan: Duration::from_secs_f64(DEFAULT_RESCAN_SECS),
            ..Settings::default()
        }
    }

    /// Reads and checks `path`; a watch folder without an `output` writes
    /// to `streams` (the portal's library).
    pub fn load(path: &Path, streams: &Path) -> Result<Self, ConfigError> {
        let error = |reason: SettingsError| ConfigError {
            file: path.display().to_string(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| error(SettingsError::Unreadable(e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Settings::parse(&text, base, streams).map_err(error)
    }

    /// Parses `text`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path, streams: &Path) -> Result<Self, SettingsError> {
        let raw: RawConfig = toml::from_str(text)?;
        let folder = |field: &str, path: &Path| existing_folder(field, base, path);
        let rescan = seconds("rescan_secs", raw.rescan_secs, DEFAULT_RESCAN_SECS)?;
        let presets_dir = raw
            .presets
            .as_deref()
            .map(|p| folder("presets", p))
            .transpose()?;
        let roots = raw
            .roots
            .iter()
            .enumerate()
            .map(|(i, p)| folder(&format!("roots[{i}]"), p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut mappings = Vec::new();
        for (i, m) in raw.path_mapping.iter().enumerate() {
            if m.from.trim().is_empty() {
                return Err(SettingsError::Empty {
                    field: format!("path_mapping[{i}].from"),
                });
            }
            let to = folder(&format!("path_mapping[{i}].to"), &m.to)?;
            mappings.push(PathMapping::new(m.from.trim(), to));
        }
        let mut watch = Vec::new();
        for (i, w) in raw.watch.iter().enumerate() {
            let field = |name: &str| format!("watch[{i}].{name}");
            let base_name = w.base_name.clone().unwrap_or_else(|| "%s".to_owned());
            let presets = match &w.presets {
                None => vec![WatchPreset {
                    guid: SEED_PRESET,
                    base_name: base_name.clone(),
                }],
                Some(list) if list.is_empty() => {
                    return Err(SettingsError::NoPresets {
                        field: field("presets"),
                    });
                }
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, entry)| {
                        let (guid, own_name) = match entry {
                            RawPresetRef::Guid(guid) => (guid, None),
                            RawPresetRef::Named { guid, base_name } => (guid, Some(base_name)),
                        };
                        let guid = guid.parse::<PresetId>().map_err(|error| {
                            SettingsError::PresetGuid {
                                field: field("presets"),
                                index: j,
                                error,
                            }
                        })?;
                        let base_name = own_name.unwrap_or(&base_name).clone();
                        Ok(WatchPreset { guid, base_name })
                    })
                    .collect::<Result<Vec<_>, SettingsError>>()?,
            };
            let watched = folder(&field("folder"), &w.folder)?;
            let output = match &w.output {
                Some(output) => folder(&field("output"), output)?,
                None => streams.to_owned(),
            };
            // Its own outputs would come back in as new media, forever.
            if watched == output {
                return Err(SettingsError::OutputIsInput {
                    field: field("folder"),
                    folder: watched,
                });
            }
            watch.push(WatchFolder {
                folder: watched,
                output,
                presets,
                settle: seconds(&field("settle_secs"), w.settle_secs, DEFAULT_SETTLE_SECS)?,
            });
        }
        let mut xml_folders = Vec::new();
        for (i, x) in raw.xml_folder.iter().enumerate() {
            xml_folders.push(XmlFolder {
                folder: folder(&format!("xml_folder[{i}].folder"), &x.folder)?,
                settle: seconds(
                    &format!("xml_folder[{i}].settle_secs"),
                    x.settle_secs,
                    DEFAULT_SETTLE_SECS,
                )?,
            });
        }
        let settings = Settings {
            presets_dir,
            roots,
            seed_mappings: raw.seed_mappings.unwrap_or(true),
            mappings,
            watch,
            xml_folders,
            rescan,
        };
        settings.check_folders_are_distinct()?;
        Ok(settings)
    }

    /// Every watch and XML folder, with the field that names it.
    fn ingest_folders(&self) -> impl Iterator<Item = (&Path, String)> {
        let watched = self
            .watch
            .iter()
            .enumerate()
            .map(|(i, w)| (w.folder.as_path(), format!("watch[{i}].folder")));
        let xml = self
            .xml_folders
            .iter()
            .enumerate()
            .map(|(i, x)| (x.folder.as_path(), format!("xml_folder[{i}].folder")));
        watched.chain(xml)
    }

    /// Two ingest paths on one folder would race for the same files.
    fn check_folders_are_distinct(&self) -> Result<(), SettingsError> {
        let mut seen: Vec<(&Path, String)> = Vec::new();
        for (folder, field) in self.ingest_folders() {
            if let Some((_, first)) = seen.iter().find(|(f, _)| *f == folder) {
                return Err(SettingsError::SameFolder {
                    field,
                    folder: folder.to_owned(),
                    first: first.clone(),
                });
            }
            seen.push((folder, field));
        }
        // An output in an ingest folder (or its processing/, processed/,
        // failed/) would be taken as new input or moved away.
        for (i, w) in self.watch.iter().enumerate() {
            for (folder, field) in &seen {
                let inside = w.output == *folder
                    || ["processing", "processed", "failed"]
                        .iter()
                        .any(|sub| w.output.starts_with(folder.join(sub)));
                if inside {
                    return Err(SettingsError::OutputInsideIngest {
                        field: format!("watch[{i}].output"),
                        output: w.output.clone(),
                        ingest: field.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks no ingest folder is one the server itself writes media to
    /// (`reserved`: path and what it is): files placed there would be
    /// taken as new jobs.
    pub fn check_reserved(&self, reserved: &[(&Path, &str)]) -> Result<(), SettingsError> {
        for (folder, field) in self.ingest_folders() {
            if let Some((_, what)) = reserved.iter().find(|(r, _)| *r == folder) {
                return Err(SettingsError::Reserved {
                    field,
                    folder: folder.to_owned(),
                    what: (*what).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Checks every preset a watch folder names exists.
    pub fn check_presets(&self, presets: &Presets) -> Result<(), SettingsError> {
        for (i, w) in self.watch.iter().enumerate() {
            for (j, wanted) in w.presets.iter().enumerate() {
                if presets.get(wanted.guid).is_none() {
                    let known: Vec<String> = presets
                        .iter()
                        .map(|p| format!("{} ({})", p.guid, p.name))
                        .collect();
                    return Err(SettingsError::UnknownPreset {
                        field: format!("watch[{i}].presets[{j}]"),
                        guid: wanted.guid,
                        known: known.join(", "),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every folder the encoder must be allowed to read and write.
    pub fn all_roots(&self) -> Vec<PathBuf> {
        let mut roots = self.roots.clone();
        for w in &self.watch {
            roots.extend([w.folder.clone(), w.output.clone()]);
        }
        roots.extend(self.xml_folders.iter().map(|x| x.folder.clone()));
        roots
    }
}

/// `path` (relative to `base`) as an existing folder's canonical path.
fn existing_folder(field: &str, base: &Path, path: &Path) -> Result<PathBuf, SettingsError> {
    let full = base.join(path);
    match full.canonicalize() {
        Ok(found) if found.is_dir() => Ok(found),
        Ok(_) => Err(SettingsError::NotAFolder {
            field: field.to_owned(),
            path: full,
        }),
        Err(error) => Err(SettingsError::NoFolder {
            field: field.to_owned(),
            path: full,
            error,
        }),
    }
}

fn seconds(field: &str, value: Option<f64>, default: f64) -> Result<Duration, SettingsError> {
    let secs = value.unwrap_or(default);
    if secs.is_finite() && (0.1..=3600.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(SettingsError::Seconds {
            field: field.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["in", "out", "jobs", "presets"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        dir
    }

    #[test]
    fn a_full_file_parses_with_relative_paths() {
        let dir = tree();
        let text = r#"
            presets = "presets"
            rescan_secs = 2
            [[path_mapping]]
            from = '\\fileserver\media'
            to = "in"
            [[watch]]
            folder = "in"
            output = "out"
            presets = ["{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"]
            settle_secs = 1.5
            [[xml_folder]]
            folder = "jobs"
        "#;
        let s = Settings::parse(text, dir.path(), Path::new("/streams")).expect("parses");
        let root = dir.path().canonicalize().expect("canonical");
        assert_eq!(s.presets_dir, Some(root.join("presets")));
        assert_eq!(s.watch[0].folder, root.join("in"));
        assert_eq!(s.watch[0].settle, Duration::from_millis(1500));
        assert_eq!(s.watch[0].presets[0].base_name, "%s");
        assert_eq!(s.xml_folders[0].settle, Duration::from_secs(3));
        assert_eq!(s.mappings[0].from, "\\\\fileserver\\media");
        assert!(s.seed_mappings);
        assert_eq!(s.all_roots().len(), 3);
        assert!(s.check_presets(&Presets::builtin()).is_ok());
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["media/audio", "watch/web", "watch/audio", "jobs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let text = include_str!("../../videoshare.example.toml");
        let s = Settings::parse(text, dir.path(), Path::new("/data/streams")).expect("parses");
        assert_eq!(
            (s.watch.len(), s.xml_folders.len(), s.mappings.len()),
            (2, 1, 2)
        );
        assert_eq!(s.watch[0].output, Path::new("/data/streams"));
        let names: Vec<&str> = s.watch[0]
            .presets
            .iter()
            .map(|p| p.base_name.as_str())
            .collect();
        assert_eq!(names, ["%s-480p", "%s-360p"], "one output name per preset");
        assert!(s.check_presets(&Presets::builtin()).is_ok());
    }

    #[test]
    fn a_watch_folder_without_output_publishes_to_the_library() {
        let dir = tree();
        let s = Settings::parse(
            "[[watch]]\nfolder = \"in\"",
            dir.path(),
            Path::new("/data/streams"),
        )
        .expect("parses");
        assert_eq!(s.watch[0].output, Path::new("/data/streams"));
        assert_eq!(s.watch[0].presets[0].guid, SEED_PRESET);
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tree();
        let cases = [
            (
                "[[watch]]\nfolder = \"in\"\noutput = \"nowhere\"",
                "watch[0].output",
            ),
            (
                "[[watch]]\nfolder = \"in\"\noutput = \"out\"\npresets = [\"x\"]",
                "watch[0].presets[0]",
            ),
            (
                "[[watch]]\nfolder = \"in\"\noutput = \"out\"\nsettle_secs = -1",
                "watch[0].settle_secs",
            ),
            (
                "[[watch]]\nfolder = \"in\"\noutput = \"out\"\ncolour = 1",
                "colour",
            ),
            (
                "[[xml_folder]]\nfolder = \"in\"\n[[watch]]\nfolder = \"in\"\noutput = \"out\"",
                "xml_folder[0].folder",
            ),
            (
                "[[path_mapping]]\nfrom = \"\"\nto = \"in\"",
                "path_mapping[0].from",
            ),
            (
                "[[xml_folder]]\nfolder = \"jobs\"\n[[watch]]\nfolder = \"in\"\noutput = \"jobs\"",
                "watch[0].output",
            ),
            ("roots = [\"in\", \"missing\"]", "roots[1]"),
            (
                "[[watch]]\nfolder = \"in\"\noutput = \"in\"",
                "watch[0].folder",
            ),
            ("presets = 5", "presets"),
        ];
        for (text, field) in cases {
            let err = Settings::parse(text, dir.path(), Path::new("/s")).expect_err(text);
            assert!(err.to_string().contains(field), "{text}: {err}");
        }
        let unknown = "[[watch]]\nfolder = \"in\"\noutput = \"out\"\npresets = [\"{00000000-0000-0000-0000-000000000001}\"]";
        let s = Settings::parse(unknown, dir.path(), Path::new("/s")).expect("parses");
        let err = s
            .check_presets(&Presets::builtin())
            .expect_err("unknown preset");
        assert!(err.to_string().contains("watch[0].presets[0]"), "{err}");
    }
}
