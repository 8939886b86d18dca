//! Command-line and environment configuration, validated by clap at start.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// videoshare: upload videos in a browser, encode them over the Carbon
/// protocol, watch the progress live and play the results.
#[derive(Debug, Parser)]
#[command(name = "videoshare", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web portal together with an embedded Carbon encoder.
    Serve(ServeArgs),
}

/// Settings of `videoshare serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the web portal (port 0 picks a free port).
    #[arg(
        long,
        env = "VIDEOSHARE_HTTP",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub http: String,

    /// Address of the Carbon socket the encoder listens on.
    #[arg(
        long,
        env = "VIDEOSHARE_CARBON",
        default_value = "127.0.0.1:1547",
        value_name = "ADDR"
    )]
    pub carbon: String,

    /// Folder for uploads, encoded streams, temp files and the database.
    #[arg(
        long,
        env = "VIDEOSHARE_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,

    /// Largest accepted upload, e.g. 4GiB, 500MB, 1048576.
    #[arg(long, env = "VIDEOSHARE_MAX_UPLOAD", default_value = "4GiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_upload: u64,

    /// How many encodes run at the same time.
    #[arg(long, env = "VIDEOSHARE_ENCODE_SLOTS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub encode_slots: u16,

    /// How often the portal asks the encoder about unfinished jobs, in milliseconds.
    #[arg(long, env = "VIDEOSHARE_POLL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(20..=60_000))]
    pub poll_ms: u64,
}

impl ServeArgs {
    /// Defaults for everything, with the given data folder and both servers
    /// on loopback port 0 (what tests and benchmarks want).
    pub fn ephemeral(data: PathBuf) -> Self {
        ServeArgs {
            http: "127.0.0.1:0".into(),
            carbon: "127.0.0.1:0".into(),
            data,
            max_upload: 4 << 30,
            encode_slots: 1,
            poll_ms: 250,
        }
    }
}

/// A byte size such as `4GiB`, `500MB` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a size ({e}); examples: 4GiB, 500MB, 1048576"))?;
    if size.as_u64() == 0 {
        return Err("the size must be greater than zero".into());
    }
    Ok(size.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500 MB"), Ok(500_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
