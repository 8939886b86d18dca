//! `NodeCommand`, `NodeList`, `Version` and `CarbonRoles`: the farm's
//! nodes as a Carbon server's, read from the `nodes` table so any node
//! answers for all of them. A node can be disabled (it then starts no new
//! job; running ones finish: a drain) and enabled again, from any node: the
//! setting is kept in its row and reaches it at once (a notification) or
//! at its next heartbeat.
//!
//! A node is named by its IP, as Carbon clients expect; when several nodes
//! share an IP (several on one machine) each is `IP:PORT` instead. Its
//! name (`--node`) is accepted too.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::super::farm::LEASE;
use super::super::{DEFAULT_PRIORITY, Encoder, EncoderError};
use crate::carbon::JobStatus;
use crate::carbon::message::{
    API_VERSION, NodeCommand, NodeCommandKind, NodeProperties, NodeStatus, Reply, VersionInfo,
};
use crate::store::Node;

/// This node's settings in memory: `enabled` mirrors its row (see
/// [`Encoder::refresh_enabled`]); `priority` is this process's only.
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

    /// Sets whether the node takes new jobs; returns whether that changed.
    pub fn set_enabled(&self, enabled: bool) -> bool {
        self.enabled.swap(enabled, Ordering::SeqCst) != enabled
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

/// A node's state as an operator reads it.
pub(crate) fn state_of(node: &Node) -> &'static str {
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    if node.state == "left" {
        "left"
    } else if node.silent_ms > lease_ms {
        "down"
    } else if !node.enabled && node.busy > 0 {
        "draining"
    } else if !node.enabled {
        "disabled"
    } else {
        "up"
    }
}

/// Whether a node counts as part of the farm now (listed by `NodeList`).
fn is_present(node: &Node) -> bool {
    !matches!(state_of(node), "left" | "down")
}

/// The IP part of a node's `IP:PORT` address.
pub(crate) fn ip_of(address: &str) -> &str {
    address
        .rsplit_once(':')
        .map_or(address, |(ip, _)| ip)
        .trim_matches(['[', ']'])
}

/// Each present node's Carbon identity (see the module doc), by name.
pub(crate) fn identities(nodes: &[Node]) -> Vec<(String, String)> {
    let present: Vec<&Node> = nodes.iter().filter(|n| is_present(n)).collect();
    present
        .iter()
        .map(|node| {
            let ip = ip_of(&node.address);
            let shared = present
                .iter()
                .filter(|other| ip_of(&other.address) == ip)
                .count()
                > 1;
            let id = if shared {
                node.address.clone()
            } else {
                ip.to_owned()
            };
            (node.name.clone(), id)
        })
        .collect()
}

impl Encoder {
    pub(super) fn version(&self) -> Reply {
        Reply::Version(VersionInfo {
            version: format!("videoshare ver. {}", version_number()),
            product: "videoshare".to_owned(),
            api_version: API_VERSION.to_owned(),
        })
    }

    pub(super) async fn node_list(&self) -> Result<Reply, EncoderError> {
        let nodes = self.inner.nodes.list().await?;
        Ok(Reply::Nodes {
            ips: identities(&nodes).into_iter().map(|(_, id)| id).collect(),
        })
    }

    pub(super) async fn node_command(&self, command: &NodeCommand) -> Result<Reply, EncoderError> {
        let nodes = self.inner.nodes.list().await?;
        let node = self.find_node(&nodes, command.node_ip.as_deref())?;
        let here = node.name == self.inner.node_id.name;
        match command.kind {
            NodeCommandKind::GetProperties => Ok(Reply::Properties(NodeProperties {
                version: version_number(),
                tags: String::new(),
            })),
            NodeCommandKind::GetNodeStatus => {
                Ok(Reply::Node(self.node_status(&nodes, node).await?))
            }
            NodeCommandKind::GetServerNodeStatus => {
                Ok(Reply::ServerNode(self.node_status(&nodes, node).await?))
            }
            NodeCommandKind::SetNodeStatus | NodeCommandKind::SetServerNodeStatus => {
                let settings = command.settings;
                if settings.slots.is_some_and(|s| s != node.slots) {
                    return Err(EncoderError::SlotsFixed(node.slots as usize));
                }
                if let Some(priority) = settings.priority {
                    if !here {
                        return Err(EncoderError::RemotePriority);
                    }
                    self.inner.node.priority.store(priority, Ordering::SeqCst);
                }
                if let Some(enabled) = settings.enabled {
                    self.inner.nodes.set_enabled(&node.name, enabled).await?;
                    tracing::info!(node = %node.name, enabled, "node status set");
                    if here {
                        self.inner.node.set_enabled(enabled);
                        // An enabled node looks at the queue at once.
                        self.inner.wake.notify_one();
                    }
                }
                let nodes = self.inner.nodes.list().await?;
                let node = self.find_node(&nodes, Some(&node.name))?;
                Ok(Reply::Node(self.node_status(&nodes, node).await?))
            }
        }
    }

    /// The node `ip` names: its Carbon identity, address or name; failing
    /// those, `localhost`, a loopback address or this node's `AgentIP`
    /// mean this node, as does no `NodeIP` at all.
    fn find_node<'n>(&self, nodes: &'n [Node], ip: Option<&str>) -> Result<&'n Node, EncoderError> {
        let me = &self.inner.node_id.name;
        let by_name = |name: &str| nodes.iter().find(|n| n.name == name);
        let this = || by_name(me).ok_or_else(|| EncoderError::NoSuchNode(me.clone()));
        let Some(ip) = ip.map(str::trim) else {
            return this();
        };
        let ids = identities(nodes);
        let named = ids
            .iter()
            .find(|(_, id)| id == ip)
            .and_then(|(name, _)| by_name(name))
            .or_else(|| nodes.iter().find(|n| n.address == ip || n.name == ip));
        if let Some(node) = named {
            return Ok(node);
        }
        let loopback = ip.eq_ignore_ascii_case("localhost")
            || ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if loopback || ip == self.inner.agent_ip {
            return this();
        }
        Err(EncoderError::NoSuchNode(ip.to_owned()))
    }

    /// A node's slots and load; the queue is the farm's.
    async fn node_status(&self, nodes: &[Node], node: &Node) -> Result<NodeStatus, EncoderError> {
        let queued = self.inner.jobs.count(&[JobStatus::Queued]).await?;
        let here = node.name == self.inner.node_id.name;
        // This node's own count is exact now; another's is as of its row.
        let running = if here {
            u32::try_from(self.inner.running.len()).unwrap_or(u32::MAX)
        } else {
            node.busy
        };
        let ip = identities(nodes)
            .into_iter()
            .find(|(name, _)| *name == node.name)
            .map_or_else(|| ip_of(&node.address).to_owned(), |(_, id)| id);
        Ok(NodeStatus {
            enabled: node.enabled,
            priority: if here {
                self.inner.node.priority.load(Ordering::SeqCst)
            } else {
                DEFAULT_PRIORITY
            },
            slots: node.slots,
            free_slots: node.slots.saturating_sub(running),
            name: node.name.clone(),
            ip,
            running_jobs: running,
            queued_jobs: u32::try_from(queued).unwrap_or(u32::MAX),
            state: state_of(node).to_owned(),
            note: node.note.clone(),
            lease_expiries: node.lease_expiries,
        })
    }
}
