//! The page, its static assets and the small JSON API.

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use serde::Serialize;

use super::Portal;
use super::error::ApiError;
use super::jobs::JobView;
use super::library::Video;
use crate::carbon::Guid;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    videos: Vec<Video>,
    max_upload: String,
    presets: Vec<super::presets::PresetChoice>,
}

#[derive(Template)]
#[template(path = "video_item.html")]
struct VideoItem<'a> {
    video: &'a Video,
}

/// A video plus its list item rendered by the same template as the page, so
/// live additions look exactly like the first render.
#[derive(Debug, Clone, Serialize)]
pub struct VideoCard {
    #[serde(flatten)]
    pub video: Video,
    pub html: String,
}

pub fn video_cards(videos: &[Video]) -> Vec<VideoCard> {
    videos
        .iter()
        .map(|video| VideoCard {
            html: VideoItem { video }.render().unwrap_or_default(),
            video: video.clone(),
        })
        .collect()
}

pub async fn index(State(portal): State<Portal>) -> Result<Html<String>, ApiError> {
    let (presets, _) = portal.preset_choices().await;
    let page = IndexPage {
        presets,
        videos: portal.inner.library.list().await,
        max_upload: bytesize::ByteSize(portal.config().max_upload)
            .display()
            .iec()
            .to_string(),
    };
    page.render().map(Html).map_err(ApiError::internal)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub async fn app_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
}

pub async fn style_css() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
}

/// `GET /api/videos`: the library as JSON.
pub async fn api_videos(State(portal): State<Portal>) -> Json<Vec<Video>> {
    Json(portal.inner.library.list().await)
}

/// `GET /api/jobs/{guid}`: one upload's job.
pub async fn api_job(
    State(portal): State<Portal>,
    Path(guid): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let guid: Guid = guid
        .parse()
        .map_err(|e: crate::carbon::guid::InvalidGuid| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_guid", e.to_string())
        })?;
    match portal
        .inner
        .uploads
        .get(guid)
        .await
        .map_err(ApiError::internal)?
    {
        Some(upload) => Ok(Json(JobView::from(&upload))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no upload has job {guid}"),
        )),
    }
}
