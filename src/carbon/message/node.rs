//! `NodeCommand` and `NodeList`: the encoding nodes, their slots and
//! whether they take jobs; `Version` and `CarbonRoles`: who answers.

use super::{MessageError, TaskType, number};
use crate::carbon::xml::Element;

keyword_enum! {
    /// The `Command` of a `NodeCommand`.
    pub enum NodeCommandKind ("Command") {
        GetNodeStatus => "GetNodeStatus",
        GetServerNodeStatus => "GetServerNodeStatus",
        SetNodeStatus => "SetNodeStatus",
        SetServerNodeStatus => "SetServerNodeStatus",
        GetProperties => "GetProperties",
    }
}

/// `<NodeCommand NodeIP Command [Enabled.DWD Slots.DWD Priority.DWD]/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommand {
    pub kind: NodeCommandKind,
    /// The node, by the IP `NodeList` gives; `None`: the node answering.
    pub node_ip: Option<String>,
    /// What `SetNodeStatus` / `SetServerNodeStatus` change.
    pub settings: NodeSettings,
}

/// The fields a node's status can be set to (each optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSettings {
    pub enabled: Option<bool>,
    pub slots: Option<u32>,
    pub priority: Option<u32>,
}

impl NodeCommand {
    /// A query of the node answering.
    pub fn get(kind: NodeCommandKind) -> NodeCommand {
        NodeCommand {
            kind,
            node_ip: None,
            settings: NodeSettings::default(),
        }
    }

    /// Reads the `<NodeCommand>` child (the manual's form), else the root's
    /// attributes (the older form).
    pub(super) fn parse(root: &Element) -> Result<NodeCommand, MessageError> {
        const TASK: TaskType = TaskType::NodeCommand;
        let element = root.find("NodeCommand").unwrap_or(root);
        let kind = element
            .get("Command")
            .or_else(|| root.get("Command"))
            .ok_or_else(|| {
                MessageError::invalid(
                    TASK,
                    "no Command: send <NodeCommand NodeIP=\"…\" Command=\"…\"/>".to_owned(),
                )
            })?
            .parse()
            .map_err(|e| MessageError::invalid(TASK, e))?;
        // The values sit on <NodeCommand>, or (as one public client sends
        // them) on a <NodeStatus>/<ServerNodeStatus> inside it.
        let values = element
            .find_any(&["NodeStatus", "ServerNodeStatus"])
            .unwrap_or(element);
        let enabled: Option<u32> = number(TASK, values, "Enabled.DWD")?;
        Ok(NodeCommand {
            kind,
            node_ip: element
                .get("NodeIP")
                .or_else(|| root.get("NodeIP"))
                .map(str::trim)
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned),
            settings: NodeSettings {
                enabled: enabled.map(|e| e != 0),
                slots: number(TASK, values, "Slots.DWD")?,
                priority: number(TASK, values, "Priority.DWD")?,
            },
        })
    }

    /// The manual's `<NodeCommand>` child, the attributes on the root too
    /// (see `JobCommand::write`).
    pub(super) fn write(&self, root: Element) -> Element {
        let with_attrs = |e: Element| {
            e.opt_attr("NodeIP", self.node_ip.as_deref())
                .attr("Command", self.kind)
                .opt_attr("Enabled.DWD", self.settings.enabled.map(u8::from))
                .opt_attr("Slots.DWD", self.settings.slots)
                .opt_attr("Priority.DWD", self.settings.priority)
        };
        with_attrs(root).child(with_attrs(Element::new("NodeCommand")))
    }
}

/// One node and its slots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeStatus {
    pub enabled: bool,
    pub priority: u32,
    /// Encodes the node runs at once.
    pub slots: u32,
    pub free_slots: u32,
    /// videoshare extensions.
    pub name: String,
    pub ip: String,
    pub running_jobs: u32,
    pub queued_jobs: u32,
    /// `up`, `draining` (disabled, still running jobs), `disabled`, `down`
    /// (not heard from for a lease) or `left` (stopped cleanly).
    pub state: String,
    /// What the node wants an operator to know (e.g. a source it cannot see).
    pub note: String,
    /// How many of its jobs were taken back when its lease ran out.
    pub lease_expiries: u64,
}

impl NodeStatus {
    /// `<NodeStatus>` (the node's own settings: no `FreeSlots.DWD`) or
    /// `<ServerNodeStatus>` (the server's view: with it).
    pub(super) fn to_element(&self, name: &str) -> Element {
        let server_view = name == "ServerNodeStatus";
        Element::new(name)
            .attr("Enabled.DWD", u8::from(self.enabled))
            .attr("Priority.DWD", self.priority)
            .attr("Slots.DWD", self.slots)
            .opt_attr("FreeSlots.DWD", server_view.then_some(self.free_slots))
            .attr("Name", &self.name)
            .attr("IP", &self.ip)
            .attr("RunningJobs.DWD", self.running_jobs)
            .attr("QueuedJobs.DWD", self.queued_jobs)
            .opt_attr(
                "State",
                (!self.state.is_empty()).then_some(self.state.as_str()),
            )
            .opt_attr(
                "Note",
                (!self.note.is_empty()).then_some(self.note.as_str()),
            )
            .attr("LeaseExpiries.DWD", self.lease_expiries)
    }

    pub(super) fn from_reply(reply: &Element) -> Result<NodeStatus, MessageError> {
        let e = reply
            .find_any(&["NodeStatus", "ServerNodeStatus"])
            .ok_or_else(|| MessageError::Malformed("the reply has no NodeStatus".into()))?;
        // The older shape wrapped the node in Node_0.
        let e = e.find("Node_0").unwrap_or(e);
        let int = |n: &str| {
            e.get(n)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(0)
        };
        Ok(NodeStatus {
            enabled: int("Enabled.DWD") != 0,
            priority: int("Priority.DWD"),
            slots: int("Slots.DWD"),
            free_slots: int("FreeSlots.DWD"),
            name: e.get("Name").unwrap_or_default().to_owned(),
            ip: e.get("IP").unwrap_or_default().to_owned(),
            running_jobs: int("RunningJobs.DWD"),
            queued_jobs: int("QueuedJobs.DWD"),
            state: e.get("State").unwrap_or_default().to_owned(),
            note: e.get("Note").unwrap_or_default().to_owned(),
            lease_expiries: e
                .get("LeaseExpiries.DWD")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        })
    }
}

/// `GetProperties`: `<NodeProperties Version Tags/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeProperties {
    pub version: String,
    /// `;`-separated machine tags (videoshare nodes have none).
    pub tags: String,
}

/// `Version`: who answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// `<product> ver. NN.NN.NN.NN`, the manual's shape.
    pub version: String,
    pub product: String,
    pub api_version: String,
}
