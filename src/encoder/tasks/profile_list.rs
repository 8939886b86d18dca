//! `ProfileList`: every preset is a `Destination` profile.

use super::super::Encoder;
use super::super::preset::{PROFILE_TYPE, Preset};
use crate::carbon::message::{Profile, ProfileList, Reply, profile_flags};

impl Encoder {
    /// Asking for another `ProfileType` (`Filter_Audio`, `Setting`, …)
    /// lists none; asking for none lists them all.
    pub(super) fn profile_list(&self, list: &ProfileList) -> Reply {
        let wanted = list
            .profile_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .is_none_or(|t| t.eq_ignore_ascii_case(PROFILE_TYPE));
        let profiles = if wanted {
            self.inner.presets.iter().map(profile).collect()
        } else {
            Vec::new()
        };
        Reply::Profiles { profiles }
    }
}

/// A preset as a Carbon profile: queueable and read-only (presets change
/// only by editing their files), SYSTEM when built in.
fn profile(p: &Preset) -> Profile {
    let system = if p.builtin { profile_flags::SYSTEM } else { 0 };
    Profile {
        guid: p.guid,
        name: p.name.clone(),
        category: PROFILE_TYPE.to_owned(),
        description: p.description.clone(),
        flags: profile_flags::QUEUEABLE | profile_flags::READ_ONLY | system,
        container: p.container.clone(),
        extension: p.extension.clone(),
        video_codec: p.video.as_ref().map(|v| v.codec.clone()),
        video_kbps: p.video.as_ref().map(|v| v.bitrate_kbps),
        width: p.video.as_ref().map(|v| v.width),
        height: p.video.as_ref().map(|v| v.height),
        audio_codec: p.audio.as_ref().map(|a| a.codec.clone()),
        audio_kbps: p.audio.as_ref().map(|a| a.bitrate_kbps),
    }
}
