//! The portal's one error shape: an HTTP status, a stable machine-readable
//! `code` and a sentence for people, sent as JSON; and [`Fault`], what can
//! fail inside the server, turned into that shape in one place
//! ([`ApiError::internal`]): logged in full, shown as "something went wrong".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failure inside the server, not the user's doing. Its text goes to the
/// log only: it may name server folders.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the hashing queue is closed: {0}")]
    HashingClosed(#[from] tokio::sync::AcquireError),
    #[error("password hash: {0}")]
    PasswordHash(#[from] argon2::password_hash::Error),
    #[error("page template: {0}")]
    Template(#[from] askama::Error),
    #[error("probing the file: {0}")]
    Probe(#[from] crate::media::ProbeError),
    #[error("a stored size is out of range: {0}")]
    Size(#[from] std::num::TryFromIntError),
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Says when to try again (`Retry-After`, in seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The one conversion of a [`Fault`] into a reply: logged with its
    /// cause, answered with a 500 that names nothing of the server.
    pub fn internal(fault: impl Into<Fault>) -> Self {
        let fault = fault.into();
        tracing::error!(error = %fault, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on the server; it has been logged. Please try again.",
        )
    }
}

impl From<Fault> for ApiError {
    fn from(fault: Fault) -> Self {
        ApiError::internal(fault)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, Json(self)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
