//! An encoder farm as real processes for the farm tests: one fresh
//! PostgreSQL database, any number of `videoshare encoder --node NAME`
//! processes on it (each with a data folder of its own) and a `videoshare
//! portal` process, all sharing one folder for sources and outputs (the
//! portal's data folder, whose uploaded/ and streams/ every node may use
//! through `--root`). The queue is read straight from the `jobs` table,
//! which says which node last claimed a job and how many times it was
//! claimed. Every child is killed when its handle is dropped; when a test
//! fails, the end of each process's log is printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use videoshare::carbon::{Client, Guid, JobStatus};
use videoshare::store::testing::TestDb;

use super::{Visitor, slow_ladder_config, start_command_logged};

const BIN: &str = env!("CARGO_BIN_EXE_videoshare");

/// How often the `jobs` table is polled.
const POLL: Duration = Duration::from_millis(50);

/// Lines of each process's log shown when a test fails.
const LOG_TAIL: usize = 60;

/// One database, one shared folder, and the logs of the processes started
/// on them. Drop it last (declare it first): it removes the folders.
pub struct Farm {
    db: TestDb,
    dir: tempfile::TempDir,
    /// The config every node loads: it adds [`super::SLOW_LADDER`].
    config: PathBuf,
}

/// A job's row as the farm wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub guid: Guid,
    /// The status word (`QUEUED`, `STARTED`, `COMPLETED`…).
    pub status: String,
    /// The node that last claimed the job (kept after it finishes).
    pub node: Option<String>,
    /// How many times the job was claimed.
    pub attempts: i64,
}

impl JobRow {
    pub fn is(&self, status: JobStatus) -> bool {
        self.status == status.as_str()
    }

    /// Whether a node has it in hand (claimed, not finished).
    pub fn is_running(&self) -> bool {
        let waiting = self.is(JobStatus::Queued);
        let finished = self
            .status
            .parse::<JobStatus>()
            .is_ok_and(JobStatus::is_terminal);
        !waiting && !finished
    }

    /// Whether it ran on `node`.
    pub fn on(&self, node: &str) -> bool {
        self.node.as_deref() == Some(node)
    }
}

/// `videoshare` started in a mount namespace of its own where an empty
/// tmpfs covers `folder`.
fn covered(folder: &Path) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(folder)
        .arg(BIN);
    command
}

/// A chunk's row as the farm wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub idx: i64,
    /// `audio` or `video`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// The node that last claimed it.
    pub node: Option<String>,
    /// How many times an ffmpeg run was started on it.
    pub runs: i64,
    pub progress: i64,
    pub done_at: Option<i64>,
    /// Where it starts in the source, µs.
    pub start_us: i64,
}

/// One `videoshare encoder --node NAME` process.
pub struct Node {
    pub name: String,
    /// Its Carbon socket (`--carbon`), `host:port`.
    pub carbon: String,
    /// Its own data folder (temp files, lock).
    pub data: PathBuf,
    child: Child,
}

/// One `videoshare portal` process.
pub struct PortalProcess {
    /// `http://host:port`.
    pub base: String,
    pub http_addr: SocketAddr,
    _child: Child,
}

impl Farm {
    /// A fresh PostgreSQL database and an empty shared folder.
    pub async fn new() -> Farm {
        super::require("ffmpeg");
        let db = TestDb::postgres().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = slow_ladder_config(dir.path());
        let farm = Farm { db, dir, config };
        for folder in [farm.shared(), farm.uploaded(), farm.streams(), farm.logs()] {
            std::fs::create_dir_all(folder).expect("mkdir");
        }
        farm
    }

    /// What `--database` says.
    pub fn url(&self) -> String {
        self.db.url()
    }

    /// The folder every process may read and write: the portal's data folder.
    pub fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Sources: the portal's uploaded/.
    pub fn uploaded(&self) -> PathBuf {
        self.shared().join("uploaded")
    }

    /// Outputs: the portal's streams/.
    pub fn streams(&self) -> PathBuf {
        self.shared().join("streams")
    }

    /// Adds a preset file to the presets folder every node loads (before
    /// the nodes start).
    pub fn add_preset(&self, file_name: &str, text: &str) {
        let presets = self.dir.path().join("presets");
        std::fs::write(presets.join(file_name), text).expect("write the preset");
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// Starts the encoder node `name` (one encode slot, its own data folder,
    /// the shared folder as a root) and waits until it listens.
    pub async fn node(&self, name: &str) -> Node {
        self.start_node(name, "127.0.0.1:0", Command::new(BIN))
            .await
    }

    /// [`Farm::node`] with more command-line options (e.g. chunking's).
    pub async fn node_with(&self, name: &str, options: &[&str]) -> Node {
        self.start_node_with(name, "127.0.0.1:0", Command::new(BIN), options)
            .await
    }

    /// [`Farm::node`] listening on `carbon` (taking over a dead node's
    /// address).
    pub async fn node_at(&self, name: &str, carbon: &str) -> Node {
        self.start_node(name, carbon, Command::new(BIN)).await
    }

    /// [`Farm::node`] on storage that lacks the shared uploaded/ folder: it
    /// runs in a mount namespace of its own where an empty tmpfs covers
    /// that folder (as a machine whose share is not mounted). Needs root.
    pub async fn blind_node(&self, name: &str) -> Node {
        let command = covered(&self.uploaded());
        self.start_node(name, "127.0.0.1:0", command).await
    }

    /// [`Farm::node_with`] on a machine without the shared folder at all
    /// (an empty tmpfs covers it, as [`Farm::blind_node`]). Needs root.
    pub async fn node_without_share(&self, name: &str, options: &[&str]) -> Node {
        let command = covered(&self.shared());
        self.start_node_with(name, "127.0.0.1:0", command, options)
            .await
    }

    /// The rest of the first line of node `name`'s log that says `marker`.
    pub fn logged(&self, name: &str, marker: &str) -> Option<String> {
        let log = self.logs().join(format!("node-{name}.log"));
        let text = std::fs::read_to_string(log).ok()?;
        text.lines().find_map(|line| {
            line.split_once(marker)
                .map(|(_, rest)| rest.trim().to_owned())
        })
    }

    /// Starts `videoshare` (which `command` runs) as the encoder node `name`.
    async fn start_node(&self, name: &str, carbon: &str, command: Command) -> Node {
        self.start_node_with(name, carbon, command, &[]).await
    }

    async fn start_node_with(
        &self,
        name: &str,
        carbon: &str,
        mut command: Command,
        options: &[&str],
    ) -> Node {
        let data = self.dir.path().join("nodes").join(name);
        command
            .args(["encoder", "--node", name, "--database", &self.url()])
            .args(["--carbon", carbon, "--carbon-coder", "off"])
            .args(["--encode-slots", "1"])
            .arg("--data")
            .arg(&data)
            .arg("--root")
            .arg(self.shared())
            .arg("--config")
            .arg(&self.config)
            .args(options);
        let log = self.logs().join(format!("node-{name}.log"));
        let (child, carbon) =
            start_command_logged(command, "Carbon encoder listening on ", Some(&log)).await;
        Node {
            name: name.to_owned(),
            carbon,
            data,
            child,
        }
    }

    /// What node `name` says an operator should know (its `note`).
    pub async fn node_note(&self, name: &str) -> String {
        let (note,): (String,) = sqlx::query_as("SELECT note FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_one(self.db.db().pool())
            .await
            .expect("read the nodes table");
        note
    }

    /// Starts a portal over the shared folder that submits to `encoder`.
    pub async fn portal(&self, encoder: &Node) -> PortalProcess {
        let mut command = Command::new(BIN);
        command
            .args(["portal", "--database", &self.url()])
            .args(["--http", "127.0.0.1:0", "--poll-ms", "100"])
            .args(["--encoder", &encoder.carbon])
            .arg("--data")
            .arg(self.shared());
        let log = self.logs().join("portal.log");
        let (child, base) = start_command_logged(command, "portal listening on ", Some(&log)).await;
        let http_addr = base
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| panic!("the portal's address: {base:?}"));
        PortalProcess {
            base,
            http_addr,
            _child: child,
        }
    }

    /// Every job's row, oldest first.
    pub async fn rows(&self) -> Vec<JobRow> {
        let rows: Vec<(String, String, Option<String>, i64)> =
            sqlx::query_as("SELECT guid, status, node, attempts FROM jobs ORDER BY seq")
                .fetch_all(self.db.db().pool())
                .await
                .expect("read the jobs table");
        rows.into_iter()
            .map(|(guid, status, node, attempts)| JobRow {
                guid: guid.parse().expect("a stored GUID"),
                status,
                node,
                attempts,
            })
            .collect()
    }

    /// The row of job `guid`.
    pub async fn row(&self, guid: Guid) -> JobRow {
        self.rows()
            .await
            .into_iter()
            .find(|row| row.guid == guid)
            .unwrap_or_else(|| panic!("no job {guid} in the table"))
    }

    /// The outputs recorded for job `guid`, one per destination (`None`
    /// before one is named).
    pub async fn recorded_outputs(&self, guid: Guid) -> Vec<Option<String>> {
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT output_path FROM destinations WHERE job_guid = $1 ORDER BY idx")
                .bind(guid.to_string())
                .fetch_all(self.db.db().pool())
                .await
                .expect("read the destinations table");
        rows.into_iter().map(|(path,)| path).collect()
    }

    /// The chunks of job `guid`, in order (empty when it is not chunked).
    pub async fn chunks(&self, guid: Guid) -> Vec<ChunkRow> {
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            i64,
            i64,
            Option<i64>,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT idx, kind, state, node, runs, progress, done_at, start_us \
                 FROM chunks WHERE job_guid = $1 ORDER BY idx",
        )
        .bind(guid.to_string())
        .fetch_all(self.db.db().pool())
        .await
        .expect("read the chunks table");
        rows.into_iter()
            .map(
                |(idx, kind, state, node, runs, progress, done_at, start_us)| ChunkRow {
                    idx,
                    kind,
                    state,
                    node,
                    runs,
                    progress,
                    done_at,
                    start_us,
                },
            )
            .collect()
    }

    /// The source file of job `guid`.
    pub async fn source_of(&self, guid: Guid) -> PathBuf {
        let (path,): (String,) = sqlx::query_as("SELECT source_path FROM jobs WHERE guid = $1")
            .bind(guid.to_string())
            .fetch_one(self.db.db().pool())
            .await
            .expect("read the job's source");
        PathBuf::from(path)
    }

    /// Polls job `guid`'s row until `done` holds; fails after `limit`, or
    /// at once if the job ends otherwise than COMPLETED while waited for.
    pub async fn wait_row(
        &self,
        guid: Guid,
        what: &str,
        limit: Duration,
        done: impl Fn(&JobRow) -> bool,
    ) -> JobRow {
        let deadline = Instant::now() + limit;
        loop {
            let row = self.row(guid).await;
            if done(&row) {
                return row;
            }
            let failed = ["ERROR", "INVALID", "STOPPED"].contains(&row.status.as_str());
            assert!(!failed, "{what}: the job ended {row:?}");
            assert!(
                Instant::now() < deadline,
                "{what} within {limit:?}: {row:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every row is COMPLETED (at least `count` of them).
    pub async fn wait_all_completed(&self, count: usize, limit: Duration) -> Vec<JobRow> {
        let deadline = Instant::now() + limit;
        loop {
            let rows = self.rows().await;
            let failed: Vec<&JobRow> = rows
                .iter()
                .filter(|r| ["ERROR", "INVALID", "STOPPED"].contains(&r.status.as_str()))
                .collect();
            assert!(failed.is_empty(), "jobs failed: {failed:?}");
            if rows.len() >= count && rows.iter().all(|r| r.is(JobStatus::Completed)) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "{count} jobs completed within {limit:?}: {rows:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The end of each process's log, for a failing test.
    fn print_logs(&self) {
        for name in super::names_in(&self.logs()) {
            let text = std::fs::read_to_string(self.logs().join(&name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            eprintln!("----- {name} (last {} lines) -----", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl Node {
    /// A Carbon client of this node.
    pub fn client(&self) -> Client {
        Client::new(self.carbon.clone())
    }

    /// `kill -9`: no chance to release anything. Returns when the process
    /// is gone, with the moment the signal was sent.
    pub async fn kill9(&mut self) -> Instant {
        let sent = Instant::now();
        self.child.start_kill().expect("kill -9 the node");
        self.child.wait().await.expect("the node is gone");
        sent
    }
}

impl PortalProcess {
    /// A browser session on this portal.
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.base, self.http_addr)
    }
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// What an interrupted encode could leave behind under `dir`: hidden files
/// (the `.encoding` marker, temp names) and `*.tmp`.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
        })
        .collect()
}
