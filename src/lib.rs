//! videoshare: a web portal where people upload videos, watch them being
//! encoded live and play the results, and a Carbon-compatible encoder that
//! runs ffmpeg.
//!
//! - [`carbon`]: the Carbon socket protocol (frames, typed XML messages, client).
//! - [`encoder`]: the Carbon server, durable job queue, scheduler and ffmpeg runner.
//! - [`farmfiles`]: the farm's file service (HTTP) and its client, for `--fetch` nodes without the shared folder.
//! - [`portal`]: the axum web app: uploads, live progress, library, playback.
//! - [`store`]: SQLite through sqlx; migrations in `migrations/`.
//! - [`media`]: running ffmpeg tools (one command-line builder for every run); ffprobe.
//! - [`fsutil`]: temp-then-rename file placement that never shows partial files.
//! - [`resumable`]: the core of a resumable upload (offset = file size), for tus and the farm file service.
//! - [`ingest`]: watch folders and XML job folders, feeding the encoder.
//! - [`cli`]: the command-line Carbon client (`submit`, `jobs`, `job`, …).
//! - [`metrics`]: Prometheus counters of one running app.
//! - [`owner`]: whose uploads and jobs these are ([`owner::Owner`]), and the random id format.
//! - [`config`] and [`app`]: command line, the TOML config file, startup wiring.

pub mod app;
pub mod carbon;
pub mod cli;
pub mod config;
pub mod encoder;
pub mod farmfiles;
pub mod fsutil;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod owner;
pub mod portal;
pub mod resumable;
pub mod store;
