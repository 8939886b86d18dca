//! `JobQueue`: check a job against the presets and the allowed folders,
//! store it durably, wake the scheduler. Every ingest path (socket, watch
//! folders, XML job folders) ends in [`Encoder::submit`].

use std::path::Path;

use super::super::{DEFAULT_PRIORITY, Encoder, EncoderError, check_priority};
use crate::carbon::message::{Destination, FileCopy, JobQueue, Reply, Source, SourceFile, Track};
use crate::carbon::{Guid, PresetId, Request};
use crate::encoder::paths::SafePath;
use crate::store::NewJob;
use crate::store::jobs::{AudioSource, CopySpec, Destination as StoredDestination};

/// What checking a `JobQueue` found: the local paths and settings to store.
/// The paths stay [`SafePath`]s until they are stored.
struct Checked {
    priority: u32,
    source_path: SafePath,
    audio: SourceAudio,
    source_copies: Vec<CopySpec>,
    destinations: Vec<StoredDestination>,
}

/// Where a checked job's sound comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceAudio {
    /// The source's own.
    Same,
    /// Another allowed file.
    File(SafePath),
    /// None.
    Absent,
}

impl From<SourceAudio> for AudioSource {
    fn from(audio: SourceAudio) -> AudioSource {
        match audio {
            SourceAudio::Same => AudioSource::Same,
            SourceAudio::File(path) => AudioSource::File(path.into_path_buf()),
            SourceAudio::Absent => AudioSource::Absent,
        }
    }
}

impl Encoder {
    pub(super) async fn job_queue(&self, job: JobQueue) -> Result<Reply, EncoderError> {
        let guid = self.submit(job, Guid::new_random()).await?;
        Ok(Reply::Queued { guid })
    }

    /// Validates a `JobQueue` and stores it as job `guid`; returns once the
    /// job is durable. Every ingest path comes through here: the socket
    /// with a fresh GUID, the job folders with one they recorded first, so a
    /// restart never submits a file twice.
    pub async fn submit(&self, request: JobQueue, guid: Guid) -> Result<Guid, EncoderError> {
        // Path checks touch the file system (canonicalize, stat): off the
        // async runtime, so a slow disk or share never stalls a worker.
        let encoder = self.clone();
        let (checked, request) =
            crate::fsutil::off_runtime(move || (encoder.check(&request), request)).await;
        let Checked {
            priority,
            source_path,
            audio,
            source_copies,
            destinations,
        } = checked?;
        let source = request.sources.first().ok_or(EncoderError::NoSource)?;
        let file_name = source_path
            .as_path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Kept as the client would send it again (JobCommand Query).
        let request_xml = Request::JobQueue(request.clone()).to_xml();
        // One warning for all of them: the seed's one-job reply has room
        // for one shortened text, not for a list.
        let unapplied = request.all_unapplied();
        let notes: Vec<String> = match unapplied.as_slice() {
            [] => Vec::new(),
            [one] => vec![format!("{one} is not applied: the preset decides")],
            many => vec![format!(
                "{} are not applied: the preset decides",
                many.join("; ")
            )],
        };
        if !notes.is_empty() {
            tracing::info!(
                ?notes,
                "a job asks for settings this encoder does not apply"
            );
        }
        let job = self
            .inner
            .jobs
            .insert(NewJob {
                guid,
                name: request
                    .job_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(file_name),
                user: request.user.unwrap_or_default(),
                description: request.description.unwrap_or_default(),
                priority,
                source_path: source_path.into_path_buf(),
                audio: audio.into(),
                trim: source.trim,
                source_copies,
                notes,
                destinations,
                request_xml,
            })
            .await?;
        tracing::info!(guid = %job.guid, source = %job.source_path.display(), "job queued");
        self.inner.wake.notify_one();
        Ok(job.guid)
    }

    /// Checks a `JobQueue` against the presets and the allowed folders
    /// (blocking: it resolves paths on disk).
    fn check(&self, request: &JobQueue) -> Result<Checked, EncoderError> {
        let source = match request.sources.as_slice() {
            [] => return Err(EncoderError::NoSource),
            [one] => one,
            many => return Err(EncoderError::SeveralSources(many.len())),
        };
        if request.destinations.is_empty() {
            return Err(EncoderError::NoDestination);
        }
        let priority = check_priority(request.priority.unwrap_or(DEFAULT_PRIORITY))?;
        let (source_path, audio) = self.source_files(source)?;
        let source_copies = self
            .copies(&source.copies)
            .map_err(|e| EncoderError::InSource(Box::new(e)))?;
        let destinations = request
            .destinations
            .iter()
            .enumerate()
            .map(|(index, d)| {
                self.destination(d, &source_path)
                    .map_err(|error| EncoderError::InDestination {
                        index,
                        error: Box::new(error),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checked {
            priority,
            source_path,
            audio,
            source_copies,
            destinations,
        })
    }

    /// The local files a source names: the picture's, and where the sound
    /// comes from.
    fn source_files(&self, source: &Source) -> Result<(SafePath, SourceAudio), EncoderError> {
        let resolve = |file: &str| {
            self.inner
                .paths
                .resolve_file(file)
                .map_err(EncoderError::Source)
        };
        match &source.file {
            SourceFile::One(file) => Ok((resolve(file)?, SourceAudio::Same)),
            SourceFile::Multi(multi) => {
                let video = multi
                    .file_of(multi.video)
                    .ok_or(EncoderError::MultiSourceWithoutVideo)?;
                let video_path = resolve(video)?;
                let audio = match multi.audio {
                    Track::Absent => SourceAudio::Absent,
                    track => {
                        let file = multi.file_of(track).unwrap_or(video);
                        let path = resolve(file)?;
                        if path == video_path {
                            SourceAudio::Same
                        } else {
                            SourceAudio::File(path)
                        }
                    }
                };
                Ok((video_path, audio))
            }
        }
    }

    /// `FileCopy_n` targets: allowed folders, plain file names.
    fn copies(&self, copies: &[FileCopy]) -> Result<Vec<CopySpec>, EncoderError> {
        copies
            .iter()
            .enumerate()
            .map(|(index, copy)| {
                let dir = self
                    .inner
                    .paths
                    .resolve_dir(&copy.target_folder)
                    .map_err(|error| EncoderError::FileCopyFolder { index, error })?
                    .into_path_buf();
                if let Some(name) = &copy.target_file
                    && !is_plain_file_name(name)
                {
                    return Err(EncoderError::FileCopyName {
                        index,
                        name: name.clone(),
                    });
                }
                Ok(CopySpec {
                    dir,
                    file: copy.target_file.clone(),
                    overwrite: copy.overwrite,
                })
            })
            .collect()
    }

    /// Checks one destination: a known preset, an allowed folder (default:
    /// the preset's own, `streams/`) and a plain output base name.
    fn destination(
        &self,
        destination: &Destination,
        source_path: &SafePath,
    ) -> Result<StoredDestination, EncoderError> {
        let preset_guid: PresetId = destination
            .preset()
            .ok_or(EncoderError::NoPreset)?
            .parse()
            .map_err(EncoderError::BadPresetGuid)?;
        let presets = &self.inner.presets;
        let Some(preset) = presets.get(preset_guid) else {
            let known: Vec<String> = presets
                .iter()
                .map(|p| format!("{} ({})", p.guid, p.name))
                .collect();
            return Err(EncoderError::UnknownPreset(preset_guid, known.join(", ")));
        };
        if preset.ladder.is_some() && !destination.copies.is_empty() {
            return Err(EncoderError::LadderCopy);
        }
        let dest_dir = match destination.module_data.path.as_deref() {
            Some(path) => self
                .inner
                .paths
                .resolve_dir(path)
                .map_err(EncoderError::Destination)?
                .into_path_buf(),
            None => self.inner.default_dest.clone(),
        };
        let base_name = output_base_name(
            destination.module_data.base_file_name.as_deref(),
            source_path.as_path(),
        )?;
        // ffmpeg's HLS muxer expands `%v`, `%d`… anywhere in its output
        // paths: a `%` would write another folder's files.
        if preset.ladder.is_some()
            && (base_name.contains('%') || dest_dir.to_string_lossy().contains('%'))
        {
            let named = if base_name.contains('%') {
                format!("base name {base_name}")
            } else {
                "the destination folder".to_owned()
            };
            return Err(EncoderError::LadderPercent(named));
        }
        Ok(StoredDestination {
            preset_guid,
            dest_dir,
            base_name,
            output_path: None,
            name: destination.name.clone(),
            copies: self.copies(&destination.copies)?,
            copied: Vec::new(),
        })
    }
}

/// A name with no folder, no control characters, not hidden, not too long.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// `CML_P_BaseFileName` with `%s` replaced by the source's name without its
/// extension; the default is `%s`.
fn output_base_name(template: Option<&str>, source: &Path) -> Result<String, EncoderError> {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let template = template
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("%s");
    let name = template.replace("%s", &stem);
    if is_plain_file_name(&name) {
        Ok(name)
    } else {
        Err(EncoderError::BadBaseName(template.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_from_template() {
        let src = Path::new("/data/uploaded/holiday.flv");
        assert_eq!(output_base_name(None, src).ok().as_deref(), Some("holiday"));
        assert_eq!(
            output_base_name(Some("%s"), src).ok().as_deref(),
            Some("holiday")
        );
        assert_eq!(
            output_base_name(Some("web-%s-480p"), src).ok().as_deref(),
            Some("web-holiday-480p")
        );
        for bad in ["../x", "a/b", "a\\b", ".hidden", "a\nb"] {
            assert!(output_base_name(Some(bad), src).is_err(), "{bad:?}");
        }
    }
}
