//! The portal's settings for life on the open internet: sessions, and the
//! limits that keep one client from starving the rest. Each has a default
//! fit for a small public site; every one is a flag and an environment
//! variable.

use clap::Args;

use crate::portal::limits::PortalLimits;
use crate::portal::session::DEFAULT_SESSION_DAYS;

/// Sessions and per-client limits of the web portal.
#[derive(Debug, Clone, Args)]
pub struct SecurityOptions {
    /// Mark session cookies `Secure` (sent over https only). They are
    /// anyway when a reverse proxy says the browser used https
    /// (`X-Forwarded-Proto: https` or `Forwarded: proto=https`).
    #[arg(long, env = "VIDEOSHARE_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Days an unused session lasts (every use renews it); signed-in
    /// sessions end on the server too.
    #[arg(long, env = "VIDEOSHARE_SESSION_DAYS", default_value_t = DEFAULT_SESSION_DAYS, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub session_days: u64,

    /// HTTP connections the portal holds at once; more wait in the
    /// kernel's backlog.
    #[arg(long, env = "VIDEOSHARE_HTTP_MAX_CONNECTIONS", default_value_t = PortalLimits::DEFAULT.http_connections as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub http_max_connections: u64,

    /// HTTP connections one client address may hold at once (raise it
    /// behind a reverse proxy, where every browser shares its address).
    #[arg(long, env = "VIDEOSHARE_HTTP_PER_CLIENT", default_value_t = PortalLimits::DEFAULT.http_per_client as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub http_per_client: u64,

    /// Least an upload must send in each `--upload-window-secs` (a body
    /// that trickles in is ended), e.g. 16KiB.
    #[arg(long, env = "VIDEOSHARE_UPLOAD_MIN_BYTES", default_value = "16KiB", value_parser = super::parse_size, value_name = "SIZE")]
    pub upload_min_bytes: u64,

    /// The window of `--upload-min-bytes`, in seconds.
    #[arg(long, env = "VIDEOSHARE_UPLOAD_WINDOW_SECS", default_value_t = PortalLimits::DEFAULT.upload_window.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_window_secs: u64,

    /// Sign-in and register attempts per minute, per address and per
    /// account name.
    #[arg(long, env = "VIDEOSHARE_SIGN_IN_PER_MINUTE", default_value_t = PortalLimits::DEFAULT.sign_in_per_minute.get(), value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sign_in_per_minute: u32,

    /// Unfinished resumable uploads one user may have.
    #[arg(long, env = "VIDEOSHARE_MAX_RESUMABLE_PER_USER", default_value_t = PortalLimits::DEFAULT.resumable_per_owner, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_resumable_per_user: u32,

    /// Unfinished (queued or encoding) jobs one user may have.
    #[arg(long, env = "VIDEOSHARE_MAX_QUEUED_PER_USER", default_value_t = PortalLimits::DEFAULT.queued_per_owner, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_queued_per_user: u32,
}

impl SecurityOptions {
    /// The limits as the portal takes them.
    pub fn limits(&self) -> PortalLimits {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        PortalLimits {
            http_connections: count(self.http_max_connections),
            http_per_client: count(self.http_per_client),
            upload_min_bytes: self.upload_min_bytes,
            upload_window: std::time::Duration::from_secs(self.upload_window_secs),
            sign_in_per_minute: std::num::NonZeroU32::new(self.sign_in_per_minute)
                .unwrap_or(PortalLimits::DEFAULT.sign_in_per_minute),
            resumable_per_owner: self.max_resumable_per_user,
            queued_per_owner: self.max_queued_per_user,
        }
    }
}

impl Default for SecurityOptions {
    fn default() -> Self {
        let limits = PortalLimits::DEFAULT;
        SecurityOptions {
            secure_cookies: false,
            session_days: DEFAULT_SESSION_DAYS,
            http_max_connections: limits.http_connections as u64,
            http_per_client: limits.http_per_client as u64,
            upload_min_bytes: limits.upload_min_bytes,
            upload_window_secs: limits.upload_window.as_secs(),
            sign_in_per_minute: limits.sign_in_per_minute.get(),
            max_resumable_per_user: limits.resumable_per_owner,
            max_queued_per_user: limits.queued_per_owner,
        }
    }
}
