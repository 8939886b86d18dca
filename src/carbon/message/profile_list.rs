//! `TaskType="ProfileList"`: the server's presets as Carbon profiles.

use super::{MessageError, TaskType};
use crate::carbon::guid::PresetId;
use crate::carbon::xml::Element;

/// `ProfileFlags.DWD` bits (manual §3.6).
pub mod flags {
    /// The profile can be queued.
    pub const QUEUEABLE: u32 = 0x01;
    /// A SYSTEM preset (clear: USER).
    pub const SYSTEM: u32 = 0x02;
    /// Read-only.
    pub const READ_ONLY: u32 = 0x04;
}

/// List profiles, optionally of one `ProfileType`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileList {
    pub profile_type: Option<String>,
}

impl ProfileList {
    pub(super) fn parse(root: &Element) -> Result<ProfileList, MessageError> {
        let _ = TaskType::ProfileList;
        Ok(ProfileList {
            profile_type: root
                .find("ProfileAttributes")
                .and_then(|a| a.get("ProfileType"))
                .map(|t| t.trim().to_owned()),
        })
    }

    pub(super) fn write(&self, root: Element) -> Element {
        match &self.profile_type {
            Some(t) => root.child(Element::new("ProfileAttributes").attr("ProfileType", t)),
            None => root,
        }
    }
}

/// One preset as a profile: the manual's attributes, then its main settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub guid: PresetId,
    pub name: String,
    /// The profile type it lists under (`Destination` for every preset).
    pub category: String,
    pub description: String,
    /// [`flags`] bits.
    pub flags: u32,
    pub container: String,
    pub extension: String,
    /// Absent for an audio-only preset.
    pub video_codec: Option<String>,
    pub video_kbps: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub audio_codec: Option<String>,
    pub audio_kbps: Option<u32>,
}

/// `<ProfileList NrOfProfiles.DWD><Profile_n …/></ProfileList>`.
pub(super) fn to_element(profiles: &[Profile]) -> Element {
    Element::new("ProfileList")
        .attr("NrOfProfiles.DWD", profiles.len())
        .numbered_children(
            "Profile",
            profiles.iter().map(|p| {
                Element::new("Profile")
                    .attr("GUID", p.guid)
                    .attr("Name", &p.name)
                    .attr("Category", &p.category)
                    .attr("Description", &p.description)
                    .attr("ProfileFlags.DWD", p.flags)
                    .attr("ProfileType", &p.category)
                    .attr("Container", &p.container)
                    .attr("Extension", &p.extension)
                    .opt_attr("VideoCodec", p.video_codec.as_deref())
                    .opt_attr("VideoBitrate.DWD", p.video_kbps)
                    .opt_attr("Width.DWD", p.width)
                    .opt_attr("Height.DWD", p.height)
                    .opt_attr("AudioCodec", p.audio_codec.as_deref())
                    .opt_attr("AudioBitrate.DWD", p.audio_kbps)
            }),
        )
}

pub(super) fn from_reply(reply: &Element) -> Result<Vec<Profile>, MessageError> {
    let Some(list) = reply.find("ProfileList") else {
        return Ok(Vec::new());
    };
    let int = |e: &Element, n: &str| e.get(n).and_then(|v| v.trim().parse::<u32>().ok());
    let text = |e: &Element, n: &str| e.get(n).unwrap_or_default().to_owned();
    list.numbered("Profile")
        .map_err(|e| MessageError::Malformed(e.to_string()))?
        .into_iter()
        .map(|p| {
            Ok(Profile {
                guid: p
                    .get_any(&["GUID", "Guid"])
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e: crate::carbon::guid::InvalidGuid| {
                        MessageError::Malformed(e.to_string())
                    })?,
                name: text(p, "Name"),
                category: text(p, "Category"),
                description: text(p, "Description"),
                flags: int(p, "ProfileFlags.DWD").unwrap_or(0),
                container: text(p, "Container"),
                extension: text(p, "Extension"),
                video_codec: p.get("VideoCodec").map(str::to_owned),
                video_kbps: int(p, "VideoBitrate.DWD"),
                width: int(p, "Width.DWD"),
                height: int(p, "Height.DWD"),
                audio_codec: p.get("AudioCodec").map(str::to_owned),
                audio_kbps: int(p, "AudioBitrate.DWD"),
            })
        })
        .collect()
}
