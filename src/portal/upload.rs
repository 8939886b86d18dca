//! `POST /upload`: a multipart upload streamed to a temp file (never held in
//! memory), checked (size, not empty, ffprobe finds a video stream), moved
//! into `uploaded/` under a safe unique name and submitted to the encoder as a
//! Carbon `JobQueue`. Whatever fails leaves nothing behind.

use axum::Extension;
use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::Portal;
use super::error::{ApiError, Fault};
use super::jobs::JobView;
use super::ws::HubEvent;
use crate::carbon::message::{Criterion, JobQueue, JobStatusList, Operator};
use crate::carbon::{ClientError, Guid, PresetId};
use crate::fsutil::TempFile;
use crate::owner::Owner;
use crate::store::uploads::new_upload;

/// Room for multipart headers and boundaries around the file itself.
const MULTIPART_OVERHEAD: u64 = 1 << 20;

/// Longest stored file name stem, in characters.
const MAX_STEM: usize = 100;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("No file in the upload: send the video in a multipart form field named \"file\".")]
    MissingFile,
    #[error("The file {0:?} is empty.")]
    Empty(String),
    #[error("The file is larger than the limit of {limit}.")]
    TooLarge { limit: String },
    #[error("{name:?} is not a video we can encode: {reason}.")]
    NotVideo { name: String, reason: String },
    #[error("Expected a multipart/form-data upload: {0}")]
    NotMultipart(String),
    #[error("The upload was cut off or malformed: {0}")]
    Malformed(String),
    #[error("The encoding server is not reachable right now ({0}); please try again in a moment.")]
    EncoderUnavailable(String),
    #[error("The encoding server refused the job: {0}")]
    EncoderRefused(String),
    #[error("{0}")]
    BadField(String),
    #[error(
        "You have {0} videos waiting or encoding, the most one user may have: upload more when some have finished (or stop some)."
    )]
    TooManyJobs(u32),
    #[error(
        "You have {0} unfinished resumable uploads, the most one user may have: finish or cancel some first."
    )]
    TooManyUploads(u32),
    #[error("internal: {0}")]
    Server(#[from] Fault),
}

impl UploadError {
    pub(super) fn too_large(limit: u64) -> Self {
        UploadError::TooLarge {
            limit: bytesize::ByteSize(limit).display().iec().to_string(),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        let e = match e {
            UploadError::Server(fault) => return ApiError::internal(fault),
            e => e,
        };
        let (status, code) = match &e {
            UploadError::MissingFile => (StatusCode::BAD_REQUEST, "missing_file"),
            UploadError::Empty(_) => (StatusCode::BAD_REQUEST, "empty_file"),
            UploadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            UploadError::NotVideo { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_a_video"),
            UploadError::NotMultipart(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_multipart"),
            UploadError::Malformed(_) => (StatusCode::BAD_REQUEST, "bad_upload"),
            UploadError::EncoderUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "encoder_unavailable")
            }
            UploadError::EncoderRefused(_) => (StatusCode::BAD_GATEWAY, "encoder_refused"),
            UploadError::BadField(_) => (StatusCode::BAD_REQUEST, "bad_field"),
            UploadError::TooManyJobs(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_jobs"),
            UploadError::TooManyUploads(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            UploadError::Server(_) => unreachable!("answered above"),
        };
        let message = e.to_string();
        tracing::info!(code, %message, "upload refused");
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl Portal {
    /// Refuses a new upload from `owner` when they have as many unfinished
    /// jobs as one user may.
    pub(super) async fn check_job_cap(&self, owner: &Owner) -> Result<(), UploadError> {
        let cap = self.config().limits.queued_per_owner;
        let open = self.inner.uploads.unfinished_count_of(owner).await;
        if open.map_err(Fault::from)? >= cap {
            return Err(UploadError::TooManyJobs(cap));
        }
        Ok(())
    }
}

/// The reply to a successful upload.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub guid: Guid,
    /// The name the file was stored under in `uploaded/`.
    pub stored_as: String,
    pub job: JobView,
}

pub async fn upload(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, UploadError> {
    let limit = portal.config().max_upload;
    // Refuse an announced oversize body before reading any of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(UploadError::too_large(limit));
    }
    let mut multipart = multipart.map_err(|e| UploadError::NotMultipart(e.body_text()))?;
    // Before reading a byte: a user at their cap of unfinished jobs waits.
    portal.check_job_cap(&owner).await?;

    // Fields in any order: `file` (the video) and `preset` (optional), one
    // of each; anything else is read (briefly) and ignored.
    let mut received = None;
    let mut preset = None;
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        match field.name() {
            Some("file") if received.is_some() => {
                return Err(UploadError::BadField("Send one file per upload.".into()));
            }
            Some("file") => received = receive(&portal, field, limit).await?,
            Some("preset") if preset.is_some() => {
                return Err(UploadError::BadField(
                    "Choose one preset per upload.".into(),
                ));
            }
            Some("preset") => {
                let text = small_field(field, 100).await?;
                preset = Some(chosen_preset(&portal, &String::from_utf8_lossy(&text)).await?);
            }
            _ => {
                small_field(field, OTHER_FIELD_LIMIT).await?;
            }
        }
    }
    let (temp, original_name, size) = received.ok_or(UploadError::MissingFile)?;
    let preset = preset.unwrap_or(portal.config().preset);
    if size == 0 {
        return Err(UploadError::Empty(original_name));
    }
    // From here on the work finishes even if the browser goes away: a file
    // placed in uploaded/ must end up as a tracked job or be removed again.
    let accepted = tokio::spawn(accept(portal, temp, original_name, size, preset, owner))
        .await
        .map_err(Fault::from)??;

    if wants_json(&headers) {
        Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
    } else {
        // A plain form post: back to the page, which follows the job.
        let guid = accepted.guid.to_string();
        let fragment =
            percent_encoding::utf8_percent_encode(&guid, percent_encoding::NON_ALPHANUMERIC);
        Ok(Redirect::to(&format!("/#job={fragment}")).into_response())
    }
}

/// Checks the received file, places it in `uploaded/`, submits its job (as
/// `owner`'s) and records it. Shared by multipart and resumable uploads.
pub async fn accept(
    portal: Portal,
    temp: TempFile,
    original_name: String,
    size: u64,
    preset: PresetId,
    owner: Owner,
) -> Result<Accepted, UploadError> {
    let info = crate::media::probe(temp.path())
        .await
        .map_err(|e| match e {
            crate::media::ProbeError::Unreadable(why) => UploadError::NotVideo {
                name: original_name.clone(),
                reason: format!("ffprobe cannot read it ({why})"),
            },
            playlist @ crate::media::ProbeError::Playlist(_) => UploadError::NotVideo {
                name: original_name.clone(),
                reason: playlist.to_string(),
            },
            other => Fault::from(other).into(),
        })?;
    info.check_is_video().map_err(|why| UploadError::NotVideo {
        name: original_name.clone(),
        reason: why.to_string(),
    })?;

    let (stem, extension) = safe_name(&original_name);
    let uploaded_dir = portal.config().uploaded_dir.clone();
    let stored =
        tokio::task::spawn_blocking(move || temp.persist_unique(&uploaded_dir, &stem, &extension))
            .await
            .map_err(Fault::from)?
            .map_err(Fault::from)?;
    let stored_as = stored
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    // Whose it is now: the browser may have signed in while it arrived.
    let owner = portal.inner.moves.current(&owner);
    portal.check_job_cap(&owner).await?;
    let guid = match submit(&portal, &stored_as, &original_name, preset, &owner).await {
        Ok(guid) => guid,
        Err(e) => {
            // The encoder has no job for it, so keep nothing: the user will retry.
            if let Err(rm) = tokio::fs::remove_file(&stored).await {
                tracing::warn!(file = %stored.display(), error = %rm, "could not remove an unsubmitted upload");
            }
            return Err(e);
        }
    };

    let (offered, _) = portal.preset_choices().await;
    let preset_name = offered
        .into_iter()
        .find(|p| p.guid == preset)
        .map(|p| p.name)
        .unwrap_or_default();
    let record = new_upload(
        guid,
        original_name,
        stored_as.clone(),
        size,
        owner.clone(),
        preset_name,
    );
    portal
        .inner
        .uploads
        .insert(&record)
        .await
        .map_err(Fault::from)?;
    // A sign-in between `current` and the insert moved everything but this.
    let now_owner = portal.inner.moves.current(&owner);
    if now_owner != owner {
        let moving = portal.inner.uploads.transfer(&owner, &now_owner);
        moving.await.map_err(Fault::from)?;
    }
    let job = JobView::from(&record);
    let _ = portal.inner.hub.send(HubEvent::Job(Box::new(job.clone())));
    portal.inner.poke.notify_one();
    portal.config().metrics.upload_bytes.inc_by(size);
    tracing::info!(%guid, file = %stored_as, size, "upload accepted");
    Ok(Accepted {
        guid,
        stored_as,
        job,
    })
}

/// Submits the stored upload as a `JobQueue`. When the outcome is unclear
/// (the request went out but no reply came back), asks the encoder whether
/// it has a job for this source before calling it a failure, so an accepted
/// job never loses its source.
async fn submit(
    portal: &Portal,
    stored_as: &str,
    original_name: &str,
    preset: PresetId,
    owner: &Owner,
) -> Result<Guid, UploadError> {
    let config = portal.config();
    let client = &portal.inner.client;
    let job = JobQueue {
        job_name: Some(original_name.to_owned()),
        user: Some(owner.to_string()),
        ..JobQueue::single(
            &encoder_path(&config.encoder_uploaded, stored_as),
            preset,
            &config.encoder_streams,
        )
    };
    let unclear = match client.queue(job).await {
        Ok(guid) => return Ok(guid),
        Err(ClientError::Refused(why)) => return Err(UploadError::EncoderRefused(why)),
        Err(e @ ClientError::Connect { .. }) => {
            return Err(UploadError::EncoderUnavailable(e.to_string()));
        }
        Err(e) => e,
    };
    tracing::warn!(error = %unclear, file = stored_as, "no reply to JobQueue; asking whether the job exists");
    let by_source = JobStatusList {
        criteria: vec![Criterion {
            parameter: "SourceDescription".to_owned(),
            operator: Operator::Equal,
            value: stored_as.to_owned(),
        }],
        ..JobStatusList::default()
    };
    match client.list(by_source).await {
        // Stored names are unique in uploaded/; the newest match is ours.
        Ok(jobs) => match jobs
            .into_iter()
            .rev()
            .find(|j| j.source_description == stored_as)
        {
            Some(job) => Ok(job.guid),
            None => Err(UploadError::EncoderUnavailable(unclear.to_string())),
        },
        Err(_) => Err(UploadError::EncoderUnavailable(unclear.to_string())),
    }
}

/// `name` inside the folder the encoder calls `dir`, joined with the
/// separator that folder uses (a Windows Carbon server wants `\\`).
fn encoder_path(dir: &str, name: &str) -> String {
    let windows = dir.contains('\\') && !dir.contains('/');
    let separator = if windows { '\\' } else { '/' };
    format!("{}{separator}{name}", dir.trim_end_matches(separator))
}

/// Reads a chosen preset: a GUID among the encoder's presets (when the
/// encoder can list them); empty means the default.
pub async fn chosen_preset(portal: &Portal, text: &str) -> Result<PresetId, UploadError> {
    if text.trim().is_empty() {
        return Ok(portal.config().preset);
    }
    let guid: PresetId = text.trim().parse().map_err(|_| {
        UploadError::BadField(format!(
            "The preset {:?} is not a preset GUID.",
            text.trim()
        ))
    })?;
    let (offered, known) = portal.preset_choices().await;
    if known && !offered.iter().any(|p| p.guid == guid) {
        return Err(UploadError::BadField(format!(
            "The preset {guid} is not one this server offers."
        )));
    }
    Ok(guid)
}

/// Largest text field other than `preset` that is read and ignored.
const OTHER_FIELD_LIMIT: usize = 64 * 1024;

/// Reads a text field of at most `max` bytes.
async fn small_field(mut field: Field<'_>, max: usize) -> Result<Vec<u8>, UploadError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > max {
            return Err(UploadError::BadField(format!(
                "The form field {name:?} is larger than {max} bytes."
            )));
        }
    }
    Ok(bytes)
}

fn malformed(e: MultipartError) -> UploadError {
    UploadError::Malformed(e.body_text())
}

pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Streams the field into a temp file. `None` when the field carries no file
/// at all (a plain text field, or a form submitted without choosing one).
async fn receive(
    portal: &Portal,
    mut field: Field<'_>,
    limit: u64,
) -> Result<Option<(TempFile, String, u64)>, UploadError> {
    let Some(original_name) = field.file_name().map(decode_form_file_name) else {
        return Ok(None);
    };
    let temp = TempFile::new_in(&portal.config().tmp_dir, "upload");
    let file = tokio::fs::File::create(temp.path())
        .await
        .map_err(Fault::from)?;
    let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(UploadError::too_large(limit));
        }
        writer.write_all(&chunk).await.map_err(Fault::from)?;
    }
    writer.flush().await.map_err(Fault::from)?;
    if original_name.is_empty() && size == 0 {
        return Ok(None);
    }
    Ok(Some((temp, original_name, size)))
}

/// A file name as the user chose it. Browsers (and curl) write `"`, CR and LF
/// in multipart file names as `%22`, `%0D` and `%0A` (HTML's form encoding);
/// line breaks become spaces.
fn decode_form_file_name(raw: &str) -> String {
    raw.replace("%22", "\"")
        .replace("%0D", " ")
        .replace("%0A", " ")
        .replace(['\r', '\n'], " ")
}

/// A file name safe on any file system, in a URL and in a Carbon job, that
/// still reads like the name the user chose: percent-escapes decoded (a
/// name such as `..%2f..%2fetc%2fpasswd` is the path it spells), then the
/// last path component only, its ASCII letters and digits kept and every
/// run of anything else made one separator (`-` or `.` when that is all the
/// run is, `_` otherwise), at most 100 characters; the extension
/// lower-cased. Without an extension the stem keeps no dot, so the encoder's
/// output name (the stored name up to its last dot, through the `%s`
/// template) is the whole stem.
pub fn safe_name(original: &str) -> (String, String) {
    let decoded = percent_decoded(original);
    let base = decoded.rsplit(['/', '\\']).next().unwrap_or("");
    let (stem, extension) = match base.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=10).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (stem, ext.to_ascii_lowercase())
        }
        _ => (base, String::new()),
    };
    let is_separator = |c: char| matches!(c, '_' | '.' | '-');
    // A run of other characters becomes one separator.
    let separator = |run: &str| match run {
        "-" => '-',
        "." if !extension.is_empty() => '.',
        _ => '_',
    };
    let mut clean = String::new();
    let mut run = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            if !run.is_empty() {
                clean.push(separator(&run));
                run.clear();
            }
            clean.push(c);
        } else {
            run.push(c);
        }
    }
    let clean: String = clean
        .trim_matches(is_separator)
        .chars()
        .take(MAX_STEM)
        .collect();
    let clean = clean.trim_end_matches(is_separator);
    let stem = if clean.is_empty() {
        "video".to_owned()
    } else {
        clean.to_owned()
    };
    (stem, extension)
}

/// `name` with its percent-escapes decoded, again while that changes it (a
/// doubly escaped `%252f` is a `/` too), at most a few times.
fn percent_decoded(name: &str) -> String {
    let mut name = name.to_owned();
    for _ in 0..3 {
        let decoded = percent_encoding::percent_decode_str(&name)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == name {
            break;
        }
        name = decoded;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_file_names_are_decoded_as_browsers_encode_them() {
        assert_eq!(
            decode_form_file_name("it's a %22quote%22.mp4"),
            "it's a \"quote\".mp4"
        );
        assert_eq!(
            decode_form_file_name("two%0D%0Alines.mp4"),
            "two  lines.mp4"
        );
        assert_eq!(
            decode_form_file_name("100%25.mp4"),
            "100%25.mp4",
            "only the three form escapes"
        );
    }

    #[test]
    fn names_are_made_safe() {
        let cases = [
            ("holiday.MP4", ("holiday", "mp4")),
            ("../../etc/passwd", ("passwd", "")),
            ("C:\\Users\\ann\\My Clip (1).mov", ("My_Clip_1", "mov")),
            ("a\"b<&>c.mp4", ("a_b_c", "mp4")),
            ("nul\0byte.mp4", ("nul_byte", "mp4")),
            ("Café déjà vu.webm", ("Caf_d_j_vu", "webm")),
            (".hidden.mp4", ("hidden", "mp4")),
            ("", ("video", "")),
            ("日本.mp4", ("video", "mp4")),
            ("archive.tar.gz", ("archive.tar", "gz")),
            ("weird.ext-with-dash", ("weird_ext-with-dash", "")),
            ("..%2f..%2fetc%2fpasswd", ("passwd", "")),
            ("..%252f..%252fetc%252fpasswd.mp4", ("passwd", "mp4")),
            ("..%5C..%5Cwin.ini.mp4", ("win.ini", "mp4")),
            ("my  --  clip...final!!.mp4", ("my_clip_final", "mp4")),
            ("holiday-2024.v2.mp4", ("holiday-2024.v2", "mp4")),
            ("100%.mp4", ("100", "mp4")),
        ];
        for (input, (stem, ext)) in cases {
            assert_eq!(
                safe_name(input),
                (stem.to_owned(), ext.to_owned()),
                "{input:?}"
            );
        }
        let (long, _) = safe_name(&format!("{}.mp4", "x".repeat(10_000)));
        assert_eq!(long.len(), MAX_STEM);
    }
}
