//! Running the ffmpeg tools as child processes and reading what ffprobe says
//! about a file.
//!
//! Every ffmpeg command line is built by [`ffmpeg_args`]; every run reads
//! its inputs through [`inputs`]: local files only, plain
//! media containers only.
//!
//! A finished HLS ladder folder is read as media files by [`hls_folder`];
//! [`download`] and [`storyboard`] make a ladder's download MP4 and its
//! scrubbing storyboard from it.
//!
//! A long source is cut into spans for chunked encoding by [`split`].
//!
//! Shared by the encoder (which probes sources before encoding) and the portal
//! (which refuses uploads without a video stream and lists durations). Knows
//! nothing about Carbon, HTTP or SQL.

pub mod download;
pub mod ffmpeg_args;
pub mod hls_folder;
pub mod inputs;
pub mod playlist;
pub mod probe;
pub mod process;
pub mod split;
pub mod storyboard;
pub mod synthetic;
pub mod thumbnail;

pub use probe::{AudioStream, MediaInfo, ProbeError, Unusable, VideoStream, probe};
