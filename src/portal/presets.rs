//! The presets offered on the upload page: the encoder's `ProfileList`,
//! asked again at most once a minute. When the encoder cannot say, the page
//! still offers the configured default.

use std::time::{Duration, Instant};

use super::Portal;
use crate::carbon::Guid;

/// How long a fetched list is used before asking the encoder again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// One choice in the upload form.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetChoice {
    pub guid: Guid,
    pub name: String,
    pub description: String,
    pub default: bool,
}

/// The last list fetched, and when.
#[derive(Debug, Default)]
pub struct PresetCache {
    fetched: tokio::sync::Mutex<Option<(Instant, Vec<PresetChoice>)>>,
}

impl Portal {
    /// The presets to offer, the default first-selected; `known` is false
    /// when the encoder could not be asked (only the default is offered).
    pub async fn preset_choices(&self) -> (Vec<PresetChoice>, bool) {
        let default = self.config().preset;
        let mut cache = self.inner.presets.fetched.lock().await;
        if let Some((at, list)) = cache.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return (list.clone(), true);
        }
        match self.inner.client.profiles().await {
            Ok(profiles) => {
                let list: Vec<PresetChoice> = profiles
                    .into_iter()
                    .map(|p| PresetChoice {
                        default: p.guid == default,
                        guid: p.guid,
                        name: p.name,
                        description: p.description,
                    })
                    .collect();
                *cache = Some((Instant::now(), list.clone()));
                (list, true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the encoder's presets");
                let only = PresetChoice {
                    guid: default,
                    name: "Default".to_owned(),
                    description: String::new(),
                    default: true,
                };
                (vec![only], false)
            }
        }
    }
}
