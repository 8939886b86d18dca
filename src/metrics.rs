//! Prometheus metrics of one running videoshare: what the encoder and the
//! portal count, rendered as text by the portal's `/metrics`.
//!
//! One [`Metrics`] per app (not a process global), handed to each part at
//! start; a part only records into it. Knows nothing of HTTP or SQL.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CarbonLabels {
    /// The request's `TaskType`, or `invalid` when it could not be read.
    pub task: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

/// A farm node state, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct NodeStateLabels {
    pub state: String,
}

/// The encoder farm as the portal last saw it (through Carbon `NodeList`
/// and `NodeCommand`).
#[derive(Debug, Default)]
pub struct FarmGauges {
    /// Nodes in each state (`up`, `draining`, `disabled`).
    pub nodes: Family<NodeStateLabels, Gauge>,
    pub slots: Gauge,
    pub slots_busy: Gauge,
    pub queue_depth: Gauge,
    /// Jobs taken back from nodes whose lease ran out, over the farm's life.
    pub lease_expiries: Gauge,
}

/// Everything counted, and the registry that names it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs in each status (refreshed by the encoder).
    pub jobs: Family<StatusLabels, Gauge>,
    /// Seconds ffmpeg ran for each finished encode.
    pub encode_seconds: Histogram,
    /// Seconds from a job's check-in to its start.
    pub queue_wait_seconds: Histogram,
    /// Seconds from ffmpeg's start to an HLS ladder's first playable
    /// moment (its master playlist published).
    pub hls_first_playable_seconds: Histogram,
    /// Bytes of accepted uploads.
    pub upload_bytes: Counter,
    /// Open WebSocket connections.
    pub websocket_clients: Gauge,
    /// Carbon requests answered, by task type and result.
    pub carbon_requests: Family<CarbonLabels, Counter>,
    /// Jobs this process's sweeper took back from a node whose lease ran out.
    pub lease_expiries: Counter,
    /// Times the library read the streams folder.
    pub library_listings: Counter,
    /// File versions the library probed (ffprobe, then a thumbnail).
    pub library_probes: Counter,
    /// ffprobe processes running now, and the most at once so far (both
    /// read from the process-wide bound in `media::probe` when rendered).
    ffprobe_running: Gauge,
    ffprobe_running_max: Gauge,
    /// The encoder farm (set by the portal before each rendering).
    pub farm: FarmGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("videoshare");
        let jobs = Family::<StatusLabels, Gauge>::default();
        // 0.5 s .. ~4.5 h.
        let encode_seconds = Histogram::new(exponential_buckets(0.5, 2.0, 15));
        let queue_wait_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 18));
        // 0.25 s .. ~34 min.
        let hls_first_playable_seconds = Histogram::new(exponential_buckets(0.25, 2.0, 14));
        let upload_bytes = Counter::default();
        let websocket_clients = Gauge::default();
        let carbon_requests = Family::<CarbonLabels, Counter>::default();
        let library_listings = Counter::default();
        let lease_expiries = Counter::default();
        let library_probes = Counter::default();
        let ffprobe_running = Gauge::default();
        let ffprobe_running_max = Gauge::default();
        registry.register("jobs", "Jobs in each status", jobs.clone());
        registry.register(
            "encode_seconds",
            "Seconds ffmpeg ran for each finished encode",
            encode_seconds.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Seconds from a job's check-in to its start",
            queue_wait_seconds.clone(),
        );
        registry.register(
            "hls_first_playable_seconds",
            "Seconds from ffmpeg's start until an HLS ladder being encoded is playable",
            hls_first_playable_seconds.clone(),
        );
        registry.register(
            "upload_bytes",
            "Bytes of accepted uploads",
            upload_bytes.clone(),
        );
        registry.register(
            "websocket_clients",
            "Open WebSocket connections",
            websocket_clients.clone(),
        );
        registry.register(
            "carbon_requests",
            "Carbon requests answered, by task type and result",
            carbon_requests.clone(),
        );
        registry.register(
            "lease_expiries",
            "Jobs this node's sweeper took back from an encoder node whose lease ran out",
            lease_expiries.clone(),
        );
        registry.register(
            "library_listings",
            "Times the library read the streams folder",
            library_listings.clone(),
        );
        registry.register(
            "library_probes",
            "File versions the library probed (ffprobe and a thumbnail)",
            library_probes.clone(),
        );
        let farm = FarmGauges::default();
        registry.register(
            "farm_nodes",
            "Encoder nodes of the farm in each state",
            farm.nodes.clone(),
        );
        registry.register(
            "farm_slots",
            "Encode slots of the farm's present nodes",
            farm.slots.clone(),
        );
        registry.register(
            "farm_slots_busy",
            "Encode slots of the farm running a job",
            farm.slots_busy.clone(),
        );
        registry.register(
            "farm_queue_depth",
            "Jobs queued in the farm",
            farm.queue_depth.clone(),
        );
        registry.register(
            "farm_lease_expiries",
            "Jobs the farm took back from nodes whose lease ran out",
            farm.lease_expiries.clone(),
        );
        registry.register(
            "ffprobe_running",
            "ffprobe processes running now (bounded process-wide)",
            ffprobe_running.clone(),
        );
        registry.register(
            "ffprobe_running_max",
            "The most ffprobe processes that ran at once since the start",
            ffprobe_running_max.clone(),
        );
        Metrics {
            registry,
            jobs,
            encode_seconds,
            queue_wait_seconds,
            hls_first_playable_seconds,
            upload_bytes,
            websocket_clients,
            carbon_requests,
            library_listings,
            lease_expiries,
            library_probes,
            ffprobe_running,
            ffprobe_running_max,
            farm,
        }
    }
}

impl Metrics {
    /// Counts one Carbon request.
    pub fn carbon_request(&self, task: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.carbon_requests
            .get_or_create(&CarbonLabels {
                task: task.to_owned(),
                result,
            })
            .inc();
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.ffprobe_running
            .set(gauge(crate::media::probe::running()));
        self.ffprobe_running_max
            .set(gauge(crate::media::probe::peak_running()));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
