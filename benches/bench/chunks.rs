//! Chunked encoding on a farm of `videoshare encoder --node` processes on
//! PostgreSQL (the farm of `farm.rs`), one long source, side by side in one
//! run:
//!
//! - speedup: the job on 1 node unchunked (`--chunk-threshold-secs 0`), on
//!   1 node chunked, on 2 nodes chunked; each node `--encode-slots 1`,
//!   ffmpeg `-threads 1`, so 2 nodes can use the machine's 2 cores;
//! - cost of a death: the 2-node chunked job again, a node that encodes a
//!   video chunk and is not the conductor killed with `kill -9` at about
//!   half way; and the unchunked job on 2 nodes, its node killed at half
//!   way (the other restarts it from 0). A fresh node replaces the dead one
//!   at once, as an operator's supervisor would, so what is measured is the
//!   lost work and the lease, not a smaller farm.
//!
//! Wall time is the job's `completed_time − check_in_time` as the nodes
//! wrote them (queue to COMPLETED, database clock). One chunk's encode time
//! is the median gap between a node's successive `done_at` of the 2-node
//! run (its first chunk counted from the job's `start_time`). The CPU the
//! nodes' ffmpeg runs used (their `cutime + cstime`) is read too: it does
//! not depend on the machine's load, so it shows what chunking itself
//! costs, and CPU / wall shows how many cores the encodes really got on a
//! shared machine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use videoshare::carbon::{Guid, PresetId};
use videoshare::encoder::farm::LEASE;
use videoshare::store::Db;

use crate::farm::{Farm, JobRow, completed, job_row, poll, slow_preset_config};
use crate::support::{Row, children_cpu_secs_of, make_clip, median, unix_micros};

/// Sizes of one run.
pub struct ChunkPlan {
    /// The source: seconds, width, height (25 fps, with sound).
    pub source: (u32, u32, u32),
    /// `--chunk-secs` of the chunked runs.
    pub chunk_secs: u32,
    /// `--chunk-threshold-secs` of the chunked runs.
    pub threshold_secs: u32,
    /// The preset of the job, and its name for the table.
    pub preset: (PresetId, &'static str),
}

/// The built-in H.264 720p preset (1280×720, x264 veryfast, AAC).
pub const H264_720P: PresetId = PresetId::from_u128(0xA90F8887_FF1C_4387_B09A_083D5E54EBE4);

/// A chunk's row as the farm left it (`done_at` in unix ms).
#[derive(Debug, Clone)]
struct Chunk {
    kind: String,
    state: String,
    node: Option<String>,
    runs: i64,
    weight: i64,
    progress: i64,
    done_at: Option<i64>,
}

async fn chunk_rows(db: &Db, guid: Guid) -> Vec<Chunk> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, String, Option<String>, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT kind, state, node, runs, weight, progress, done_at \
         FROM chunks WHERE job_guid = $1 ORDER BY idx",
    )
    .bind(guid.to_string())
    .fetch_all(db.pool())
    .await
    .expect("the job's chunks");
    rows.into_iter()
        .map(
            |(kind, state, node, runs, weight, progress, done_at)| Chunk {
                kind,
                state,
                node,
                runs,
                weight,
                progress,
                done_at,
            },
        )
        .collect()
}

/// The share (0–100) of the chunks' work done, weighed as the conductor
/// weighs it: finished chunks whole, running ones by their progress.
fn chunked_progress(chunks: &[Chunk]) -> i64 {
    let total: i64 = chunks.iter().map(|c| c.weight).sum();
    let done: i64 = chunks
        .iter()
        .map(|c| match c.state.as_str() {
            "done" => c.weight * 100,
            "running" => c.weight * c.progress,
            _ => 0,
        })
        .sum();
    if total == 0 { 0 } else { done / total }
}

/// One finished job: its row, its chunks' rows, and the CPU seconds of
/// the live nodes' ffmpeg runs.
struct Run {
    job: JobRow,
    chunks: Vec<Chunk>,
    ffmpeg_cpu: f64,
}

impl Run {
    /// Queue to COMPLETED, in seconds.
    fn wall(&self) -> f64 {
        (self.job.completed_time.unwrap_or(self.job.check_in_time) - self.job.check_in_time) as f64
            / 1000.0
    }

    /// Claim to COMPLETED (the last attempt's), in seconds.
    fn encode(&self) -> f64 {
        let done = self.job.completed_time.unwrap_or(0);
        (done - self.job.start_time.unwrap_or(done)) as f64 / 1000.0
    }

    /// Cores the encodes used on average: ffmpeg CPU / encode time.
    fn cores(&self) -> f64 {
        self.ffmpeg_cpu / self.encode()
    }

    /// ffmpeg runs of all chunks: one each, more when a chunk was redone.
    fn runs(&self) -> i64 {
        self.chunks.iter().map(|c| c.runs).sum()
    }

    /// Every node's finished chunks in the order it finished them.
    fn by_node(&self) -> BTreeMap<&str, Vec<&Chunk>> {
        let mut nodes: BTreeMap<&str, Vec<&Chunk>> = BTreeMap::new();
        for chunk in self.chunks.iter().filter(|c| c.done_at.is_some()) {
            nodes
                .entry(chunk.node.as_deref().unwrap_or("?"))
                .or_default()
                .push(chunk);
        }
        for chunks in nodes.values_mut() {
            chunks.sort_by_key(|c| c.done_at);
        }
        nodes
    }

    /// How long each video chunk took its node, in seconds: the gap since
    /// that node's previous chunk (or the job's start).
    fn video_chunk_secs(&self) -> Vec<f64> {
        let start = self.job.start_time.unwrap_or(self.job.check_in_time);
        let mut secs = Vec::new();
        for chunks in self.by_node().values() {
            let mut previous = start;
            for chunk in chunks {
                let done = chunk.done_at.unwrap_or(previous);
                if chunk.kind == "video" {
                    secs.push((done - previous) as f64 / 1000.0);
                }
                previous = done;
            }
        }
        secs
    }

    /// Where the time of a chunked run goes, for the log: when the sound
    /// and the last video chunk finished, the join after them, and how
    /// long each node sat idle before the job completed.
    fn timeline(&self) -> String {
        let start = self.job.start_time.unwrap_or(self.job.check_in_time);
        let end = self.job.completed_time.unwrap_or(start);
        let at = |ms: i64| (ms - start) as f64 / 1000.0;
        let last_of = |kind: &str| {
            self.chunks
                .iter()
                .filter(|c| c.kind == kind)
                .filter_map(|c| c.done_at)
                .max()
        };
        let (sound, video) = (last_of("audio"), last_of("video"));
        let pieces_done = sound.max(video).unwrap_or(end);
        let nodes: Vec<String> = self
            .by_node()
            .iter()
            .map(|(node, chunks)| {
                let last = chunks.last().and_then(|c| c.done_at).unwrap_or(start);
                format!(
                    "{node}: {} chunk(s), idle the last {:.1} s",
                    chunks.len(),
                    (end - last) as f64 / 1000.0
                )
            })
            .collect();
        format!(
            "claimed +{:.1} s after queueing; sound done at {:.1} s, last video chunk at {:.1} s, \
             joined {:.1} s later (encode {:.1} s); {}",
            (start - self.job.check_in_time) as f64 / 1000.0,
            sound.map_or(f64::NAN, at),
            video.map_or(f64::NAN, at),
            (end - pieces_done) as f64 / 1000.0,
            self.encode(),
            nodes.join("; ")
        )
    }
}

/// The source and the presets config, under the folder that is every
/// node's `--root`.
struct Site {
    work: tempfile::TempDir,
    config: PathBuf,
    source: PathBuf,
}

impl Site {
    fn new(plan: &ChunkPlan) -> Site {
        let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
        let media = work.path().join("media");
        std::fs::create_dir_all(&media).expect("media dir");
        let (secs, w, h) = plan.source;
        let source = make_clip(&media, secs, w, h);
        let config = slow_preset_config(work.path());
        Site {
            work,
            config,
            source,
        }
    }
}

/// The chunking flags of a node: `plan`'s, or chunking off.
fn chunk_flags(plan: &ChunkPlan, chunked: bool) -> Vec<String> {
    let threshold = if chunked { plan.threshold_secs } else { 0 };
    vec![
        "--chunk-threshold-secs".into(),
        threshold.to_string(),
        "--chunk-secs".into(),
        plan.chunk_secs.to_string(),
    ]
}

/// Starts a farm of `nodes` nodes for one run.
async fn farm<'a>(
    site: &'a Site,
    plan: &ChunkPlan,
    label: &str,
    nodes: usize,
    chunked: bool,
) -> Farm<'a> {
    let flags = chunk_flags(plan, chunked);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Farm::start_with(site.work.path(), &site.config, &flags, label, nodes).await
}

/// Queues the source on `farm`.
async fn submit(farm: &Farm<'_>, site: &Site, plan: &ChunkPlan) -> Guid {
    farm.submit(&farm.client(), &site.source, plan.preset.0)
        .await
}

/// Waits for `guid` to complete; returns its rows and stops the farm.
async fn finish(farm: Farm<'_>, guid: Guid) -> Run {
    let job = farm.wait_completed(guid).await;
    let chunks = chunk_rows(&farm.db(), guid).await;
    let ffmpeg_cpu = farm
        .nodes
        .iter()
        .map(|(_, node)| children_cpu_secs_of(node.pid))
        .sum();
    farm.stop().await;
    Run {
        job,
        chunks,
        ffmpeg_cpu,
    }
}

/// The job on `nodes` fresh nodes, nobody killed.
async fn undisturbed(
    site: &Site,
    plan: &ChunkPlan,
    label: &str,
    nodes: usize,
    chunked: bool,
) -> Run {
    let farm = farm(site, plan, label, nodes, chunked).await;
    let guid = submit(&farm, site, plan).await;
    let run = finish(farm, guid).await;
    println!(
        "chunks: {label}: {nodes} node(s), {}: {:.1} s queue to COMPLETED, {} chunk(s), \
         ffmpeg CPU {:.1} s ({:.2} cores busy)",
        if chunked { "chunked" } else { "unchunked" },
        run.wall(),
        run.chunks.len(),
        run.ffmpeg_cpu,
        run.cores()
    );
    run
}

/// The node to kill once the job is half done (by its progress, or by
/// `half` of the undisturbed encode time since its claim, whichever comes
/// first): chunked, a node encoding a video chunk that is not the
/// conductor; unchunked, the job's node. Also the progress then (the rows
/// lag: they are written at each lease renewal, every 2 s). A chunked job
/// whose video chunks are all taken before half way (a smoke run's few
/// short chunks) is killed then: later there is no video chunk to lose.
async fn victim(db: &Db, guid: Guid, chunked: bool, half: f64) -> Option<(String, i64)> {
    let job = job_row(db, guid).await;
    assert!(
        !completed(&job, guid),
        "chunks: the source is too short: the job finished before the kill"
    );
    let (conductor, claimed) = (job.node.clone()?, job.start_time?);
    if job.status != "STARTED" {
        return None;
    }
    let elapsed = ((unix_micros() / 1000) as i64 - claimed) as f64 / 1000.0;
    if !chunked {
        return (job.progress >= 50 || elapsed >= half).then_some((conductor, job.progress));
    }
    let chunks = chunk_rows(db, guid).await;
    let progress = chunked_progress(&chunks);
    let last_chance = chunks.iter().any(|c| c.state == "done")
        && !chunks
            .iter()
            .any(|c| c.kind == "video" && c.state == "queued");
    if progress < 50 && elapsed < half && !last_chance {
        return None;
    }
    chunks
        .iter()
        .filter(|c| c.kind == "video" && c.state == "running")
        .filter_map(|c| c.node.clone())
        .find(|n| *n != conductor)
        .map(|n| (n, progress))
}

/// What one death cost: the run, who died at what progress.
struct Death {
    run: Run,
    node: String,
    progress: i64,
}

/// The job on 2 nodes, one killed half way and replaced at once.
async fn with_a_death(
    site: &Site,
    plan: &ChunkPlan,
    label: &str,
    chunked: bool,
    undisturbed_encode: f64,
) -> Death {
    let mut farm = farm(site, plan, label, 2, chunked).await;
    let guid = submit(&farm, site, plan).await;
    let db = farm.db();
    let half = undisturbed_encode / 2.0;
    let (node, progress) = poll("a node to kill half way", || {
        victim(&db, guid, chunked, half)
    })
    .await;
    let killed_at = farm.kill(&node).await;
    farm.add_node().await;
    let run = finish(farm, guid).await;
    let claimed = run.job.start_time.unwrap_or(killed_at);
    println!(
        "chunks: {label}: killed {node} at {progress} %: {:.1} s queue to COMPLETED; {}",
        run.wall(),
        if chunked {
            format!(
                "{} ffmpeg run(s) for {} chunk(s)",
                run.runs(),
                run.chunks.len()
            )
        } else {
            format!(
                "attempt {} claimed {:.1} s after the kill",
                run.job.attempts,
                (claimed - killed_at) as f64 / 1000.0
            )
        }
    );
    Death {
        run,
        node,
        progress,
    }
}

/// The first row: speedup of 2 chunked nodes.
fn speedup_row(plan: &ChunkPlan, runs: [&Run; 3]) -> Row {
    let [a, b, c] = runs.map(Run::wall);
    let (vs_unchunked, vs_chunked) = (a / c, b / c);
    let efficiency = vs_unchunked / 2.0;
    let [cpu_a, cpu_b, cpu_c] = runs.map(|r| r.ffmpeg_cpu);
    let cores = runs[2].cores();
    let (secs, w, h) = plan.source;
    Row {
        measurement: "chunked encode speedup",
        result: format!(
            "1 node unchunked {a:.1} s; 1 node chunked {b:.1} s; 2 nodes chunked {c:.1} s = \
             {vs_unchunked:.2}× vs unchunked (efficiency {efficiency:.2}), {vs_chunked:.2}× vs \
             1 node chunked; ffmpeg CPU {cpu_a:.1} / {cpu_b:.1} / {cpu_c:.1} s (2 nodes \
             chunked {:.2}× unchunked), 2 nodes kept {cores:.2} cores busy; one {secs} s {w}×{h} source, \
             {}, chunks of {} s, --encode-slots 1, ffmpeg -threads 1",
            cpu_c / cpu_a,
            plan.preset.1,
            plan.chunk_secs
        ),
        target: "≥ 1.8× on 2 nodes (2 cores)",
        met: Some(vs_unchunked >= 1.8),
        details: serde_json::json!({
            "wall_s": { "one_node_unchunked": a, "one_node_chunked": b, "two_nodes_chunked": c },
            "speedup_vs_unchunked": vs_unchunked, "speedup_vs_one_node_chunked": vs_chunked,
            "efficiency": efficiency,
            "ffmpeg_cpu_s": { "one_node_unchunked": cpu_a, "one_node_chunked": cpu_b, "two_nodes_chunked": cpu_c },
            "cores_busy_two_nodes": cores,
            "timeline_two_nodes": runs[2].timeline(),
        }),
    }
}

/// The second row: the extra wall time of a death, chunked and not.
fn death_row(undisturbed: [&Run; 2], deaths: [&Death; 2]) -> Row {
    let [whole, chunked] = undisturbed;
    let [chunk_death, whole_death] = deaths;
    let chunk_secs = median(&chunked.video_chunk_secs());
    let lease = LEASE.as_secs_f64();
    let bound = chunk_secs + lease;
    let extra = chunk_death.run.wall() - chunked.wall();
    let whole_extra = whole_death.run.wall() - whole.wall();
    Row {
        measurement: "chunked encode: cost of a death",
        result: format!(
            "kill -9 of a video-chunk node (not the conductor) half way ({} % by the rows): \
             {extra:+.1} s vs no kill (one chunk's encode {chunk_secs:.1} s + {lease:.0} s lease = \
             {bound:.1} s); unchunked, its node killed half way ({} %): {whole_extra:+.1} s \
             (restarted from 0); 2 nodes, the dead one replaced at once{}",
            chunk_death.progress,
            whole_death.progress,
            if extra < 0.0 || whole_extra < 0.0 {
                "; a negative figure: the machine's load changed between runs more than the death cost"
            } else {
                ""
            }
        ),
        target: "a chunked death costs ≤ one chunk + lease (+20 %)",
        met: Some(extra <= bound * 1.2),
        details: serde_json::json!({
            "chunked": {
                "no_kill_wall_s": chunked.wall(), "kill_wall_s": chunk_death.run.wall(),
                "extra_s": extra, "killed": chunk_death.node, "progress_at_kill": chunk_death.progress,
                "ffmpeg_runs": chunk_death.run.runs(), "chunks": chunk_death.run.chunks.len(),
                "median_chunk_encode_s": chunk_secs, "lease_s": lease,
            },
            "unchunked": {
                "no_kill_wall_s": whole.wall(), "kill_wall_s": whole_death.run.wall(),
                "extra_s": whole_extra, "killed": whole_death.node,
                "progress_at_kill": whole_death.progress,
            },
        }),
    }
}

/// Every chunked-encoding figure: speedup, then the cost of a death.
pub async fn run(plan: ChunkPlan) -> Vec<Row> {
    let site = Site::new(&plan);
    println!(
        "chunks: this machine has {} cores; one ffmpeg thread per node",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let a = undisturbed(&site, &plan, "c1u", 1, false).await;
    let b = undisturbed(&site, &plan, "c1c", 1, true).await;
    let c = undisturbed(&site, &plan, "c2c", 2, true).await;
    println!("chunks: 1 node chunked: {}", b.timeline());
    println!("chunks: 2 nodes chunked: {}", c.timeline());
    let chunk_death = with_a_death(&site, &plan, "k2c", true, c.encode()).await;
    println!("chunks: after the kill: {}", chunk_death.run.timeline());
    let whole_death = with_a_death(&site, &plan, "k2u", false, a.encode()).await;
    vec![
        speedup_row(&plan, [&a, &b, &c]),
        death_row([&a, &c], [&chunk_death, &whole_death]),
    ]
}
