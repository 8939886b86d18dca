//! Chunked encoding's media side: a chunk's and the sound's ffmpeg command
//! lines ([`args`]), and joining the finished pieces without re-encoding
//! ([`join`]).

pub mod args;
pub mod join;
