//! The pages (upload and queue, library, watch), their static assets and
//! the library's JSON.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::Portal;
use super::error::ApiError;
use super::library::{Page, Sort, Video, paginate};
use crate::owner::Owner;

/// The header's links: which page is open and who is signed in.
#[derive(Debug, Clone)]
pub struct Nav {
    pub current: &'static str,
    pub accounts: bool,
    pub user: Option<String>,
}

impl Nav {
    pub fn new(portal: &Portal, owner: &Owner, current: &'static str) -> Nav {
        Nav {
            current,
            accounts: portal.config().accounts,
            user: owner.account_name().map(str::to_owned),
        }
    }
}

/// How many videos the upload page shows; the library page has the rest.
const RECENT: usize = 8;

/// Videos per library page.
pub const PER_PAGE: usize = 12;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    nav: Nav,
    videos: Vec<Video>,
    more: bool,
    max_upload: String,
    max_upload_bytes: u64,
    presets: Vec<super::presets::PresetChoice>,
    /// Whether the encoder answered (otherwise the page says it cannot be
    /// reached and offers only the default preset).
    encoder_known: bool,
}

#[derive(Template)]
#[template(path = "library.html")]
struct LibraryPage {
    nav: Nav,
    page: Page<Video>,
    sort: Sort,
}

impl LibraryPage {
    /// Each sort's key, label and whether it is the one in use.
    fn sort_choices(&self) -> Vec<(&'static str, &'static str, bool)> {
        Sort::ALL
            .iter()
            .map(|(sort, key, name)| (*key, *name, *sort == self.sort))
            .collect()
    }

    fn link(&self, number: usize) -> String {
        format!("/library?sort={}&page={number}", self.sort.key())
    }
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage {
    nav: Nav,
    video: Video,
}

impl WatchPage {
    /// hls.js's URL: it names the version, so the file can be cached as
    /// immutable and an upgrade is fetched at once.
    fn hls_js(&self) -> String {
        format!("/static/hls.min.js?v={HLS_JS_VERSION}")
    }
}

/// The hls.js release embedded (pinned in `package-lock.json`; see `build.rs`).
pub const HLS_JS_VERSION: &str = env!("HLS_JS_VERSION");

#[derive(Template)]
#[template(path = "video_item.html")]
struct VideoItem<'a> {
    video: &'a Video,
}

/// A video plus its card rendered by the same template as the pages, so
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

fn html(page: impl Template) -> Result<Html<String>, ApiError> {
    page.render().map(Html).map_err(ApiError::internal)
}

pub async fn index(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
) -> Result<Html<String>, ApiError> {
    let (presets, encoder_known) = portal.preset_choices().await;
    let mut videos = portal.videos_for(&owner).await;
    let more = videos.len() > RECENT;
    videos.truncate(RECENT);
    html(IndexPage {
        nav: Nav::new(&portal, &owner, "upload"),
        presets,
        encoder_known,
        videos,
        more,
        max_upload: bytesize::ByteSize(portal.config().max_upload)
            .display()
            .iec()
            .to_string(),
        max_upload_bytes: portal.config().max_upload,
    })
}

#[derive(Debug, Deserialize)]
pub struct LibraryQuery {
    sort: Option<String>,
    page: Option<String>,
}

/// `GET /library?sort=…&page=…`: every video, sorted, a page at a time.
/// Unknown values fall back to the defaults (newest first, page 1).
pub async fn library(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Query(query): Query<LibraryQuery>,
) -> Result<Html<String>, ApiError> {
    let sort = query
        .sort
        .as_deref()
        .and_then(|key| Sort::ALL.iter().find(|(_, k, _)| *k == key))
        .map(|(s, _, _)| *s)
        .unwrap_or_default();
    let number = query
        .page
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let mut videos = portal.videos_for(&owner).await;
    sort.apply(&mut videos);
    html(LibraryPage {
        nav: Nav::new(&portal, &owner, "library"),
        page: paginate(videos, number, PER_PAGE),
        sort,
    })
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    nav: Nav,
    message: String,
}

/// `GET /watch/{name}`: one video with a player and a download link. An
/// unknown (or, in a private library, foreign) name is a 404: an HTML page
/// for a browser, the JSON error when the request asks for JSON.
pub async fn watch(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = portal
        .videos_for(&owner)
        .await
        .into_iter()
        .find(|v| v.name == name);
    let nav = Nav::new(&portal, &owner, "library");
    let Some(video) = found else {
        let message = format!("There is no video {name:?} in the library.");
        if super::upload::wants_json(&headers) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_video",
                message,
            ));
        }
        let page = html(NotFoundPage { nav, message })?;
        return Ok((StatusCode::NOT_FOUND, page).into_response());
    };
    Ok(html(WatchPage { nav, video })?.into_response())
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

pub async fn tus_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/tus.js"),
    )
}

pub async fn watch_js() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/watch.js"),
    )
}

/// hls.js (Apache-2.0, from npm: `npm ci` installs the pinned release),
/// for browsers without native HLS. Its page URL names its version, hence
/// the long cache.
pub async fn hls_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/node_modules/hls.js/dist/hls.min.js"
        )),
    )
}

pub async fn style_css() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
}

/// `GET /api/videos`: the library (what this browser may see) as JSON.
pub async fn api_videos(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
) -> Json<Vec<Video>> {
    Json(portal.videos_for(&owner).await)
}
