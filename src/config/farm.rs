//! Settings of the farm's file service and of `--fetch` nodes (encoder
//! nodes that do not see the shared folder), and of `videoshare
//! node-token`.

use std::path::PathBuf;

use clap::Args;

use super::{DataArgs, DatabaseArgs, parse_network};

/// The farm's file service, and nodes that fetch over it instead of
/// seeing the shared folder.
#[derive(Debug, Clone, Args)]
pub struct FarmFilesOptions {
    /// Serve sources to `--fetch` nodes and take their chunks' outputs
    /// over HTTP at this address (a node that sees the shared folder).
    #[arg(long, env = "VIDEOSHARE_FILE_SERVICE", value_name = "ADDR")]
    pub file_service: Option<String>,

    /// Networks (CIDR, or single addresses) besides loopback allowed to
    /// use --file-service; required when it listens on anything but
    /// loopback.
    #[arg(long, env = "VIDEOSHARE_FILE_SERVICE_ALLOW", value_delimiter = ',', value_parser = parse_network, value_name = "CIDR")]
    pub file_service_allow: Vec<ipnet::IpNet>,

    /// Where the file service keeps uploads until they are whole (default:
    /// the data folder's `streams/.farm-incoming`). Best on the file system
    /// of the jobs' destination folders: finished uploads are then renamed
    /// into place; elsewhere they are copied (whole, then renamed).
    #[arg(long, env = "VIDEOSHARE_FILE_SERVICE_INCOMING", value_name = "DIR")]
    pub file_service_incoming: Option<PathBuf>,

    /// This node does not see the shared folder: it takes only chunks of
    /// long jobs, fetching their sources from these file services (tried
    /// in order) and sending its output back.
    #[arg(
        long,
        env = "VIDEOSHARE_FETCH",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub fetch: Vec<String>,

    /// The file holding this node's token (`videoshare node-token NAME`).
    #[arg(long, env = "VIDEOSHARE_FETCH_TOKEN_FILE", value_name = "FILE")]
    pub fetch_token_file: Option<PathBuf>,

    /// Gigabytes of fetched sources a `--fetch` node keeps (least recently
    /// used go first).
    #[arg(long, env = "VIDEOSHARE_FETCH_CACHE_GB", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub fetch_cache_gb: u64,
}

impl Default for FarmFilesOptions {
    fn default() -> Self {
        FarmFilesOptions {
            file_service: None,
            file_service_allow: Vec::new(),
            file_service_incoming: None,
            fetch: Vec::new(),
            fetch_token_file: None,
            fetch_cache_gb: 20,
        }
    }
}

/// Settings of `videoshare node-token`.
#[derive(Debug, Clone, Args)]
pub struct NodeTokenArgs {
    /// The `--fetch` node's name (`--node`).
    #[arg(value_name = "NODE")]
    pub node: String,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}
