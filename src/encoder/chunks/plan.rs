//! What a chunked job's plan holds for every node that encodes its chunks
//! (a [`ChunkSpec`], stored as JSON beside the chunks), which jobs are
//! chunked, and the keys that decide whether an earlier run's finished
//! chunks may be kept.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ChunkSettings;
use super::args::{align_for, chunkable};
use crate::carbon::PresetId;
use crate::encoder::ffmpeg::{Audio, Inputs};
use crate::encoder::preset::{Preset, SourcePicture};
use crate::media::MediaInfo;
use crate::media::split::Align;
use crate::store::ChunkKind;
use crate::store::Job;
use crate::store::jobs::AudioSource;

/// The layout of chunk pieces and plans: a plan left by a version with
/// another layout is never adopted.
const CHUNK_FORMAT: u32 = 1;

/// The marker file in a job's chunk folder: holds the job's GUID, so only
/// folders this job made are ever removed.
pub(super) const OWNER_MARKER: &str = ".owner";

/// What a node needs to encode any chunk of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::encoder) struct ChunkSpec {
    pub format: u32,
    pub source: PathBuf,
    pub audio: SpecAudio,
    /// Set when a destination is a ladder (its rungs depend on it).
    pub picture: Option<SourcePicture>,
    /// Each destination's preset, in destination order.
    pub presets: Vec<String>,
    /// The source's duration, for the sound chunk's progress.
    pub duration_us: i64,
    /// Whether the sound is encoded (a chunk of its own).
    pub sound: bool,
    /// The source's SHA-256 (hex), which `--fetch` nodes check theirs
    /// against; also tells a touched but unchanged source from a new one.
    #[serde(default)]
    pub source_sha256: Option<String>,
    /// The separate sound file's, likewise.
    #[serde(default)]
    pub audio_sha256: Option<String>,
}

/// Where the sound comes from (the job's [`AudioSource`], as stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::encoder) enum SpecAudio {
    Source,
    File(PathBuf),
    Absent,
}

impl ChunkSpec {
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            source: &self.source,
            audio: match &self.audio {
                SpecAudio::Source => Audio::Source,
                SpecAudio::File(file) => Audio::File(file),
                SpecAudio::Absent => Audio::Absent,
            },
            trim: None,
            picture: self.picture,
        }
    }

    /// The presets, looked up on this node: the message names the first
    /// one it lacks.
    pub fn presets<'p>(
        &self,
        all: &'p crate::encoder::preset::Presets,
    ) -> Result<Vec<&'p Preset>, String> {
        self.presets
            .iter()
            .map(|text| {
                text.parse::<PresetId>()
                    .ok()
                    .and_then(|id| all.get(id))
                    .ok_or_else(|| format!("preset {text} is not known on this node"))
            })
            .collect()
    }
}

/// How a job is cut, if it is chunked at all: sources longer than the
/// threshold, untrimmed, whose every destination can be encoded in pieces
/// (an MP4 video or a ladder; ladders all with one segment length).
pub(super) fn chunk_align(
    settings: &ChunkSettings,
    job: &Job,
    presets: &[&Preset],
    info: &MediaInfo,
) -> Option<Align> {
    let threshold = settings.threshold?.as_secs_f64();
    let long = info.duration.is_some_and(|d| d > threshold);
    if !long || job.trim.is_some() || info.video.is_none() || presets.is_empty() {
        return None;
    }
    if !presets.iter().all(|p| chunkable(p)) {
        return None;
    }
    align_for(presets.iter().copied())
}

/// The spec of `job` as probed.
pub(super) fn spec_of(job: &Job, presets: &[&Preset], info: &MediaInfo) -> ChunkSpec {
    let audio = match &job.audio {
        AudioSource::File(file) => SpecAudio::File(file.clone()),
        AudioSource::Absent => SpecAudio::Absent,
        _ => SpecAudio::Source,
    };
    let has_sound = match &audio {
        SpecAudio::Source => info.audio.is_some(),
        SpecAudio::File(_) => true,
        SpecAudio::Absent => false,
    };
    let picture = presets.iter().any(|p| p.ladder.is_some()).then(|| {
        let video = info.video.as_ref();
        let (width, height) = video.map_or((u32::MAX, u32::MAX), |v| v.shown_size());
        SourcePicture {
            width,
            height,
            frame_rate: video.and_then(|v| v.frame_rate),
            has_audio: has_sound,
        }
    });
    ChunkSpec {
        format: CHUNK_FORMAT,
        source: job.source_path.clone(),
        audio,
        picture,
        presets: presets.iter().map(|p| p.guid.to_string()).collect(),
        duration_us: info.duration.map_or(0, |d| (d * 1e6) as i64),
        sound: has_sound && presets.iter().any(|p| p.audio.is_some()),
        source_sha256: None,
        audio_sha256: None,
    }
}

/// What the encode of a plan depends on besides the source: the spec, the
/// chunk length and every preset's settings. Finished chunks are kept only
/// when it is unchanged.
pub(super) fn recipe_key(spec: &ChunkSpec, presets: &[&Preset], chunk_us: i64) -> String {
    // The source's bytes are compared apart: a recipe is what is done to them.
    let recipe = ChunkSpec {
        source_sha256: None,
        audio_sha256: None,
        ..spec.clone()
    };
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(&recipe).unwrap_or_default());
    hash.update(chunk_us.to_le_bytes());
    for preset in presets {
        // Debug prints every field: a changed bitrate, size or speed
        // changes the key.
        hash.update(format!("{preset:?}").as_bytes());
    }
    hex(&hash.finalize())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The source file's size and modification time (ns): it is taken as
/// unchanged while both are.
pub(super) fn source_stamp(path: &Path) -> std::io::Result<(i64, i64)> {
    let meta = std::fs::metadata(path)?;
    let modified = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Ok((i64::try_from(meta.len()).unwrap_or(i64::MAX), modified))
}

/// The folder of one attempt's pieces of chunk `idx`, in the job's chunk
/// folder.
pub(super) fn piece_folder(idx: u32, attempt: i64) -> String {
    format!("c{idx:05}-{attempt}")
}

/// The name of destination `n`'s piece inside a chunk's folder: a ladder's
/// folder, a video piece (MPEG-TS) or the sound (MP4 audio).
pub(super) fn piece_name(n: usize, kind: ChunkKind, preset: &Preset) -> String {
    match (preset.ladder.is_some(), kind) {
        (true, _) => format!("d{n}"),
        (false, ChunkKind::Video) => format!("d{n}.ts"),
        (false, ChunkKind::Audio) => format!("d{n}.m4a"),
    }
}

/// Which destinations a chunk of `kind` writes a piece for: every one for
/// video, those with sound for the sound chunk.
pub(super) fn writes_piece(kind: ChunkKind, preset: &Preset) -> bool {
    kind == ChunkKind::Video || preset.audio.is_some()
}

/// The folder of a job's chunk pieces: hidden, beside its first
/// destination's outputs (so ladder segments are linked, not copied).
pub(super) fn work_dir_in(dest_dir: &Path, guid: crate::carbon::Guid) -> PathBuf {
    dest_dir.join(format!(".chunks-{guid}"))
}

/// Removes a job's chunk folder if its marker says it is that job's.
pub(super) fn remove_work_dir(dir: &Path, guid: crate::carbon::Guid) -> std::io::Result<()> {
    match std::fs::read_to_string(dir.join(OWNER_MARKER)) {
        Ok(owner) if owner.trim() == guid.to_string() => std::fs::remove_dir_all(dir),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
