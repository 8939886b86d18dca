//! The Carbon socket protocol (Rhozet Carbon Coder / Adobe Flash Media
//! Encoding Server): framing, text encoding, an XML element tree, typed
//! messages in the Carbon API manual's shapes, and a client.
//!
//! Owns the wire format only. It must not know about HTTP, ffmpeg or SQL:
//! both the encoder (server side) and the portal (client side) build on it.

/// Implements serde for a type through its `Display` and `FromStr`, so the
/// text form on the wire is the one place that defines it.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A fixed vocabulary of words (task types, commands, operators): the enum,
/// its wire text, case-insensitive parsing whose error lists the choices, and
/// serde through that text.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::carbon::UnknownWord;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
                    .ok_or_else(|| $crate::carbon::UnknownWord {
                        what: $what,
                        word: text.to_owned(),
                        choices: Self::ALL.iter().map(|k| k.as_str()).collect(),
                    })
            }
        }

        serde_as_text!($name);
    };
}

/// A word outside a keyword enum's vocabulary; the text lists the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?}; expected one of {}", .choices.join(", "))]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
    pub choices: Vec<&'static str>,
}

pub mod client;
pub mod client_path;
mod doc_end;
pub mod frame;
pub mod guid;
pub mod message;
pub mod status;
pub mod text;
pub mod xml;

pub use client::{Client, ClientError};
pub use frame::{CarbonCodec, FrameError};
pub use guid::{Guid, PresetId};
pub use message::{JobCommand, JobEntry, JobQueue, JobStatusList, Reply, ReplyKind, Request};
pub use status::JobStatus;
