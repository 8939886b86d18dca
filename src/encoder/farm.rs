//! This encoder as a node of a farm: many `videoshare encoder` processes on
//! one PostgreSQL queue (on SQLite there is one node, and the same code
//! runs). A node registers under its name and heartbeats; each worker holds
//! its job under a lease this module renews; every node sweeps the farm for
//! leases that ran out and puts their jobs back, so a job whose node died
//! (kill -9, power or network cut) is finished by another.
//!
//! The times, and why:
//! - a lease lasts [`LEASE`] (10 s), renewed every [`RENEW_EVERY`] (2 s):
//!   four renewals may be missed (a loaded 2-core machine starves timers)
//!   before a job is taken from a node that is in fact alive, which would
//!   cost an encode done twice;
//! - a node that could not renew for [`SELF_FENCE_AFTER`] (8 s, less than a
//!   lease) drops its encodes itself, so it is off a job before anyone else
//!   may claim it, even when it cannot reach the database to learn so;
//! - every node sweeps every [`SWEEP_EVERY`] (1 s): a dead node's job is
//!   back in the queue at most 10 + 1 s after its last renewal, and claimed
//!   at once by an idle node;
//! - a job that lost its lease [`MAX_LEASE_LOSSES`] (3) times ends in
//!   ERROR: it is more likely to kill nodes than to be unlucky.
//!
//! It must not know about the Carbon socket or HTTP.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Encoder;
use super::control::STOPPED_BY_COMMAND;
use super::job::allowed_from;
use super::live_folder;
use super::tasks::node_command::{identities, ip_of, state_of};
use crate::carbon::JobStatus;
use crate::store::jobs::Repair;
use crate::store::notify::{Event, Listener};
use crate::store::{ChunkRepair, NodeInfo, NodeStore, StoreError};

pub const LEASE: Duration = Duration::from_secs(10);
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
pub const SELF_FENCE_AFTER: Duration = Duration::from_secs(8);
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
pub const MAX_LEASE_LOSSES: u32 = 3;

/// The lease length as the store takes it.
pub(super) fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// Who this node is: its name, and this process's instance of it.
#[derive(Debug, Clone)]
pub struct NodeId {
    pub name: String,
    pub instance: String,
}

impl NodeId {
    pub fn new(name: String) -> NodeId {
        NodeId {
            name,
            instance: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// The node name when `--node` is not given: the machine's host name.
pub fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// Why `--node` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadNodeName {
    #[error("--node must not be empty")]
    Empty,
    #[error("--node {0:?} is longer than 64 characters")]
    TooLong(String),
    #[error(
        "--node {0:?} may hold only letters, digits, '-', '_' and '.' (it is shown in Carbon replies and metrics)"
    )]
    Characters(String),
}

/// Checks a node name given on the command line.
pub fn check_node_name(name: &str) -> Result<String, BadNodeName> {
    let name = name.trim();
    if name.is_empty() {
        return Err(BadNodeName::Empty);
    }
    if name.chars().count() > 64 {
        return Err(BadNodeName::TooLong(name.to_owned()));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(BadNodeName::Characters(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Registers the node, waiting (up to a lease and a renewal) for a process
/// of the same name that was alive a moment ago to be presumed dead: a
/// node restarted right after a crash takes its name back; two live nodes
/// never share one. `exclusive` (SQLite: the data folder's lock already
/// proves no other process runs) takes the name at once.
pub async fn register(nodes: &NodeStore, info: &NodeInfo, exclusive: bool) -> anyhow::Result<()> {
    let alive_ms = if exclusive { 0 } else { lease_ms() };
    let deadline = Instant::now() + LEASE + RENEW_EVERY;
    let mut said = false;
    loop {
        if nodes.register(info, alive_ms).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "another encoder node named {:?} is running on this database (it answered in the last {} s): give this one another --node",
                info.name,
                LEASE.as_secs()
            );
        }
        if !said {
            tracing::warn!(node = %info.name, "a node of this name was alive a moment ago; waiting for it to be presumed dead");
            said = true;
        }
        tokio::time::sleep(RENEW_EVERY / 2).await;
    }
}

impl Encoder {
    /// Heartbeats, renews this node's leases and sweeps the farm until
    /// `shutdown`; then says the node left.
    pub fn spawn_farm(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let encoder = self.clone();
        tokio::spawn(async move { encoder.farm(shutdown).await })
    }

    async fn farm(self, shutdown: CancellationToken) {
        let listening = tokio::spawn(self.clone().listen(shutdown.clone()));
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                _ = renew.tick() => {
                    self.renew_leases(&mut last_renewed).await;
                    self.learn_agents().await;
                }
                _ = sweep.tick() => self.sweep().await,
                _ = shutdown.cancelled() => break,
            }
        }
        let _ = listening.await;
    }

    /// Acts on what other nodes tell this one (PostgreSQL only), until
    /// `shutdown`; reconnects when the connection drops.
    async fn listen(self, shutdown: CancellationToken) {
        loop {
            let listener = tokio::select! {
                opened = Listener::open(self.inner.jobs.db()) => opened,
                _ = shutdown.cancelled() => return,
            };
            let mut listener = match listener {
                Ok(Some(listener)) => listener,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for the farm's notifications; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(RENEW_EVERY) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            };
            loop {
                let event = tokio::select! {
                    event = listener.next() => event,
                    _ = shutdown.cancelled() => return,
                };
                match event {
                    Ok(event) => self.on_event(event).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the farm's notifications stopped; listening again");
                        self.on_event(Event::Reconnected).await;
                        break;
                    }
                }
            }
        }
    }

    async fn on_event(&self, event: Event) {
        let inner = &self.inner;
        match event {
            Event::Queued => inner.wake.notify_one(),
            Event::Job { node, guid, status } => {
                if node == inner.node_id.name {
                    self.reconcile(guid, status);
                }
                // Chunks follow their job, whichever node conducts it; a
                // resumed job's queued chunks may be taken again.
                self.reconcile_chunks(guid, Some(status));
                if status == JobStatus::Started {
                    inner.wake.notify_one();
                }
            }
            Event::ChunkDone { .. } => inner.chunk_done.notify_waiters(),
            Event::Node { name } if name == inner.node_id.name => self.refresh_enabled().await,
            Event::Node { .. } => {}
            // Chunked encoding is not wired into the farm yet: no node
            // assembles chunks, so there is nobody to tell.
            // Whatever was missed: look at the queue and at this node again
            // (its workers are reconciled at the next renewal).
            Event::Reconnected => {
                self.refresh_enabled().await;
                inner.wake.notify_one();
            }
        }
    }

    /// Takes this node's `enabled` from its row (set by `NodeCommand
    /// SetNodeStatus` on any node).
    pub(super) async fn refresh_enabled(&self) {
        let inner = &self.inner;
        match inner.nodes.is_enabled(&inner.node_id.name).await {
            Ok(Some(enabled)) => {
                if inner.node.set_enabled(enabled) {
                    tracing::info!(enabled, "this node was enabled or disabled");
                    inner.wake.notify_one();
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read whether this node is enabled"),
        }
    }

    /// One heartbeat and renewal: workers whose lease is gone are told so;
    /// if renewing has failed for [`SELF_FENCE_AFTER`], every worker is.
    async fn renew_leases(&self, last_renewed: &mut Instant) {
        let inner = &self.inner;
        let held = inner.running.all();
        let guids: Vec<_> = held.iter().map(|(guid, _)| *guid).collect();
        let me = &inner.node_id;
        let renewed = async {
            if !inner.nodes.heartbeat(&me.name, &me.instance).await? {
                tracing::error!(node = %me.name, "another process took this node's name: it was presumed dead");
            }
            self.renew_chunk_leases().await?;
            inner.jobs.renew(&me.name, &guids, lease_ms()).await
        }
        .await;
        match renewed {
            Ok(leases) => {
                *last_renewed = Instant::now();
                let kept: HashMap<_, _> = leases
                    .into_iter()
                    .map(|(guid, attempt, status)| (guid, (attempt, status)))
                    .collect();
                for (guid, control) in &held {
                    match kept.get(guid) {
                        // A notification of a command may have been lost.
                        Some((attempt, status)) if *attempt == control.attempt => {
                            self.reconcile(*guid, *status);
                        }
                        _ if !control.lost.is_cancelled() => {
                            tracing::warn!(%guid, "this node lost the job's lease; dropping its encode");
                            control.lost.cancel();
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => {
                let silent = last_renewed.elapsed();
                tracing::warn!(error = %e, ?silent, "cannot renew this node's leases");
                if silent >= SELF_FENCE_AFTER {
                    let chunks = inner.chunk_workers.all();
                    let chunks = chunks
                        .iter()
                        .map(|((guid, _), control)| (*guid, control.clone()));
                    for (guid, control) in held.iter().cloned().chain(chunks) {
                        if !control.lost.is_cancelled() {
                            tracing::error!(%guid, "no lease renewed for {SELF_FENCE_AFTER:?}: dropping the encode before another node takes the job");
                            control.lost.cancel();
                        }
                    }
                }
            }
        }
    }

    /// The `AgentIP` of a job: the Carbon identity of the node that took
    /// it (this node's until the farm's nodes were first read).
    pub(super) fn agent_of(&self, job: &crate::store::Job) -> String {
        let inner = &self.inner;
        match &job.node {
            Some(node) if *node != inner.node_id.name => inner
                .agents
                .read()
                .get(node)
                .cloned()
                .unwrap_or_else(|| inner.agent_ip.clone()),
            _ => inner.agent_ip.clone(),
        }
    }

    /// Whether another node of the farm takes jobs now.
    pub(super) async fn others_up(&self) -> Result<bool, StoreError> {
        let nodes = self.inner.nodes.list().await?;
        Ok(nodes
            .iter()
            .any(|n| n.name != self.inner.node_id.name && state_of(n) == "up"))
    }

    /// Makes sure [`Encoder::agent_of`] knows the nodes of `jobs` (one that
    /// joined since the last look is read at once).
    pub(super) async fn know_agents(&self, jobs: &[crate::store::Job]) {
        let unknown = {
            let agents = self.inner.agents.read();
            jobs.iter().any(|job| {
                job.node
                    .as_ref()
                    .is_some_and(|n| *n != self.inner.node_id.name && !agents.contains_key(n))
            })
        };
        if unknown {
            self.learn_agents().await;
        }
    }

    /// Learns every node's Carbon identity, for [`Encoder::agent_of`].
    async fn learn_agents(&self) {
        match self.inner.nodes.list().await {
            Ok(nodes) => {
                let mut agents: HashMap<String, String> = nodes
                    .iter()
                    .map(|n| (n.name.clone(), ip_of(&n.address).to_owned()))
                    .collect();
                agents.extend(identities(&nodes));
                *self.inner.agents.write() = agents;
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the farm's nodes"),
        }
    }

    /// Puts back the jobs whose lease ran out, anywhere in the farm.
    async fn sweep(&self) {
        if let Err(e) = self.sweep_expired().await {
            tracing::warn!(error = %e, "cannot sweep the farm for expired leases");
        }
    }

    async fn sweep_expired(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let chunks = ChunkRepair::Expired {
            max_losses: MAX_LEASE_LOSSES,
        };
        for (guid, idx, state) in inner.chunks.repair(chunks).await? {
            tracing::warn!(%guid, chunk = idx, ?state, "a chunk's node stopped renewing its lease");
            inner.metrics.lease_expiries.inc();
            inner.wake.notify_one();
            inner.chunk_done.notify_waiters();
        }
        let scope = Repair::Expired {
            max_losses: MAX_LEASE_LOSSES,
        };
        // Cheap when nothing expired (the usual case): one indexed read.
        if !inner.jobs.any_lease_expired().await? {
            return Ok(());
        }
        live_folder::clean_interrupted(&inner.jobs, scope).await?;
        let swept = inner
            .jobs
            .repair(scope, STOPPED_BY_COMMAND, allowed_from)
            .await?;
        let mut by_node: HashMap<String, u64> = HashMap::new();
        for job in &swept {
            let node = job.node.clone().unwrap_or_default();
            tracing::warn!(guid = %job.guid, %node, status = %job.status, "the job's node stopped renewing its lease");
            *by_node.entry(node).or_default() += 1;
        }
        for (node, expired) in by_node {
            inner.nodes.count_expiries(&node, expired).await?;
            inner.metrics.lease_expiries.inc_by(expired);
        }
        if swept.iter().any(|j| j.status == JobStatus::Queued) {
            inner.wake.notify_one();
        }
        Ok(())
    }
}
