//! `NodeCommand`, `NodeList`, `Version` and `CarbonRoles`: this encoder as
//! a Carbon server of one node, which can be disabled (it then starts no
//! new job; running ones finish) and enabled again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::super::{DEFAULT_PRIORITY, Encoder, EncoderError};
use crate::carbon::JobStatus;
use crate::carbon::message::{
    API_VERSION, NodeCommand, NodeCommandKind, NodeProperties, NodeStatus, Reply, VersionInfo,
};

/// What `SetNodeStatus` changes, in memory (a restart enables the node).
#[derive(Debug)]
pub struct NodeState {
    enabled: AtomicBool,
    priority: AtomicU32,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState {
            enabled: AtomicBool::new(true),
            priority: AtomicU32::new(DEFAULT_PRIORITY),
        }
    }
}

impl NodeState {
    /// Whether the node takes new jobs.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }
}

/// The product version in the manual's shape, `NN.NN.NN.NN`.
fn version_number() -> String {
    let part = |p: &str| p.parse::<u32>().unwrap_or(0);
    format!(
        "{:02}.{:02}.{:02}.00",
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

impl Encoder {
    pub(super) fn version(&self) -> Reply {
        Reply::Version(VersionInfo {
            version: format!("videoshare ver. {}", version_number()),
            product: "videoshare".to_owned(),
            api_version: API_VERSION.to_owned(),
        })
    }

    pub(super) fn node_list(&self) -> Reply {
        Reply::Nodes {
            ips: vec![self.inner.agent_ip.clone()],
        }
    }

    pub(super) async fn node_command(&self, command: &NodeCommand) -> Result<Reply, EncoderError> {
        if let Some(ip) = &command.node_ip
            && !self.is_this_node(ip)
        {
            return Err(EncoderError::NoSuchNode(ip.clone()));
        }
        match command.kind {
            NodeCommandKind::GetProperties => Ok(Reply::Properties(NodeProperties {
                version: version_number(),
                tags: String::new(),
            })),
            NodeCommandKind::GetNodeStatus => Ok(Reply::Node(self.node_status().await?)),
            NodeCommandKind::GetServerNodeStatus => {
                Ok(Reply::ServerNode(self.node_status().await?))
            }
            NodeCommandKind::SetNodeStatus | NodeCommandKind::SetServerNodeStatus => {
                let settings = command.settings;
                if settings
                    .slots
                    .is_some_and(|s| s as usize != self.inner.slots)
                {
                    return Err(EncoderError::SlotsFixed(self.inner.slots));
                }
                if let Some(priority) = settings.priority {
                    self.inner.node.priority.store(priority, Ordering::SeqCst);
                }
                if let Some(enabled) = settings.enabled {
                    self.inner.node.enabled.store(enabled, Ordering::SeqCst);
                    tracing::info!(enabled, "node status set");
                    // An enabled node looks at the queue at once.
                    self.inner.wake.notify_one();
                }
                Ok(Reply::Node(self.node_status().await?))
            }
        }
    }

    /// Whether `ip` names this node: its `AgentIP`, `localhost`, or a
    /// loopback address.
    fn is_this_node(&self, ip: &str) -> bool {
        let ip = ip.trim();
        ip == self.inner.agent_ip
            || ip.eq_ignore_ascii_case("localhost")
            || ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }

    /// This node's slots and load.
    async fn node_status(&self) -> Result<NodeStatus, EncoderError> {
        let running = self.inner.running.len();
        let queued = self.inner.jobs.count(&[JobStatus::Queued]).await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(NodeStatus {
            enabled: self.inner.node.is_enabled(),
            priority: self.inner.node.priority.load(Ordering::SeqCst),
            slots: count(self.inner.slots),
            free_slots: count(self.inner.slots.saturating_sub(running)),
            name: "videoshare".to_owned(),
            ip: self.inner.agent_ip.clone(),
            running_jobs: count(running),
            queued_jobs: u32::try_from(queued).unwrap_or(u32::MAX),
        })
    }
}
