//! Who may see which video: in a public library everyone sees every
//! video; in a private one (`--private-library`) a person sees, lists and
//! plays only the videos their own uploads made. The rules live here, and
//! so does the middleware that applies them to `/streams/` byte ranges.
//!
//! Knows owners and the uploads' output index; nothing of sessions, ffmpeg
//! or the page's layout.

use std::sync::Arc;

use super::Video;
use crate::owner::Owner;
use crate::portal::Portal;
use crate::portal::pages;
use crate::portal::ws::HubEvent;

impl Portal {
    /// Pushes the current library to every browser. One at a time, so a
    /// newer listing is never overtaken by an older one.
    pub(in crate::portal) async fn publish_library(&self) {
        let _in_order = self.inner.library_publish_order.lock().await;
        let cards = pages::video_cards(&self.all_videos().await);
        let _ = self.inner.hub.send(HubEvent::Videos(Arc::new(cards)));
    }

    /// Every video in the streams folder, newest first, with the preset
    /// and owner of the upload that made it (when one did).
    async fn all_videos(&self) -> Vec<Video> {
        let mut videos = self.inner.library.list().await;
        let by_name = self.owner_index().await;
        for video in &mut videos {
            if let Some(output) = by_name.get(&video.output_name()) {
                video.preset = output.preset_name.clone();
                video.owner = output.owner.clone();
            }
        }
        videos
    }

    /// Which upload (and owner) made each file, by file name (cached by
    /// the store until outputs are recorded or change hands).
    async fn owner_index(&self) -> crate::store::uploads::OwnerIndex {
        self.inner.uploads.owner_index().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read outputs");
            Default::default()
        })
    }

    /// Whether `owner` may see `video`: always in a public library; in a
    /// private one only the videos of their own uploads.
    fn may_see(&self, video: &Video, owner: &Owner) -> bool {
        !self.config().private_library || video.owner.as_ref() == Some(owner)
    }

    /// The videos `owner` may see, newest first.
    pub async fn videos_for(&self, owner: &Owner) -> Vec<Video> {
        let mut videos = self.all_videos().await;
        videos.retain(|v| self.may_see(v, owner));
        videos
    }

    /// The cards of a published library that `owner` may see.
    pub(in crate::portal) fn visible_cards(
        &self,
        cards: &[pages::VideoCard],
        owner: &Owner,
    ) -> Vec<pages::VideoCard> {
        cards
            .iter()
            .filter(|c| self.may_see(&c.video, owner))
            .cloned()
            .collect()
    }
}

/// In a private library, a file under `/streams/` is served only to the
/// owner of the upload that made it; a ladder's playlists and segments to
/// the owner of the upload whose output is its master playlist. Others get
/// the same 404 as for a file that does not exist. Asks the owner index, never the folder: a
/// player's many Range requests cost a map lookup each.
pub(in crate::portal) async fn library_guard(
    axum::extract::State(portal): axum::extract::State<Portal>,
    axum::Extension(owner): axum::Extension<Owner>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !portal.config().private_library {
        return next.run(request).await;
    }
    let name = percent_encoding::percent_decode_str(request.uri().path().trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    // Files under a ladder folder belong to its master playlist's output.
    let allowed = portal
        .owner_index()
        .await
        .get(&super::ladder::output_of(&name))
        .is_some_and(|output| output.is_owned_by(&owner));
    if allowed {
        next.run(request).await
    } else {
        axum::http::StatusCode::NOT_FOUND.into_response()
    }
}
