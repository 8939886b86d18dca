//! Resumable uploads a crash left half-made, put right at start and
//! answered clearly meanwhile.
//!
//! An upload's record and its file `tus/<id>` are two writes; `finish`
//! renames the file away before the job is submitted and recorded. A crash
//! between them leaves a record with no file. At start such a record is
//! completed with the job its bytes became, when the uploads table shows
//! one (so `HEAD` tells the client its job), and removed otherwise (the
//! client gets 404 and starts again). An upload whose file vanishes while
//! running answers 410 Gone and is forgotten — never a 500 for a day.

use axum::http::StatusCode;

use super::Portal;
use super::error::ApiError;
use crate::store::TusUpload;

/// What became of an unfinished upload's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bytes {
    /// This many bytes have arrived.
    Received(u64),
    /// The file is gone (a crash, or removed by hand): the upload is lost.
    Lost,
}

impl Portal {
    /// Settles every upload whose file is missing. Run at start, before any
    /// request is served (so no `finish` is under way).
    pub async fn recover_tus(&self) {
        let unfinished = match self.inner.tus.unfinished().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot read resumable uploads");
                return;
            }
        };
        for upload in unfinished {
            if self.tus_bytes(&upload).await != Bytes::Lost {
                continue;
            }
            match self.inner.tus.submitted_job(&upload).await {
                Ok(Some(guid)) => {
                    tracing::info!(id = %upload.id, %guid, "resumable upload completed by its job");
                    if let Err(e) = self.inner.tus.finish(&upload.id, &guid).await {
                        tracing::error!(error = %e, "cannot complete a resumable upload");
                    }
                }
                Ok(None) => {
                    tracing::info!(id = %upload.id, "resumable upload without its file removed");
                    self.forget_tus(&upload).await;
                }
                Err(e) => tracing::error!(error = %e, "cannot look for a resumable upload's job"),
            }
        }
    }

    /// Bytes of `upload` received so far (by its file's size).
    async fn tus_bytes(&self, upload: &TusUpload) -> Bytes {
        match crate::resumable::offset(&self.config().tus_dir.join(&upload.id)).await {
            Ok(Some(size)) => Bytes::Received(size),
            Ok(None) => Bytes::Lost,
            Err(e) => {
                // Unreadable, not gone: say nothing has arrived, keep it.
                tracing::warn!(id = %upload.id, error = %e, "cannot read a resumable upload's file");
                Bytes::Received(0)
            }
        }
    }

    async fn forget_tus(&self, upload: &TusUpload) {
        if let Err(e) = self.inner.tus.remove(&upload.id).await {
            tracing::error!(error = %e, "cannot remove a resumable upload");
        }
    }

    /// Bytes of `upload` received so far, or 410 Gone (and the upload
    /// forgotten) when its file was lost. `finishing` says the caller holds
    /// no write, so a missing file may be a `finish` under way (which has
    /// every byte).
    pub(super) async fn received(
        &self,
        upload: &TusUpload,
        finishing: bool,
    ) -> Result<u64, ApiError> {
        let length = u64::try_from(upload.length).unwrap_or(0);
        if upload.guid.is_some() {
            return Ok(length);
        }
        match self.tus_bytes(upload).await {
            Bytes::Received(n) => Ok(n),
            Bytes::Lost if finishing && self.inner.tus_writers.is_writing(&upload.id) => Ok(length),
            Bytes::Lost => {
                tracing::warn!(id = %upload.id, "resumable upload lost its file");
                self.forget_tus(upload).await;
                Err(ApiError::new(
                    StatusCode::GONE,
                    "upload_lost",
                    format!(
                        "The bytes of upload {} are gone (the server lost them): start it again.",
                        upload.id
                    ),
                ))
            }
        }
    }
}
