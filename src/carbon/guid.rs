//! `Guid`: a job identifier as Carbon writes it (and `PresetId`, a
//! preset's, written the same way):
//! `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` in uppercase hex with braces.

use std::fmt;
use std::str::FromStr;

/// A validated GUID. Parsing accepts any case, with or without braces;
/// display is always the canonical braced uppercase form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(uuid::Uuid);

impl Guid {
    /// A fresh random GUID for a new job.
    pub fn new_random() -> Self {
        Guid(uuid::Uuid::new_v4())
    }

    pub const fn from_u128(value: u128) -> Self {
        Guid(uuid::Uuid::from_u128(value))
    }
}

/// A string that is not a GUID.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0:?} is not a GUID: expected {{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}")]
pub struct InvalidGuid(pub String);

impl FromStr for Guid {
    type Err = InvalidGuid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(trimmed);
        // Only the hyphenated 36-character form: Carbon never sends the others.
        if inner.len() != 36 {
            return Err(InvalidGuid(s.to_owned()));
        }
        uuid::Uuid::parse_str(inner)
            .map(Guid)
            .map_err(|_| InvalidGuid(s.to_owned()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = uuid::Uuid::encode_buffer();
        write!(f, "{{{}}}", self.0.hyphenated().encode_upper(&mut buf))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

serde_as_text!(Guid);

/// A preset's identifier (a Carbon profile's GUID, `PresetGUID`): written
/// like a [`Guid`], but never mistaken for a job's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PresetId(Guid);

impl PresetId {
    pub const fn from_u128(value: u128) -> Self {
        PresetId(Guid::from_u128(value))
    }
}

impl From<Guid> for PresetId {
    fn from(guid: Guid) -> Self {
        PresetId(guid)
    }
}

impl FromStr for PresetId {
    type Err = InvalidGuid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(PresetId)
    }
}

impl fmt::Display for PresetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PresetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

serde_as_text!(PresetId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let g: Guid = "85dcce70-0b4f-4328-86d1-5fc7756d9777"
            .parse()
            .expect("valid");
        assert_eq!(g.to_string(), "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}");
        let braced: Guid = "{85DCCE70-0B4F-4328-86D1-5FC7756D9777}"
            .parse()
            .expect("valid");
        assert_eq!(g, braced);
    }

    #[test]
    fn rejects_non_guids() {
        for bad in [
            "",
            "{}",
            "not-a-guid",
            "85DCCE700B4F432886D15FC7756D9777",
            "{85DCCE70-0B4F-4328-86D1-5FC7756D977}",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad:?} accepted");
        }
    }
}
