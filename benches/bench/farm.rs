//! Encoder farm on PostgreSQL: separate `videoshare encoder --node` processes
//! sharing one queue, measured from outside as an operator would see them:
//!
//! - throughput of 1, 2 and 3 nodes (each `--encode-slots 1`, ffmpeg held
//!   to one thread per encode) on the same batch of jobs, submitted at once
//!   over Carbon: jobs/minute and scaling efficiency (speedup / nodes);
//! - submit-to-start latency on an idle farm of 3 nodes, one job at a time:
//!   `start_time − check_in_time` as the nodes wrote them (both ms, one
//!   machine's clock);
//! - requeue time after `kill -9` of the node running a job: from the kill
//!   to the other node's claim (its `start_time`, `attempts` one higher).
//!
//! Job states are read with SQL from the database every node writes, so
//! no node's view (or cache) stands between the bench and the queue.
//!
//! ffmpeg is held to one thread per encode with `--ffmpeg-threads 1`.
//!
//! The farm itself ([`Farm`]: a database, nodes, submits, kills) is shared
//! with the chunked-encoding bench (`chunks.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use videoshare::carbon::message::JobQueue;
use videoshare::carbon::{Client, Guid, PresetId};
use videoshare::store::Db;
use videoshare::store::testing::TestDb;

use crate::support::{Row, Server, make_clip, median, percentile, unix_micros};

/// Sizes of one run.
pub struct FarmPlan {
    /// Jobs of each throughput run.
    pub jobs: usize,
    /// Their clip (and the latency jobs'): seconds, width, height.
    pub clip: (u32, u32, u32),
    /// Jobs submitted one at a time to the idle farm.
    pub latency_jobs: usize,
    /// Nodes killed mid-encode.
    pub kills: usize,
    /// The clip of those jobs, long enough to be encoding at the kill.
    pub kill_clip: (u32, u32, u32),
}

/// Node counts of the throughput runs.
const NODE_COUNTS: [usize; 3] = [1, 2, 3];

/// The built-in H.264 360p preset (640×360, x264 veryfast).
pub const H264_360P: PresetId = PresetId::from_u128(0x543B8954_549F_4966_9B1C_99669AE288F7);

/// The bench's own preset: 360p at x264 veryslow, so a job is still
/// encoding when its node is killed.
const SLOW_360P: PresetId = PresetId::from_u128(0xFA4B0E11_7C3D_4E2A_9F60_5B8D1C2E3A47);

/// How long any wait on the farm may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(900);

/// What every farm of a run shares: the clips and the presets, all under
/// one folder that is every node's `--root`.
struct Bench {
    work: tempfile::TempDir,
    clip: PathBuf,
    kill_clip: PathBuf,
    config: PathBuf,
}

impl Bench {
    fn new(plan: &FarmPlan) -> Bench {
        let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
        let media = |name: &str, (secs, w, h): (u32, u32, u32)| {
            let dir = work.path().join("media").join(name);
            std::fs::create_dir_all(&dir).expect("media dir");
            make_clip(&dir, secs, w, h)
        };
        let clip = media("short", plan.clip);
        let kill_clip = media("long", plan.kill_clip);
        let config = slow_preset_config(work.path());
        Bench {
            clip,
            kill_clip,
            config,
            work,
        }
    }
}

/// A config whose presets folder adds [`SLOW_360P`].
pub fn slow_preset_config(dir: &Path) -> PathBuf {
    let presets = dir.join("presets");
    std::fs::create_dir_all(&presets).expect("presets dir");
    let preset = format!(
        "guid = \"{SLOW_360P}\"\nname = \"Slow 360p (bench)\"\n\
         description = \"H.264 640x360 at x264 veryslow\"\ncontainer = \"mp4\"\nextension = \"mp4\"\n\n\
         [video]\ncodec = \"libx264\"\nbitrate_kbps = 600\nwidth = 640\nheight = 360\nspeed = \"veryslow\"\n\n\
         [audio]\ncodec = \"aac\"\nbitrate_kbps = 96\n"
    );
    std::fs::write(presets.join("slow-360p.toml"), preset).expect("write preset");
    let config = dir.join("videoshare.toml");
    std::fs::write(&config, format!("presets = '{}'\n", presets.display())).expect("config");
    config
}

/// One job's row as the farm left it (times in unix ms).
pub struct JobRow {
    pub status: String,
    pub node: Option<String>,
    pub attempts: i64,
    pub progress: i64,
    pub start_time: Option<i64>,
    pub check_in_time: i64,
    pub completed_time: Option<i64>,
}

pub async fn job_row(db: &Db, guid: Guid) -> JobRow {
    #[allow(clippy::type_complexity)]
    let (status, node, attempts, progress, start_time, check_in_time, completed_time): (
        String,
        Option<String>,
        i64,
        i64,
        Option<i64>,
        i64,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT status, node, attempts, progress, start_time, check_in_time, completed_time \
         FROM jobs WHERE guid = $1",
    )
    .bind(guid.to_string())
    .fetch_one(db.pool())
    .await
    .expect("the job's row");
    JobRow {
        status,
        node,
        attempts,
        progress,
        start_time,
        check_in_time,
        completed_time,
    }
}

/// Asks `probe` every 20 ms until it answers; panics after [`PATIENCE`].
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(Instant::now() < deadline, "farm: {what} took too long");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Panics if the job ended in anything but COMPLETED: a figure from
/// failed encodes would mean nothing.
pub fn completed(db_row: &JobRow, guid: Guid) -> bool {
    let failed = ["STOPPED", "ERROR", "INVALID"].contains(&db_row.status.as_str());
    assert!(!failed, "farm: job {guid} ended {}", db_row.status);
    db_row.status == "COMPLETED"
}

/// A farm: a fresh PostgreSQL database and the nodes sharing it.
pub struct Farm<'a> {
    /// Every node's `--root`: sources and outputs live under it.
    work: &'a Path,
    config: &'a Path,
    /// Flags every node gets beyond the farm's own (chunking, say).
    flags: Vec<String>,
    label: String,
    test_db: TestDb,
    pub nodes: Vec<(String, Server)>,
    /// Nodes started so far (names are never reused).
    started: usize,
}

impl<'a> Farm<'a> {
    /// A new database and `nodes` nodes, all registered and up.
    async fn start(bench: &'a Bench, label: &str, nodes: usize) -> Farm<'a> {
        Farm::start_with(bench.work.path(), &bench.config, &[], label, nodes).await
    }

    /// [`Farm::start`] under `work` with `config`, every node also given
    /// `flags`.
    pub async fn start_with(
        work: &'a Path,
        config: &'a Path,
        flags: &[&str],
        label: &str,
        nodes: usize,
    ) -> Farm<'a> {
        let mut farm = Farm {
            work,
            config,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            label: label.to_owned(),
            test_db: TestDb::postgres().await,
            nodes: Vec::new(),
            started: 0,
        };
        for _ in 0..nodes {
            farm.add_node().await;
        }
        farm
    }

    pub fn db(&self) -> Db {
        self.test_db.db()
    }

    /// Starts one more node and waits until its row says it is up.
    pub async fn add_node(&mut self) {
        self.started += 1;
        let name = format!("{}-{}", self.label, self.started);
        let data = self.work.join("nodes").join(&name);
        std::fs::create_dir_all(&data).expect("node data");
        let (url, root) = (self.test_db.url(), self.work.display().to_string());
        let config = self.config.display().to_string();
        let mut args = vec![
            "--database",
            &url,
            "--node",
            &name,
            "--encode-slots",
            "1",
            "--ffmpeg-threads",
            "1",
            "--root",
            &root,
            "--config",
            &config,
        ];
        args.extend(self.flags.iter().map(String::as_str));
        let server = Server::start("encoder", &data, &args).await;
        let db = self.db();
        let wanted = name.clone();
        poll("a node registers", || {
            let (db, name) = (db.clone(), wanted.clone());
            async move {
                let up: Option<(String,)> =
                    sqlx::query_as("SELECT name FROM nodes WHERE name = $1 AND state = 'up'")
                        .bind(name)
                        .fetch_optional(db.pool())
                        .await
                        .expect("nodes");
                up.map(|_| ())
            }
        })
        .await;
        self.nodes.push((name, server));
    }

    /// A Carbon client of the first node (any node speaks for the farm).
    pub fn client(&self) -> Client {
        Client::new(self.nodes[0].1.carbon.to_string())
    }

    /// Queues `source` with `preset`, its output into the farm's folder.
    pub async fn submit(&self, client: &Client, source: &Path, preset: PresetId) -> Guid {
        let streams = self.work.join("streams").join(&self.label);
        std::fs::create_dir_all(&streams).expect("streams");
        let job = JobQueue::single(
            &source.to_string_lossy(),
            preset,
            &streams.to_string_lossy(),
        );
        client.queue(job).await.expect("queued")
    }

    /// Waits until job `guid` COMPLETED; returns its row.
    pub async fn wait_completed(&self, guid: Guid) -> JobRow {
        let db = self.db();
        poll("a job completes", || {
            let db = db.clone();
            async move {
                let row = job_row(&db, guid).await;
                completed(&row, guid).then_some(row)
            }
        })
        .await
    }

    /// Kills the node named `name` with SIGKILL; returns when (unix ms).
    pub async fn kill(&mut self, name: &str) -> i64 {
        let at = self
            .nodes
            .iter()
            .position(|(n, _)| n == name)
            .expect("the node holding the job is one of ours");
        let (_, mut server) = self.nodes.remove(at);
        let killed_at = (unix_micros() / 1000) as i64;
        server.child.start_kill().expect("kill -9");
        let _ = server.child.wait().await;
        killed_at
    }

    /// Stops every node, drops the database and the outputs.
    pub async fn stop(self) {
        for (_, server) in self.nodes {
            server.stop().await;
        }
        let streams = self.work.join("streams").join(&self.label);
        let _ = std::fs::remove_dir_all(streams);
    }
}

/// One throughput run: `jobs` jobs queued at once on `nodes` nodes.
/// Returns the wall time and how many jobs each node ran.
async fn throughput(bench: &Bench, nodes: usize, jobs: usize) -> (f64, Vec<(String, i64)>) {
    let farm = Farm::start(bench, &format!("x{nodes}"), nodes).await;
    let client = farm.client();
    let started = Instant::now();
    let mut guids = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        guids.push(farm.submit(&client, &bench.clip, H264_360P).await);
    }
    for &guid in &guids {
        farm.wait_completed(guid).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let spread: Vec<(String, i64)> =
        sqlx::query_as("SELECT COALESCE(node, ''), COUNT(*) FROM jobs GROUP BY node ORDER BY node")
            .fetch_all(farm.db().pool())
            .await
            .expect("jobs per node");
    farm.stop().await;
    println!(
        "farm: {nodes} node(s): {jobs} jobs in {wall:.1} s = {:.1} jobs/min; per node {spread:?}",
        jobs as f64 / wall * 60.0
    );
    (wall, spread)
}

async fn throughput_row(bench: &Bench, plan: &FarmPlan) -> Row {
    println!(
        "farm: this machine has {} cores: with one ffmpeg thread per node, ~2× one node is the \
         ceiling on 2 cores, whatever the number of nodes",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut runs = Vec::new();
    for nodes in NODE_COUNTS {
        runs.push((nodes, throughput(bench, nodes, plan.jobs).await));
    }
    let one = runs[0].1.0;
    let mut parts = Vec::new();
    let mut details = Vec::new();
    for (nodes, (wall, spread)) in &runs {
        let (per_minute, speedup) = (plan.jobs as f64 / wall * 60.0, one / wall);
        let efficiency = speedup / *nodes as f64;
        parts.push(if *nodes == 1 {
            format!("1 node {per_minute:.1} jobs/min")
        } else {
            format!(
                "{nodes} nodes {per_minute:.1} jobs/min ({speedup:.2}×, efficiency {efficiency:.2})"
            )
        });
        details.push(serde_json::json!({
            "nodes": nodes, "wall_s": wall, "jobs_per_minute": per_minute,
            "speedup": speedup, "efficiency": efficiency, "jobs_per_node": spread,
        }));
    }
    let (secs, w, h) = plan.clip;
    Row {
        measurement: "farm throughput",
        result: format!(
            "{}; {} jobs of a {secs} s {w}×{h} clip (H.264 360p) queued at once, --encode-slots 1, ffmpeg -threads 1",
            parts.join("; "),
            plan.jobs
        ),
        target: "scales to the cores: 2 cores, so ~2× at best",
        met: None,
        details: serde_json::json!({ "runs": details }),
    }
}

async fn latency_row(bench: &Bench, plan: &FarmPlan) -> Row {
    let farm = Farm::start(bench, "idle", 3).await;
    let client = farm.client();
    let mut latencies = Vec::new();
    for n in 0..plan.latency_jobs {
        // The nodes settle back to waiting; uneven gaps so no timer of
        // theirs (the slow poll) lines up with the submits.
        tokio::time::sleep(Duration::from_millis(200 + (n as u64 * 137) % 400)).await;
        let guid = farm.submit(&client, &bench.clip, H264_360P).await;
        let row = farm.wait_completed(guid).await;
        let started = row.start_time.expect("a completed job started");
        latencies.push((started - row.check_in_time) as f64);
    }
    farm.stop().await;
    let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    let max = latencies.iter().copied().fold(f64::NAN, f64::max);
    println!("farm: submit-to-start on an idle farm of 3 nodes (ms): {latencies:?}");
    Row {
        measurement: "farm submit-to-start",
        result: format!(
            "p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms over {} jobs, one at a time, 3 idle nodes",
            latencies.len()
        ),
        target: "a queued job starts within 100 ms on an idle farm",
        met: Some(p95 < 100.0),
        details: serde_json::json!({ "latencies_ms": latencies }),
    }
}

/// Waits until job `guid` is being encoded: STARTED and ffmpeg has
/// reported progress, or STARTED for half a second (progress is written at
/// each lease renewal, every 2 s). Panics if it finished first.
async fn under_way(db: &Db, guid: Guid) -> JobRow {
    let deadline = Instant::now() + PATIENCE;
    let mut started_seen: Option<Instant> = None;
    loop {
        let row = job_row(db, guid).await;
        if row.status == "STARTED" {
            let since = *started_seen.get_or_insert_with(Instant::now);
            if row.progress > 0 || since.elapsed() >= Duration::from_millis(500) {
                return row;
            }
        }
        assert!(
            !completed(&row, guid),
            "farm: the kill clip is too short: the job finished before the kill"
        );
        assert!(Instant::now() < deadline, "farm: the slow job never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One kill: a slow job is queued on the farm's two nodes, the node
/// running it is killed once ffmpeg is under way, and the other's claim is
/// awaited. Returns the requeue time in ms; a fresh node replaces the dead one.
async fn one_kill(bench: &Bench, farm: &mut Farm<'_>, client: &Client) -> f64 {
    let guid = farm.submit(client, &bench.kill_clip, SLOW_360P).await;
    let db = farm.db();
    let running = under_way(&db, guid).await;
    let holder = running.node.clone().expect("a running job has a node");
    let killed_at = farm.kill(&holder).await;
    let after = job_row(&db, guid).await;
    assert!(
        after.status != "COMPLETED" || after.attempts > running.attempts,
        "farm: the kill clip is too short: the job finished before its node died"
    );
    let claimed = poll("another node claims the job", || {
        let db = db.clone();
        let (holder, attempts) = (holder.clone(), running.attempts);
        async move {
            let row = job_row(&db, guid).await;
            let moved = row.attempts > attempts && row.node.as_deref() != Some(holder.as_str());
            (moved && row.start_time.is_some()).then_some(row)
        }
    })
    .await;
    let requeue_ms = (claimed.start_time.unwrap_or(killed_at) - killed_at) as f64;
    println!(
        "farm: killed {holder} mid-encode; {} claimed the job after {requeue_ms:.0} ms (attempt {})",
        claimed.node.as_deref().unwrap_or("?"),
        claimed.attempts
    );
    farm.add_node().await;
    farm.wait_completed(guid).await;
    requeue_ms
}

async fn requeue_row(bench: &Bench, plan: &FarmPlan) -> Row {
    let mut farm = Farm::start(bench, "kill", 2).await;
    let mut times = Vec::new();
    for _ in 0..plan.kills {
        // A fresh client each round: the node it talked to may be dead.
        let client = farm.client();
        times.push(one_kill(bench, &mut farm, &client).await);
    }
    farm.stop().await;
    let min = times.iter().copied().fold(f64::NAN, f64::min);
    let max = times.iter().copied().fold(f64::NAN, f64::max);
    let (secs, w, h) = plan.kill_clip;
    Row {
        measurement: "farm requeue after kill -9",
        result: format!(
            "min {:.1} s, median {:.1} s, max {:.1} s over {} kills (2 nodes; a {secs} s {w}×{h} clip at x264 veryslow, killed mid-encode, finished by the other node)",
            min / 1000.0,
            median(&times) / 1000.0,
            max / 1000.0,
            times.len()
        ),
        target: "requeued within 15 s of the node's death",
        met: Some(max < 15_000.0),
        details: serde_json::json!({ "requeue_ms": times }),
    }
}

/// Every farm figure: throughput, submit-to-start latency, requeue time.
pub async fn run(plan: FarmPlan) -> Vec<Row> {
    let bench = Bench::new(&plan);
    vec![
        throughput_row(&bench, &plan).await,
        latency_row(&bench, &plan).await,
        requeue_row(&bench, &plan).await,
    ]
}
