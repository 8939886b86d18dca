//! Chunk uploads on the file service: a manifest, resumable files, and a
//! verified, atomic placement.
//!
//! `POST /farm/v1/chunks/{guid}/{idx}/{attempt}` with the manifest makes
//! `incoming/<GUID>-<idx>-<attempt>/` (empty files) and a record beside it
//! (`<name>.manifest.json`: the node and the manifest). `HEAD`/`PATCH
//! …/files/{path}` tell and append at `Upload-Offset` like tus. `POST
//! …/complete` checks every file's size and SHA-256 (422 naming the first bad
//! one, which is emptied to be sent again), renames the folder to the
//! [`Authority::upload_target`] and asks [`Authority::delivered`]; a stale
//! chunk (409) leaves nothing behind.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{head, post};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::server::{Node, Refusal, Shared, parse_guid};
use super::{Authority, ChunkId, ManifestEntry, UPLOAD_OFFSET, check_manifest, sha256_file};
use crate::fsutil::off_runtime;
use crate::resumable;

/// Largest manifest body accepted (4096 entries of long paths fit).
const MANIFEST_LIMIT: usize = 2 * 1024 * 1024;

pub(super) fn routes<A: Authority>() -> Router<Shared<A>> {
    let chunk = "/farm/v1/chunks/{guid}/{idx}/{attempt}";
    Router::new()
        .route(
            chunk,
            post(create::<A>).layer(DefaultBodyLimit::max(MANIFEST_LIMIT)),
        )
        .route(&format!("{chunk}/complete"), post(complete::<A>))
        .route(
            &format!("{chunk}/files/{{*path}}"),
            // PATCH bodies are streamed to disk, bounded by the file's size.
            head(offset::<A>)
                .patch(append::<A>)
                .layer(DefaultBodyLimit::disable()),
        )
}

/// What is kept beside an upload's folder until it is placed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    node: String,
    files: Vec<ManifestEntry>,
}

/// One chunk upload's places in `incoming/`.
struct Upload {
    chunk: ChunkId,
    folder: PathBuf,
    record: PathBuf,
    /// The record once the folder is placed: a repeated `complete` (its
    /// answer was lost) is answered again from it.
    placed: PathBuf,
}

impl Upload {
    fn new(
        incoming: &Path,
        (guid, idx, attempt): (String, String, String),
    ) -> Result<Self, Refusal> {
        let number = |what: &str, text: &str| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_chunk",
                format!("The chunk {what} must be a whole number, not {text:?}."),
            )
        };
        let chunk = ChunkId {
            guid: parse_guid(&guid)?,
            idx: idx.parse().map_err(|_| number("index", &idx))?,
            attempt: attempt.parse().map_err(|_| number("attempt", &attempt))?,
        };
        let name = chunk.name();
        Ok(Upload {
            chunk,
            folder: incoming.join(&name),
            record: incoming.join(format!("{name}.manifest.json")),
            placed: incoming.join(format!("{name}.placed.json")),
        })
    }

    /// The record, if `node` made this upload; 404 (none) or 403 (another node's).
    async fn record_of(&self, node: &str) -> Result<Record, Refusal> {
        self.read(&self.record, node).await?.ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_upload",
                format!(
                    "There is no upload of {}: POST its manifest first.",
                    self.chunk
                ),
            )
        })
    }

    /// The record at `path` (`None` if there is none), if `node` made it;
    /// 403 if another node did.
    async fn read(&self, path: &Path, node: &str) -> Result<Option<Record>, Refusal> {
        let text = match tokio::fs::read(path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Refusal::internal("read an upload's record", e)),
        };
        let record: Record = serde_json::from_slice(&text)
            .map_err(|e| Refusal::internal("read an upload's record", e))?;
        if record.node != node {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "not_yours",
                format!("The upload of {} is another node's.", self.chunk),
            ));
        }
        Ok(Some(record))
    }

    /// Removes the folder and the record (a stale or replaced upload).
    async fn discard(&self) {
        let _ = tokio::fs::remove_dir_all(&self.folder).await;
        let _ = tokio::fs::remove_file(&self.record).await;
        let _ = tokio::fs::remove_file(&self.placed).await;
    }
}

/// The entry of `path` in `record`; 404 if the manifest does not list it.
fn entry<'a>(record: &'a Record, path: &str) -> Result<&'a ManifestEntry, Refusal> {
    record.files.iter().find(|e| e.path == path).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "not_in_manifest",
            format!("The manifest lists no {path:?}."),
        )
        .about(path)
    })
}

/// `POST …/{guid}/{idx}/{attempt}`: starts (or resumes, with the same
/// manifest) the upload of a chunk this node holds.
async fn create<A: Authority>(
    State(service): State<Shared<A>>,
    Extension(Node(node)): Extension<Node>,
    UrlPath(ids): UrlPath<(String, String, String)>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let upload = Upload::new(&service.incoming, ids)?;
    let files: Vec<ManifestEntry> = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_manifest",
            format!("The manifest is a JSON list of {{path, size, sha256}}: {e}"),
        )
    })?;
    check_manifest(&files)
        .map_err(|why| Refusal::new(StatusCode::BAD_REQUEST, "bad_manifest", why))?;
    if service
        .authority
        .upload_target(&node, upload.chunk)
        .await
        .is_none()
    {
        upload.discard().await;
        return Err(Refusal::stale(upload.chunk));
    }
    let record = Record { node, files };
    if upload.record_of(&record.node).await.ok().as_ref() == Some(&record) {
        // The same manifest again (a retried POST): keep what arrived.
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"files": record.files.len()})),
        )
            .into_response());
    }
    upload.discard().await;
    lay_out(&upload, &record)
        .await
        .map_err(|e| Refusal::internal("start an upload", e))?;
    tracing::info!(chunk = %upload.chunk, node = %record.node, files = record.files.len(), "chunk upload started");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"files": record.files.len()})),
    )
        .into_response())
}

/// Makes the upload's folder with an empty file per entry, then its record
/// (written to a temp name and renamed, so a record is always whole).
async fn lay_out(upload: &Upload, record: &Record) -> std::io::Result<()> {
    for entry in &record.files {
        let path = upload.folder.join(&entry.path);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::File::create(&path).await?;
    }
    tokio::fs::create_dir_all(&upload.folder).await?;
    let temp = upload.record.with_extension("json.part");
    tokio::fs::write(&temp, serde_json::to_vec(record)?).await?;
    tokio::fs::rename(&temp, &upload.record).await
}

/// The bytes the server has of `path` (a lost file counts as none).
async fn have(path: &Path) -> Result<u64, Refusal> {
    resumable::offset(path)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|e| Refusal::internal("read an uploaded file's size", e))
}

/// `HEAD …/files/{path}`: `Upload-Offset` (and `Upload-Length`).
async fn offset<A: Authority>(
    State(service): State<Shared<A>>,
    Extension(Node(node)): Extension<Node>,
    UrlPath((guid, idx, attempt, path)): UrlPath<(String, String, String, String)>,
) -> Result<Response, Refusal> {
    let upload = Upload::new(&service.incoming, (guid, idx, attempt))?;
    let record = upload.record_of(&node).await?;
    let entry = entry(&record, &path)?;
    let have = have(&upload.folder.join(&entry.path)).await?;
    Ok((
        StatusCode::OK,
        [
            (UPLOAD_OFFSET, have.to_string()),
            ("upload-length", entry.size.to_string()),
            (header::CACHE_CONTROL.as_str(), "no-store".to_owned()),
        ],
    )
        .into_response())
}

/// `PATCH …/files/{path}`: appends the body at `Upload-Offset`.
async fn append<A: Authority>(
    State(service): State<Shared<A>>,
    Extension(Node(node)): Extension<Node>,
    UrlPath((guid, idx, attempt, path)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let upload = Upload::new(&service.incoming, (guid, idx, attempt))?;
    let record = upload.record_of(&node).await?;
    let entry = entry(&record, &path)?;
    let claimed = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "missing_offset",
                "Upload-Offset (a whole number of bytes) is required.",
            )
        })?;
    let _slot = service.upload_slot(&node)?;
    let key = format!("{}/{}", upload.chunk.name(), entry.path);
    let Some(_writing) = service.writers.claim(&key) else {
        return Err(Refusal::new(
            StatusCode::LOCKED,
            "upload_busy",
            "Another request is writing this file; try again in a moment.",
        )
        .about(&entry.path));
    };
    let file = upload.folder.join(&entry.path);
    let have = have(&file).await?;
    if let Err(mismatch) = resumable::check_offset(have, claimed) {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            mismatch.to_string(),
        )
        .about(&entry.path)
        .at(have));
    }
    let appended = resumable::append(&file, have, entry.size, body.into_data_stream())
        .await
        .map_err(|e| Refusal::internal("write an uploaded file", e))?;
    if let Some(why) = appended.cut {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "upload_interrupted",
            format!("The upload stopped at byte {}: {why}", appended.offset),
        )
        .about(&entry.path)
        .at(appended.offset));
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(UPLOAD_OFFSET, appended.offset.to_string())],
    )
        .into_response())
}

/// `POST …/complete`: verifies every file, places the folder, records the
/// delivery.
async fn complete<A: Authority>(
    State(service): State<Shared<A>>,
    Extension(Node(node)): Extension<Node>,
    UrlPath(ids): UrlPath<(String, String, String)>,
) -> Result<Response, Refusal> {
    let upload = Upload::new(&service.incoming, ids)?;
    if let Some(record) = upload.read(&upload.placed, &node).await? {
        return Ok(placed_answer(&record));
    }
    let record = upload.record_of(&node).await?;
    for entry in &record.files {
        verify(&upload.folder.join(&entry.path), entry).await?;
    }
    let chunk = upload.chunk;
    let Some(target) = service.authority.upload_target(&node, chunk).await else {
        upload.discard().await;
        return Err(Refusal::stale(chunk));
    };
    place(&upload.folder, &target).await?;
    if !service.authority.delivered(&node, chunk, &target).await {
        let _ = tokio::fs::remove_dir_all(&target).await;
        upload.discard().await;
        return Err(Refusal::stale(chunk));
    }
    if let Err(e) = tokio::fs::rename(&upload.record, &upload.placed).await {
        tracing::warn!(%chunk, error = %e, "cannot keep the record of a placed chunk");
    }
    tracing::info!(%chunk, %node, files = record.files.len(), "chunk output placed");
    Ok(placed_answer(&record))
}

/// The answer to a `complete` that placed (or had placed) `record`'s files.
fn placed_answer(record: &Record) -> Response {
    let bytes: u64 = record.files.iter().map(|e| e.size).sum();
    Json(serde_json::json!({"files": record.files.len(), "bytes": bytes})).into_response()
}

/// Removes what uploads left in `incoming` longer than `max_age` ago:
/// abandoned folders and their records, and the records of placed chunks.
/// Run it when the service starts and now and then (a day is a fair age:
/// far longer than a chunk lease). Returns how many entries it removed.
pub async fn sweep_incoming(incoming: &Path, max_age: std::time::Duration) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(incoming).await else {
        return 0;
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= max_age);
        if !old {
            continue;
        }
        let gone = if meta.is_dir() {
            tokio::fs::remove_dir_all(entry.path()).await
        } else {
            tokio::fs::remove_file(entry.path()).await
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot sweep incoming")
            }
        }
    }
    removed
}

/// Whether the file at `path` is the one `entry` lists; if not, it is
/// emptied (to be sent again from 0) and the answer is 422 naming it.
async fn verify(path: &Path, entry: &ManifestEntry) -> Result<(), Refusal> {
    let size = have(path).await?;
    let why = if size != entry.size {
        Some(format!(
            "has {size} bytes, the manifest says {}",
            entry.size
        ))
    } else {
        let owned = path.to_owned();
        let digest = off_runtime(move || sha256_file(&owned))
            .await
            .map_err(|e| Refusal::internal("hash an uploaded file", e))?;
        (digest != entry.sha256)
            .then(|| format!("has sha256 {digest}, the manifest says {}", entry.sha256))
    };
    let Some(why) = why else {
        return Ok(());
    };
    tracing::warn!(path = %entry.path, %why, "uploaded file does not match its manifest");
    tokio::fs::File::create(path)
        .await
        .map_err(|e| Refusal::internal("empty a bad uploaded file", e))?;
    Err(Refusal::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "file_mismatch",
        format!("{:?} {why}: send it again from byte 0.", entry.path),
    )
    .about(&entry.path))
}

/// Syncs `folder` and moves it to `target`, which must not exist (never
/// replaced; one rename, or a copy renamed into place across file systems,
/// so the target appears whole or not at all).
async fn place(folder: &Path, target: &Path) -> Result<(), Refusal> {
    let (folder, target) = (folder.to_owned(), target.to_owned());
    let placed = off_runtime(move || {
        crate::fsutil::sync_tree(&folder)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::fsutil::move_tree_no_replace(&folder, &target)
    })
    .await;
    match placed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Refusal::new(
            StatusCode::CONFLICT,
            "target_exists",
            "This chunk's output is already in place.",
        )),
        Err(e) => Err(Refusal::internal("place a chunk's output", e)),
    }
}
