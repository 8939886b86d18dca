//! Resumable uploads: the tus 1.0 protocol, core plus the `creation` and
//! `termination` extensions (<https://tus.io/protocols/resumable-upload>).
//!
//! `POST /files` creates an upload of a declared length; `PATCH
//! /files/{id}` appends bytes at the offset the server has; `HEAD` tells
//! that offset after a dropped connection; `DELETE` abandons the upload.
//! The bytes collect in `tus/<id>` under the data folder, and the file's
//! size *is* the offset, so a crash or restart never disagrees with what
//! is on disk and the upload resumes after it. When the last byte arrives
//! the file goes through the same checks and submission as a multipart
//! upload ([`super::upload::accept`]); the job's GUID is returned in an
//! `Upload-Job` header. Uploads belong to the session that created them;
//! another session gets 404. Unfinished uploads expire after a day. One
//! whose file was lost answers 410 Gone (see [`super::tus_recovery`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use axum::{Extension, Router};
use base64::Engine;

use super::Portal;
use super::error::{ApiError, Fault};
use super::upload::{UploadError, accept, chosen_preset};
use crate::carbon::Guid;
use crate::fsutil::TempFile;
use crate::owner::Owner;
use crate::resumable;
use crate::store::{TusUpload, now_ms};

/// The protocol version spoken.
const VERSION: &str = "1.0.0";

/// How long an unfinished upload is kept.
pub const EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Longest `Upload-Metadata` header accepted.
const MAX_METADATA: usize = 4096;

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
/// videoshare's addition: the GUID of the job a finished upload became.
const UPLOAD_JOB: HeaderName = HeaderName::from_static("upload-job");

/// The tus endpoints.
pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/files", options(capabilities).post(create))
        .route(
            "/files/{id}",
            options(capabilities)
                .head(offset)
                .patch(append)
                .delete(terminate),
        )
        // PATCH bodies are streamed to disk and bounded by Upload-Length.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The uploads a PATCH is writing to right now (one writer per upload).
pub type PatchWriters = crate::resumable::Writers;

/// A refusal in tus form: the usual JSON error plus `Tus-Resumable`.
#[derive(Debug)]
struct TusError(ApiError);

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response
            .headers_mut()
            .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
        response
    }
}

impl From<ApiError> for TusError {
    fn from(e: ApiError) -> Self {
        TusError(e)
    }
}

impl From<UploadError> for TusError {
    fn from(e: UploadError) -> Self {
        TusError(e.into())
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> TusError {
    TusError(ApiError::new(status, code, message))
}

impl From<Fault> for TusError {
    fn from(fault: Fault) -> Self {
        TusError(ApiError::internal(fault))
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn require_version(headers: &HeaderMap) -> Result<(), TusError> {
    match header_text(headers, &TUS_RESUMABLE) {
        Some(VERSION) => Ok(()),
        other => Err(refuse(
            StatusCode::PRECONDITION_FAILED,
            "tus_version",
            format!("This server speaks tus {VERSION} (Tus-Resumable was {other:?})."),
        )),
    }
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, TusError> {
    match header_text(headers, name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "bad_header",
                format!("{name} must be a whole number of bytes, not {text:?}."),
            )
        }),
    }
}

/// `Upload-Metadata`: `key base64,key base64,…`; values decoded as UTF-8.
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, TusError> {
    let Some(raw) = header_text(headers, &UPLOAD_METADATA) else {
        return Ok(Vec::new());
    };
    if raw.len() > MAX_METADATA {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_metadata",
            format!("Upload-Metadata is longer than {MAX_METADATA} bytes."),
        ));
    }
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let mut parts = pair.trim().splitn(2, ' ');
            let key = parts.next().unwrap_or_default().to_owned();
            let value = parts.next().unwrap_or_default().trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        "bad_metadata",
                        format!("Upload-Metadata {key:?} is not base64."),
                    )
                })?;
            Ok((key, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

fn with_tus(status: StatusCode, headers: Vec<(HeaderName, String)>) -> Response {
    let mut response = status.into_response();
    let map = response.headers_mut();
    map.insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(name, value);
        }
    }
    response
}

/// `OPTIONS`: what this server supports.
async fn capabilities(State(portal): State<Portal>) -> Response {
    with_tus(
        StatusCode::NO_CONTENT,
        vec![
            (TUS_VERSION, VERSION.to_owned()),
            (TUS_EXTENSION, "creation,termination".to_owned()),
            (TUS_MAX_SIZE, portal.config().max_upload.to_string()),
        ],
    )
}

impl Portal {
    fn tus_path(&self, id: &str) -> PathBuf {
        self.config().tus_dir.join(id)
    }

    /// The upload `id`, if `owner` created it; 404 otherwise.
    async fn owned_tus(&self, owner: &Owner, id: &str) -> Result<TusUpload, TusError> {
        let valid = crate::owner::is_random_id(id);
        let found = if valid {
            self.inner.tus.get(id).await.map_err(Fault::from)?
        } else {
            None
        };
        match found {
            Some(upload) if upload.owner == *owner => Ok(upload),
            _ => Err(refuse(
                StatusCode::NOT_FOUND,
                "unknown_upload",
                format!("There is no upload {id:?} of yours: start it again."),
            )),
        }
    }

    /// Removes expired uploads and files no record names (once they are a
    /// minute old: a file is created just before its record). Run at start
    /// and by the portal's housekeeping timer, never per request.
    pub async fn sweep_tus(&self) {
        let cutoff = now_ms() - EXPIRY.as_millis() as i64;
        match self.inner.tus.expire(cutoff).await {
            Ok(expired) => {
                for id in expired {
                    let _ = tokio::fs::remove_file(self.tus_path(&id)).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot expire resumable uploads"),
        }
        let Ok(known) = self.inner.tus.ids().await else {
            return;
        };
        let known: HashSet<String> = known.into_iter().collect();
        let Ok(mut entries) = tokio::fs::read_dir(&self.config().tus_dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let settled = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= ORPHAN_AGE);
            if settled && !known.contains(&name) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

/// How old a file with no record must be before a sweep removes it.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /files` (creation): a new upload of `Upload-Length` bytes.
async fn create(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
) -> Result<Response, TusError> {
    require_version(&headers)?;
    let limit = portal.config().max_upload;
    let length = number(&headers, &UPLOAD_LENGTH)?.ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "missing_length",
            "Upload-Length is required (uploads of unknown length are not supported).",
        )
    })?;
    let meta = metadata(&headers)?;
    let field = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let file_name = field("filename").unwrap_or_else(|| "video".to_owned());
    if length == 0 {
        return Err(UploadError::Empty(file_name).into());
    }
    if length > limit {
        return Err(UploadError::too_large(limit).into());
    }
    let preset = chosen_preset(&portal, &field("preset").unwrap_or_default()).await?;
    portal.check_job_cap(&owner).await?;
    let cap = portal.config().limits.resumable_per_owner;
    let open = portal.inner.tus.open_count_of(&owner).await;
    if open.map_err(Fault::from)? >= cap {
        return Err(UploadError::TooManyUploads(cap).into());
    }

    let id = crate::owner::new_random_id();
    tokio::fs::File::create_new(portal.tus_path(&id))
        .await
        .map_err(Fault::from)?;
    let upload = TusUpload {
        id: id.clone(),
        owner: owner.clone(),
        length: i64::try_from(length).map_err(Fault::from)?,
        file_name,
        preset: Some(preset.to_string()),
        created_at: now_ms(),
        guid: None,
    };
    if let Err(e) = portal.inner.tus.insert(&upload).await {
        let _ = tokio::fs::remove_file(portal.tus_path(&id)).await;
        return Err(Fault::from(e).into());
    }
    tracing::info!(%id, length, file = %upload.file_name, "resumable upload created");
    Ok(with_tus(
        StatusCode::CREATED,
        vec![(header::LOCATION, format!("/files/{id}"))],
    ))
}

/// `HEAD /files/{id}`: how many bytes the server has.
async fn offset(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
) -> Result<Response, TusError> {
    let upload = portal.owned_tus(&owner, &id).await?;
    let mut headers = vec![
        (
            UPLOAD_OFFSET,
            portal.received(&upload, true).await?.to_string(),
        ),
        (UPLOAD_LENGTH, upload.length.to_string()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    if let Some(guid) = upload.guid {
        headers.push((UPLOAD_JOB, guid));
    }
    Ok(with_tus(StatusCode::OK, headers))
}

/// `PATCH /files/{id}`: appends the body at `Upload-Offset`. Bytes that
/// arrive before a connection drops are kept: the client asks `HEAD` and
/// goes on from there.
async fn append(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, TusError> {
    require_version(&headers)?;
    let content_type = header_text(&headers, &header::CONTENT_TYPE);
    if content_type != Some("application/offset+octet-stream") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            "A PATCH carries Content-Type: application/offset+octet-stream.",
        ));
    }
    let upload = portal.owned_tus(&owner, &id).await?;
    let Some(_writing) = portal.inner.tus_writers.claim(&id) else {
        return Err(refuse(
            StatusCode::LOCKED,
            "upload_busy",
            "Another request is writing this upload; try again in a moment.",
        ));
    };
    let length = u64::try_from(upload.length).map_err(Fault::from)?;
    let have = portal.received(&upload, false).await?;
    let claimed = number(&headers, &UPLOAD_OFFSET)?.ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "missing_offset",
            "Upload-Offset is required.",
        )
    })?;
    if let Err(mismatch) = resumable::check_offset(have, claimed) {
        return Err(refuse(
            StatusCode::CONFLICT,
            "offset_mismatch",
            mismatch.to_string(),
        ));
    }
    if let Some(guid) = &upload.guid {
        // Already complete (a retried last PATCH): say so again.
        return Ok(with_tus(
            StatusCode::NO_CONTENT,
            vec![
                (UPLOAD_OFFSET, have.to_string()),
                (UPLOAD_JOB, guid.clone()),
            ],
        ));
    }

    let resumable::Appended { offset: now, cut } =
        resumable::append(&portal.tus_path(&id), have, length, body.into_data_stream())
            .await
            .map_err(Fault::from)?;
    portal.config().metrics.upload_bytes.inc_by(now - have);
    if let Some(why) = cut {
        tracing::info!(%id, received = now, length, %why, "resumable upload interrupted");
        let mut refused = refuse(
            StatusCode::BAD_REQUEST,
            "upload_interrupted",
            format!("The upload stopped at byte {now}: {why}"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&now.to_string()) {
            refused.headers_mut().insert(UPLOAD_OFFSET, value);
        }
        return Ok(refused);
    }
    if now < length {
        return Ok(with_tus(
            StatusCode::NO_CONTENT,
            vec![(UPLOAD_OFFSET, now.to_string())],
        ));
    }
    let guid = finish(&portal, upload, owner).await?;
    Ok(with_tus(
        StatusCode::NO_CONTENT,
        vec![
            (UPLOAD_OFFSET, now.to_string()),
            (UPLOAD_JOB, guid.to_string()),
        ],
    ))
}

/// The last byte is in: check and submit the file like a multipart upload.
async fn finish(portal: &Portal, upload: TusUpload, owner: Owner) -> Result<Guid, TusError> {
    // Abandoned (DELETE) while the last bytes arrived: nothing to submit.
    if portal
        .inner
        .tus
        .get(&upload.id)
        .await
        .map_err(Fault::from)?
        .is_none()
    {
        let _ = tokio::fs::remove_file(portal.tus_path(&upload.id)).await;
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "unknown_upload",
            "The upload was cancelled.",
        ));
    }
    let temp = TempFile::new_in(&portal.config().tmp_dir, "upload");
    tokio::fs::rename(portal.tus_path(&upload.id), temp.path())
        .await
        .map_err(Fault::from)?;
    let preset = upload
        .preset
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or(portal.config().preset);
    let size = u64::try_from(upload.length).map_err(Fault::from)?;
    // Runs to the end even if the client goes away, like a multipart upload.
    let accepting = tokio::spawn(accept(
        portal.clone(),
        temp,
        upload.file_name.clone(),
        size,
        preset,
        owner,
    ));
    match accepting.await.map_err(Fault::from)? {
        Ok(accepted) => {
            portal
                .inner
                .tus
                .finish(&upload.id, accepted.guid)
                .await
                .map_err(Fault::from)?;
            Ok(accepted.guid)
        }
        Err(refused) => {
            // Complete but refused (not a video, encoder down): the bytes
            // are gone with the temp file; the client is told why.
            let _ = portal.inner.tus.remove(&upload.id).await;
            Err(refused.into())
        }
    }
}

/// `DELETE /files/{id}` (termination): abandons the upload.
async fn terminate(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, TusError> {
    require_version(&headers)?;
    let upload = portal.owned_tus(&owner, &id).await?;
    portal
        .inner
        .tus
        .remove(&upload.id)
        .await
        .map_err(Fault::from)?;
    match tokio::fs::remove_file(portal.tus_path(&upload.id)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Fault::from(e).into()),
    }
    tracing::info!(%id, "resumable upload cancelled");
    Ok(with_tus(StatusCode::NO_CONTENT, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_are_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            UPLOAD_METADATA,
            HeaderValue::from_static("filename bXkgY2xpcC5tcDQ=,preset ,empty"),
        );
        let meta = metadata(&headers).expect("parses");
        assert_eq!(
            meta,
            [
                ("filename".to_owned(), "my clip.mp4".to_owned()),
                ("preset".to_owned(), String::new()),
                ("empty".to_owned(), String::new()),
            ]
        );
        headers.insert(UPLOAD_METADATA, HeaderValue::from_static("filename ***"));
        assert!(metadata(&headers).is_err());
    }
}
