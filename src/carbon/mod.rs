//! The Carbon socket protocol (Rhozet Carbon Coder / Adobe Flash Media
//! Encoding Server): framing, text encoding, typed messages and a client.
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

pub mod client;
pub mod frame;
pub mod guid;
pub mod latin1;
pub mod message;
pub mod status;

pub use client::{Client, ClientError};
pub use frame::{CarbonCodec, FrameError};
pub use guid::Guid;
pub use message::{JobEntry, JobQueue, JobStatusList, Reply, Request};
pub use status::JobStatus;
