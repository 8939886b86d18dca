//! Command-line and environment configuration, validated by clap at start,
//! and the TOML config file ([`file`]).

mod farm;
pub mod file;
pub mod security;

pub use farm::{FarmFilesOptions, NodeTokenArgs};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// videoshare: upload videos in a browser, encode them over the Carbon
/// protocol, watch the progress live and play the results.
///
/// `serve` runs everything; `encoder` and `portal` run one half each; the
/// other commands are Carbon clients of an encoder (any Carbon server).
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
    /// Run the Carbon encoder alone (no web portal).
    Encoder(EncoderArgs),
    /// Run the web portal alone, against any Carbon server.
    Portal(PortalArgs),
    /// Submit a file for encoding (a Carbon JobQueue).
    Submit(SubmitArgs),
    /// List jobs (a Carbon JobStatusList).
    Jobs(JobsArgs),
    /// Inspect or control one job (a Carbon JobCommand).
    Job(JobArgs),
    /// List the encoder's presets (a Carbon ProfileList).
    Presets(ConnectArgs),
    /// List the farm's encoder nodes, or enable / disable one (Carbon
    /// NodeList and NodeCommand, asked of any node).
    Nodes(NodesArgs),
    /// Make (or replace) the token a `--fetch` node shows the farm's file
    /// service; it is printed once, and only its SHA-256 is stored.
    NodeToken(NodeTokenArgs),
    /// Describe a media file as the encoder sees it (a Carbon JobEvaluate).
    Probe(ProbeArgs),
    /// Make a new session signing key; cookies signed with the old one
    /// stay valid for one session lifetime. Takes effect when the portal
    /// next starts.
    RotateSessionKey(DataArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Folder for uploads, encoded streams, temp files and the database.
    #[arg(
        long,
        env = "VIDEOSHARE_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
}

/// Which database holds the queue and the portal's records.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite:` (the data folder's `videoshare.db`, the default),
    /// `sqlite:PATH`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/NAME` for a
    /// PostgreSQL server that several encoder nodes share.
    #[arg(
        long,
        env = "VIDEOSHARE_DATABASE",
        default_value = "sqlite:",
        value_name = "URL"
    )]
    pub database: String,
}

impl Default for DatabaseArgs {
    fn default() -> Self {
        DatabaseArgs {
            database: "sqlite:".into(),
        }
    }
}

/// Settings of the Carbon encoder.
#[derive(Debug, Clone, Args)]
pub struct EncoderOptions {
    /// Address of the Carbon socket the encoder listens on.
    #[arg(
        long,
        env = "VIDEOSHARE_CARBON",
        default_value = "127.0.0.1:1547",
        value_name = "ADDR"
    )]
    pub carbon: String,

    /// Address of the Carbon Coder-style socket: one request per
    /// connection, closed after the reply (Carbon Coder's port is 1120);
    /// `off` disables it. Same requests, limits and --carbon-allow as --carbon.
    #[arg(
        long,
        env = "VIDEOSHARE_CARBON_CODER",
        default_value = "127.0.0.1:1120",
        value_name = "ADDR|off"
    )]
    pub carbon_coder: String,

    /// This encoder node's name in a farm: unique among the nodes sharing
    /// one database (default: the machine's host name).
    #[arg(long, env = "VIDEOSHARE_NODE", value_name = "NAME")]
    pub node: Option<String>,

    /// Threads each encode's ffmpeg may use for decoding, filtering and
    /// encoding (`-threads`, `-filter_threads`); ffmpeg chooses when unset.
    /// For a node sharing its cores with other nodes or services.
    #[arg(long, env = "VIDEOSHARE_FFMPEG_THREADS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub ffmpeg_threads: Option<u32>,

    /// Sources longer than this many seconds are encoded in chunks, which
    /// every node of the farm (and every slot) encodes at once; 0 turns
    /// chunking off.
    #[arg(
        long,
        env = "VIDEOSHARE_CHUNK_THRESHOLD_SECS",
        default_value_t = 300,
        value_name = "SECS"
    )]
    pub chunk_threshold_secs: u64,

    /// About how long each chunk is, in seconds (cut at the source's
    /// nearest keyframe, or at an HLS ladder's segment boundary).
    #[arg(long, env = "VIDEOSHARE_CHUNK_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600), value_name = "SECS")]
    pub chunk_secs: u64,

    /// How many encodes run at the same time.
    #[arg(long, env = "VIDEOSHARE_ENCODE_SLOTS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub encode_slots: u16,

    /// Another folder jobs may read sources from and write outputs to
    /// (besides the data folder's uploaded/ and streams/); repeatable.
    #[arg(
        long = "root",
        env = "VIDEOSHARE_ROOTS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub roots: Vec<PathBuf>,

    /// A TOML config file: presets folder, roots, path mappings, watch
    /// folders and XML job folders (see the README).
    #[arg(long, env = "VIDEOSHARE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Networks (CIDR, or single addresses) allowed to use the Carbon socket
    /// besides loopback, e.g. `10.0.0.0/8,192.168.1.20`. Required when
    /// --carbon listens on anything but loopback.
    #[arg(long, env = "VIDEOSHARE_CARBON_ALLOW", value_delimiter = ',', value_parser = parse_network, value_name = "CIDR")]
    pub carbon_allow: Vec<ipnet::IpNet>,

    /// Seconds an encode may go without progress before ffmpeg is killed
    /// and the job ends in ERROR (a hung read, a wedged filter).
    #[arg(long, env = "VIDEOSHARE_STALL_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub stall_secs: u64,

    /// Seconds a Carbon connection may stay idle before it is closed.
    #[arg(long, env = "VIDEOSHARE_CARBON_IDLE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub carbon_idle_secs: u64,

    /// Seconds a Carbon frame may take to arrive once its first byte has
    /// (fewer bytes than declared, then silence, is cut off).
    #[arg(long, env = "VIDEOSHARE_CARBON_FRAME_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub carbon_frame_secs: u64,

    /// Seconds a Carbon client may take to read a reply; one that sends
    /// requests but does not read the replies is disconnected.
    #[arg(long, env = "VIDEOSHARE_CARBON_WRITE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub carbon_write_secs: u64,

    /// Carbon connections served at once; more are refused with an error frame.
    #[arg(long, env = "VIDEOSHARE_CARBON_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub carbon_max_connections: u32,

    /// Largest Carbon frame accepted, e.g. 1MiB.
    #[arg(long, env = "VIDEOSHARE_CARBON_MAX_FRAME", default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub carbon_max_frame: u64,

    #[command(flatten)]
    pub files: FarmFilesOptions,
}

/// Settings of the web portal.
#[derive(Debug, Clone, Args)]
pub struct PortalOptions {
    /// Address of the web portal (port 0 picks a free port).
    #[arg(
        long,
        env = "VIDEOSHARE_HTTP",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub http: String,

    /// Largest accepted upload, e.g. 4GiB, 500MB, 1048576.
    #[arg(long, env = "VIDEOSHARE_MAX_UPLOAD", default_value = "4GiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_upload: u64,

    /// Seconds a browser may take to send a request's headers (a slow or
    /// stalled client is disconnected).
    #[arg(long, env = "VIDEOSHARE_HTTP_HEADER_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_secs: u64,

    /// Seconds a request body (an upload) may send nothing before the
    /// request is ended (a stalled or hostile client).
    #[arg(long, env = "VIDEOSHARE_HTTP_BODY_SECS", default_value_t = crate::portal::BODY_IDLE_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_secs: u64,

    /// How often the portal asks the encoder about unfinished jobs, in milliseconds.
    #[arg(long, env = "VIDEOSHARE_POLL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(20..=60_000))]
    pub poll_ms: u64,

    /// Let people register and sign in (username + password); without it
    /// every browser keeps its own anonymous private queue.
    #[arg(long, env = "VIDEOSHARE_ACCOUNTS")]
    pub accounts: bool,

    /// Show each user only the videos of their own uploads (the library is
    /// public otherwise, as the seed's streams folder was).
    #[arg(long, env = "VIDEOSHARE_PRIVATE_LIBRARY")]
    pub private_library: bool,

    /// WebSockets one client address may hold at once (raise it behind a
    /// reverse proxy, where every browser shares the proxy's address).
    #[arg(long, env = "VIDEOSHARE_WS_PER_CLIENT", default_value_t = crate::portal::ws::MAX_SOCKETS_PER_CLIENT as u64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ws_per_client: u64,

    #[command(flatten)]
    pub security: security::SecurityOptions,
}

/// Settings of `videoshare serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub encoder: EncoderOptions,
    #[command(flatten)]
    pub portal: PortalOptions,
}

/// Settings of `videoshare encoder`.
#[derive(Debug, Clone, Args)]
pub struct EncoderArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub encoder: EncoderOptions,
}

/// Settings of `videoshare portal`.
#[derive(Debug, Clone, Args)]
pub struct PortalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub portal: PortalOptions,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The portal's uploaded/ folder as the encoder names it (e.g.
    /// `c:\videoshare\uploaded` for a Windows Carbon server sharing it);
    /// default: the local path, for an encoder on this machine.
    #[arg(long, env = "VIDEOSHARE_ENCODER_UPLOADED", value_name = "PATH")]
    pub encoder_uploaded: Option<String>,
    /// The portal's streams/ folder as the encoder names it; default: the
    /// local path.
    #[arg(long, env = "VIDEOSHARE_ENCODER_STREAMS", value_name = "PATH")]
    pub encoder_streams: Option<String>,
    /// How the portal uses connections to the encoder: one per request
    /// (works with every Carbon server, Carbon Coder included), or one kept
    /// open for many (videoshare's --carbon, the seed's FMES).
    #[arg(long, env = "VIDEOSHARE_ENCODER_CONNECTION", value_enum, default_value_t = EncoderConnection::OnePerRequest)]
    pub encoder_connection: EncoderConnection,
}

/// `--encoder-connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderConnection {
    OnePerRequest,
    KeepOpen,
}

impl From<EncoderConnection> for crate::carbon::client::ConnectionHabit {
    fn from(c: EncoderConnection) -> Self {
        match c {
            EncoderConnection::OnePerRequest => Self::OnePerRequest,
            EncoderConnection::KeepOpen => Self::KeepOpen,
        }
    }
}

/// How a client reaches the Carbon server.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// The Carbon server, HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "VIDEOSHARE_ENCODER",
        default_value = "127.0.0.1:1547",
        value_name = "HOST:PORT"
    )]
    pub encoder: String,
    /// Seconds to wait for each reply.
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
}

/// Settings of `videoshare submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The source file. A local path is sent as an absolute path; a path
    /// that does not exist here (e.g. `c:\videoshare\uploaded\a.flv`) is
    /// sent as written, for the encoder to map.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// The preset GUID (see `videoshare presets`); default: the seed's 480p H.264.
    #[arg(long, value_name = "GUID")]
    pub preset: Option<String>,
    /// Another preset for the same job (one output per preset); repeatable.
    #[arg(long = "also", value_name = "GUID")]
    pub also: Vec<String>,
    /// Queue priority, 0-255 (higher runs first; default 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub priority: Option<u32>,
    /// Output folder as the encoder names it; default: the seed's Flash
    /// Media Server streams folder, which videoshare maps to its streams/.
    #[arg(long, value_name = "DIR")]
    pub dest: Option<String>,
    /// Output base name; `%s` is the source name without extension.
    #[arg(long, default_value = "%s", value_name = "TEMPLATE")]
    pub base_name: String,
    /// Job name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The job's Carbon `Description`.
    #[arg(long)]
    pub description: Option<String>,
    /// The Carbon `User` recorded on the job.
    #[arg(long)]
    pub user: Option<String>,
    /// Follow the job with a progress bar until it ends; the exit code is
    /// non-zero unless it COMPLETED.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Settings of `videoshare jobs`.
#[derive(Debug, Clone, Args)]
pub struct JobsArgs {
    /// Only jobs in this status (e.g. QUEUED, STARTED, COMPLETED, ERROR).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Settings of `videoshare nodes`.
#[derive(Debug, Clone, Args)]
pub struct NodesArgs {
    #[command(subcommand)]
    pub action: Option<NodesAction>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What `videoshare nodes` does (listing them when no action is given).
#[derive(Debug, Clone, Subcommand)]
pub enum NodesAction {
    /// Every node with its state, slots and load (the default).
    List,
    /// Let a node take jobs again.
    Enable {
        /// The node's name (`--node`), or its IP as `nodes` lists it.
        #[arg(value_name = "NODE")]
        node: String,
    },
    /// Drain a node: it finishes what it runs and takes nothing new.
    Disable {
        /// The node's name (`--node`), or its IP as `nodes` lists it.
        #[arg(value_name = "NODE")]
        node: String,
    },
}

/// Settings of `videoshare job`.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// The job's GUID, e.g. {0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}.
    #[arg(value_name = "GUID")]
    pub guid: String,
    #[command(subcommand)]
    pub action: JobAction,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What `videoshare job GUID` does.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum JobAction {
    /// Show the job, its source and its outputs (QueryInfo).
    Info,
    /// Suspend a running encode, or hold a queued job.
    Pause,
    /// Continue a paused job.
    Resume,
    /// Stop the job; a running encode is killed and its partial output removed.
    Stop,
    /// Run a STOPPED, ERROR, COMPLETED or INVALID job again.
    Requeue,
    /// Delete the job's record (a running encode is stopped first; outputs stay).
    Remove,
    /// Set the job's queue priority, 0-255.
    Priority {
        #[arg(value_parser = clap::value_parser!(u32).range(0..=255))]
        priority: u32,
    },
}

/// Settings of `videoshare probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The file, as for `submit`.
    #[arg(value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl ServeArgs {
    /// Defaults for everything, with the given data folder and both servers
    /// on loopback port 0 (what tests and benchmarks want).
    pub fn ephemeral(data: PathBuf) -> Self {
        ServeArgs {
            data: DataArgs { data },
            database: DatabaseArgs::default(),
            encoder: EncoderOptions {
                carbon: "127.0.0.1:0".into(),
                carbon_coder: "127.0.0.1:0".into(),
                node: None,
                ffmpeg_threads: None,
                chunk_threshold_secs: 300,
                chunk_secs: 60,
                encode_slots: 1,
                roots: Vec::new(),
                config: None,
                stall_secs: 120,
                carbon_allow: Vec::new(),
                carbon_idle_secs: 300,
                carbon_frame_secs: 10,
                carbon_write_secs: 10,
                carbon_max_connections: 256,
                carbon_max_frame: 1 << 20,
                files: FarmFilesOptions::default(),
            },
            portal: PortalOptions {
                http: "127.0.0.1:0".into(),
                max_upload: 4 << 30,
                http_header_secs: 10,
                http_body_secs: crate::portal::BODY_IDLE_SECS,
                poll_ms: 250,
                accounts: false,
                private_library: false,
                ws_per_client: crate::portal::ws::MAX_SOCKETS_PER_CLIENT as u64,
                security: Default::default(),
            },
        }
    }
}

/// Why a command-line value (`--carbon-allow`, a size) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not a network like 10.0.0.0/8 or an address")]
    Network(String),
    #[error("{text:?} is not a size ({reason}); examples: 4GiB, 500MB, 1048576")]
    Size { text: String, reason: String },
    #[error("the size must be greater than zero")]
    ZeroSize,
}

/// A network such as `10.0.0.0/8`, or one address (`192.168.1.20`).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, ValueError> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| ValueError::Network(text.to_owned()))
}

/// A byte size such as `4GiB`, `500MB` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let size: bytesize::ByteSize = text.trim().parse().map_err(|reason| ValueError::Size {
        text: text.to_owned(),
        reason,
    })?;
    if size.as_u64() == 0 {
        return Err(ValueError::ZeroSize);
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
    fn networks() {
        assert_eq!(
            parse_network("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_network(" 192.168.1.20 ").map(|n| n.to_string()),
            Ok("192.168.1.20/32".into())
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("anywhere").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
