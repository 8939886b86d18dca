//! The JSON API behind the page's queue: this browser's jobs and their
//! controls. Every job is looked up through its owner, so another
//! browser's GUID is simply not found (the same answer as a GUID that never
//! existed: nothing leaks).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Serialize;

use super::Portal;
use super::error::ApiError;
use super::jobs::{Action, JobView};
use crate::carbon::{ClientError, Guid};
use crate::owner::Owner;
use crate::store::Upload;

/// How many jobs a queue shows (the newest).
pub const QUEUE_LENGTH: u32 = 100;

#[derive(Debug, Serialize)]
pub struct Queue {
    pub jobs: Vec<JobView>,
}

/// `GET /api/jobs`: this browser's jobs, newest first.
pub async fn my_jobs(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
) -> Result<Json<Queue>, ApiError> {
    Ok(Json(Queue {
        jobs: portal.queue_of(&owner).await?,
    }))
}

/// `GET /api/jobs/{guid}`: one of this browser's jobs.
pub async fn my_job(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Path(guid): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let upload = portal.owned_upload(&owner, &guid).await?;
    Ok(Json(portal.view(&upload).await))
}

/// `POST /api/jobs/{guid}/{action}`: pause, resume, stop or retry one of
/// this browser's jobs, through the encoder's Carbon `JobCommand`.
pub async fn control(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
    Path((guid, action)): Path<(String, String)>,
) -> Result<Json<JobView>, ApiError> {
    super::origin::require_same_origin(&headers)?;
    let action = Action::parse(&action).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_action",
            format!("{action:?} is not a job control: use pause, resume, stop or retry"),
        )
    })?;
    let upload = portal.owned_upload(&owner, &guid).await?;
    let entry = portal
        .inner
        .client
        .command(upload.guid, action.command())
        .await
        .map_err(|e| match e {
            ClientError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "refused", why),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "encoder_unavailable",
                format!("The encoding server is not reachable right now ({other})."),
            ),
        })?;
    tracing::info!(guid = %upload.guid, ?action, status = %entry.status, "job control");
    // Show the new state at once, and follow the job again after a retry.
    // The encoder's answer is the newest state there is: when a poll wrote
    // meanwhile (the write is compare-and-set), apply it to the row as it
    // is now.
    let mut upload = upload;
    for _ in 0..3 {
        if portal.record_encoder_state(&upload, Some(&entry)).await {
            break;
        }
        upload = portal.owned_upload(&owner, &guid).await?;
    }
    portal.inner.poke.notify_one();
    let upload = portal.owned_upload(&owner, &guid).await?;
    Ok(Json(portal.view(&upload).await))
}

impl Portal {
    /// One job as the page shows it.
    pub async fn view(&self, upload: &Upload) -> JobView {
        let mut views = self.views(std::slice::from_ref(upload)).await;
        views.pop().unwrap_or_else(|| JobView::from(upload))
    }

    /// `owner`'s queue as the page shows it.
    pub async fn queue_of(&self, owner: &Owner) -> Result<Vec<JobView>, ApiError> {
        let uploads = self
            .inner
            .uploads
            .of_owner(owner, QUEUE_LENGTH)
            .await
            .map_err(ApiError::internal)?;
        Ok(self.views(&uploads).await)
    }

    /// The upload with job `guid`, if `owner` made it; otherwise "not found"
    /// whether or not it exists.
    pub async fn owned_upload(&self, owner: &Owner, guid: &str) -> Result<Upload, ApiError> {
        let guid: Guid = guid
            .parse()
            .map_err(|e: crate::carbon::guid::InvalidGuid| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_guid", e.to_string())
            })?;
        match self
            .inner
            .uploads
            .get(guid)
            .await
            .map_err(ApiError::internal)?
        {
            Some(upload) if upload.is_owned_by(owner) => Ok(upload),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_job",
                format!("There is no job {guid} in your queue."),
            )),
        }
    }
}
