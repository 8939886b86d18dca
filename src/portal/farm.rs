//! The encoder farm as the portal sees it, for `/metrics` and `/healthz`:
//! asked of the encoder the portal talks to, through Carbon (`NodeList`,
//! then `NodeCommand GetServerNodeStatus` for each node), never read from
//! the encoders' tables. Kept for [`FRESH_FOR`], so scrapes and health
//! checks cost the farm a few requests every two seconds at most.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Portal;
use crate::carbon::message::NodeStatus;
use crate::carbon::{Client, ClientError};
use crate::metrics::{FarmGauges, NodeStateLabels};

/// How long a look at the farm is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// How long the encoder may take to answer the farm questions.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What the farm looked like, summed up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FarmView {
    /// Nodes that take jobs (`up`).
    pub nodes_up: u32,
    /// Every node NodeList gave, with its state.
    pub nodes: Vec<FarmNode>,
    pub slots: u32,
    pub slots_busy: u32,
    pub queue_depth: u32,
    pub lease_expiries: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FarmNode {
    pub name: String,
    pub ip: String,
    pub state: String,
    pub slots: u32,
    pub running: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl FarmView {
    fn of(statuses: &[NodeStatus]) -> FarmView {
        FarmView {
            nodes_up: statuses.iter().filter(|n| n.state == "up").count() as u32,
            nodes: statuses
                .iter()
                .map(|n| FarmNode {
                    name: n.name.clone(),
                    ip: n.ip.clone(),
                    state: n.state.clone(),
                    slots: n.slots,
                    running: n.running_jobs,
                    note: n.note.clone(),
                })
                .collect(),
            slots: statuses.iter().map(|n| n.slots).sum(),
            slots_busy: statuses.iter().map(|n| n.running_jobs).sum(),
            queue_depth: statuses.iter().map(|n| n.queued_jobs).max().unwrap_or(0),
            lease_expiries: statuses.iter().map(|n| n.lease_expiries).sum(),
        }
    }

    /// Sets the `/metrics` gauges to this view.
    pub fn record(&self, gauges: &FarmGauges) {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        gauges.nodes.clear();
        for node in &self.nodes {
            gauges
                .nodes
                .get_or_create(&NodeStateLabels {
                    state: node.state.clone(),
                })
                .inc();
        }
        gauges.slots.set(int(self.slots.into()));
        gauges.slots_busy.set(int(self.slots_busy.into()));
        gauges.queue_depth.set(int(self.queue_depth.into()));
        gauges.lease_expiries.set(int(self.lease_expiries));
    }
}

/// The last look, and when it was taken.
#[derive(Default)]
pub struct FarmCache {
    last: tokio::sync::Mutex<Option<(Instant, Arc<FarmView>)>>,
}

impl Portal {
    /// The farm, asked at most every [`FRESH_FOR`].
    pub async fn farm(&self) -> Result<Arc<FarmView>, ClientError> {
        // One look at a time: concurrent scrapes share it.
        let mut last = self.inner.farm.last.lock().await;
        if let Some((at, view)) = &*last
            && at.elapsed() < FRESH_FOR
        {
            return Ok(view.clone());
        }
        let config = self.config();
        let client = Client::with_habit(config.encoder_addr.clone(), config.encoder_habit)
            .with_timeout(TIMEOUT);
        let view = Arc::new(FarmView::of(&client.node_statuses().await?));
        *last = Some((Instant::now(), view.clone()));
        Ok(view)
    }
}
