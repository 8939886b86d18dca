//! The Carbon socket protocol (Rhozet Carbon Coder / Adobe Flash Media
//! Encoding Server): framing, text encoding, typed messages and a client.
//!
//! Owns the wire format only. It must not know about HTTP, ffmpeg or SQL:
//! both the encoder (server side) and the portal (client side) build on it.

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
