//! The presets offered on the upload page: the encoder's `ProfileList`,
//! asked again at most once a minute. When the encoder cannot say, the page
//! still offers the configured default and says the encoder is unreachable.
//!
//! No page waits on another: the cache is never locked across a Carbon
//! request. One fetch runs at a time (single flight) in its own task; a
//! stale list (or a recent failure) is served at once while it runs, and a
//! failure is remembered for [`FAILURE_FOR`] so an unreachable encoder
//! costs a page nothing. Only when nothing is known yet does a page wait
//! for the fetch, at most [`FIRST_WAIT`].

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Portal;
use crate::carbon::PresetId;

/// How long a fetched list is used before asking the encoder again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// How long a failed fetch is believed before asking again.
pub const FAILURE_FOR: Duration = Duration::from_secs(5);

/// The longest a page waits for the first answer before rendering without
/// it (only the default preset, "encoder unreachable").
pub const FIRST_WAIT: Duration = Duration::from_secs(2);

/// One choice in the upload form.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetChoice {
    pub guid: PresetId,
    pub name: String,
    pub description: String,
    pub default: bool,
    /// An HLS ladder (`Container="hls"`): a folder, playable while it
    /// still encodes.
    pub ladder: bool,
}

/// What the last fetch found: the list, or `None` when it failed.
type Fetched = (Instant, Option<Vec<PresetChoice>>);

#[derive(Debug, Default)]
struct State {
    last: Option<Fetched>,
    fetching: bool,
}

/// The last list fetched (or failure), and whether a fetch is running.
#[derive(Debug, Default)]
pub struct PresetCache {
    state: Mutex<State>,
    fetched: Notify,
}

impl Portal {
    /// The presets to offer, the default first-selected; `known` is false
    /// when the encoder could not be asked (only the default is offered).
    pub async fn preset_choices(&self) -> (Vec<PresetChoice>, bool) {
        let cache = &self.inner.presets;
        let waiting = {
            let mut state = cache.state.lock();
            let fresh = state.last.as_ref().is_some_and(|(at, list)| {
                at.elapsed()
                    < if list.is_some() {
                        FRESH_FOR
                    } else {
                        FAILURE_FOR
                    }
            });
            if !fresh && !state.fetching {
                state.fetching = true;
                let portal = self.clone();
                tokio::spawn(async move { portal.fetch_presets().await });
            }
            match &state.last {
                // Fresh, or stale while a newer one is fetched.
                Some((_, list)) => return self.offer(list.clone()),
                // Nothing known yet: wait for the fetch (registered while
                // locked, so its end cannot be missed).
                None => cache.fetched.notified(),
            }
        };
        if tokio::time::timeout(FIRST_WAIT, waiting).await.is_err() {
            // Too slow to wait for: it counts as a failure until it ends.
            let mut state = cache.state.lock();
            if state.last.is_none() {
                state.last = Some((Instant::now(), None));
            }
        }
        let last = cache.state.lock().last.clone();
        self.offer(last.and_then(|(_, list)| list))
    }

    /// Whether the preset named `name` writes an HLS ladder, as far as the
    /// last list fetched says (never waits for a fetch).
    pub fn is_ladder_preset(&self, name: &str) -> bool {
        let state = self.inner.presets.state.lock();
        state
            .last
            .as_ref()
            .and_then(|(_, list)| list.as_ref())
            .is_some_and(|list| list.iter().any(|p| p.ladder && p.name == name))
    }

    /// What the page offers for a fetched list, or for none.
    fn offer(&self, list: Option<Vec<PresetChoice>>) -> (Vec<PresetChoice>, bool) {
        match list {
            Some(list) => (list, true),
            None => {
                let only = PresetChoice {
                    guid: self.config().preset,
                    name: "Default".to_owned(),
                    description: String::new(),
                    default: true,
                    ladder: false,
                };
                (vec![only], false)
            }
        }
    }

    /// Asks the encoder for its presets (no lock held meanwhile), records
    /// the answer or the failure, and wakes the pages waiting for it.
    async fn fetch_presets(&self) {
        let default = self.config().preset;
        let list = match self.inner.client.profiles().await {
            Ok(profiles) => Some(
                profiles
                    .into_iter()
                    .map(|p| PresetChoice {
                        default: p.guid == default,
                        ladder: p.container.eq_ignore_ascii_case("hls"),
                        guid: p.guid,
                        name: p.name,
                        description: p.description,
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the encoder's presets");
                None
            }
        };
        {
            let mut state = self.inner.presets.state.lock();
            state.last = Some((Instant::now(), list));
            state.fetching = false;
        }
        self.inner.presets.fetched.notify_waiters();
    }
}
