//! An async Carbon client, in either connection habit a Carbon server has:
//! one request per connection (Carbon Coder: connect, send, read the reply,
//! the server closes) or one connection kept for many requests (the seed's
//! Flash Media Encoding Server), re-established when the server has closed
//! it. A timeout bounds each exchange.
//!
//! It speaks the same typed messages as the server ([`Request`], [`Reply`]);
//! nothing here writes XML by hand.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::codec::Framed;

use super::frame::{CarbonCodec, FrameError};
use super::guid::Guid;
use super::message::{
    Command, EvaluatedSource, JobCommand, JobEntry, JobEvaluate, JobInfo, JobQueue, JobStatusList,
    MessageError, NodeCommand, NodeCommandKind, NodeSettings, NodeStatus, Profile, ProfileList,
    Reply, Request, Source, StatusList, VersionInfo,
};
use super::text;

type Connection = Framed<TcpStream, CarbonCodec>;

/// Requests written before their replies are read. Bounded so that neither
/// side can fill both socket buffers and wait on the other forever.
const PIPELINE_DEPTH: usize = 32;

/// Connections open at once when requests go one per connection.
const PARALLEL_CONNECTIONS: usize = 16;

/// The largest reply accepted (a page of 1000 job records is about 1 MiB).
const MAX_REPLY: usize = 64 << 20;

/// How a client uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionHabit {
    /// Connect, send one request, read its reply (the server then closes),
    /// as Carbon Coder expects. Works with any Carbon server.
    #[default]
    OnePerRequest,
    /// Keep one connection for many requests, pipelined, as the seed's
    /// Flash Media Encoding Server allowed (videoshare's `--carbon`).
    KeepOpen,
}

/// Why a request to a Carbon server did not produce a usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the Carbon server at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("the Carbon server at {addr} did not answer within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("the Carbon server at {0} closed the connection")]
    Closed(String),
    #[error("Carbon framing error: {0}")]
    Frame(#[from] FrameError),
    #[error("the Carbon server sent a reply we cannot read: {0}")]
    BadReply(#[from] MessageError),
    #[error("the Carbon server refused the request: {0}")]
    Refused(String),
    #[error("the Carbon server's reply to {0} has an unexpected shape")]
    Unexpected(&'static str),
}

/// A client for one Carbon server address.
pub struct Client {
    addr: String,
    timeout: Duration,
    habit: ConnectionHabit,
    connection: Mutex<Option<Connection>>,
}

impl Client {
    /// A client for `addr` (`host:port`) that keeps one connection open
    /// (for videoshare's `--carbon` listener). Connects lazily.
    pub fn new(addr: impl Into<String>) -> Self {
        Client::with_habit(addr, ConnectionHabit::KeepOpen)
    }

    /// A client for `addr` that opens a connection per request (for any
    /// Carbon server, e.g. videoshare's `--carbon-coder` or Carbon Coder).
    pub fn one_per_request(addr: impl Into<String>) -> Self {
        Client::with_habit(addr, ConnectionHabit::OnePerRequest)
    }

    pub fn with_habit(addr: impl Into<String>, habit: ConnectionHabit) -> Self {
        Client {
            addr: addr.into(),
            timeout: Duration::from_secs(10),
            habit,
            connection: Mutex::new(None),
        }
    }

    /// Sets the deadline for connecting and for each exchange.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and reads its reply.
    pub async fn request(&self, request: &Request) -> Result<Reply, ClientError> {
        let mut replies = self.request_many(std::slice::from_ref(request)).await?;
        replies
            .pop()
            .ok_or_else(|| ClientError::Closed(self.addr.clone()))
    }

    /// Sends several requests and reads their replies, in order: on one
    /// kept connection [`PIPELINE_DEPTH`] at a time (one round trip per
    /// batch), or each on its own connection, [`PARALLEL_CONNECTIONS`] at
    /// a time.
    ///
    /// A reused connection the server has since closed is replaced and the
    /// batch retried once — only when every request is safe to repeat.
    pub async fn request_many(&self, requests: &[Request]) -> Result<Vec<Reply>, ClientError> {
        if self.habit == ConnectionHabit::OnePerRequest {
            // Boxed: keeps the future `Send` for callers that spawn it.
            let calls: Vec<BoxFuture<'_, Result<Reply, ClientError>>> = requests
                .iter()
                .cloned()
                .map(|r| Box::pin(async move { self.request_alone(&r).await }) as BoxFuture<'_, _>)
                .collect();
            let replies = futures_util::stream::iter(calls)
                .buffered(PARALLEL_CONNECTIONS)
                .collect::<Vec<_>>()
                .await;
            return replies.into_iter().collect();
        }
        let mut slot = self.connection.lock().await;
        let reused = slot.as_ref().is_some_and(|c| !is_stale(c));
        if !reused {
            *slot = None;
        }
        match self.exchange(&mut slot, requests).await {
            Err(e) if reused && requests.iter().all(Request::is_idempotent) => {
                tracing::debug!(error = %e, "retrying on a fresh Carbon connection");
                *slot = None;
                self.exchange(&mut slot, requests).await
            }
            result => result,
        }
    }

    /// One request on a fresh connection, closed afterwards.
    async fn request_alone(&self, request: &Request) -> Result<Reply, ClientError> {
        let mut slot = None;
        let mut replies = self
            .exchange(&mut slot, std::slice::from_ref(request))
            .await?;
        replies
            .pop()
            .ok_or_else(|| ClientError::Closed(self.addr.clone()))
    }

    async fn exchange(
        &self,
        slot: &mut Option<Connection>,
        requests: &[Request],
    ) -> Result<Vec<Reply>, ClientError> {
        let result = tokio::time::timeout(self.timeout, async {
            if slot.is_none() {
                let stream = TcpStream::connect(&self.addr).await.map_err(|source| {
                    ClientError::Connect {
                        addr: self.addr.clone(),
                        source,
                    }
                })?;
                stream.set_nodelay(true).ok();
                *slot = Some(Framed::new(stream, CarbonCodec::new(MAX_REPLY)));
            }
            let Some(conn) = slot.as_mut() else {
                return Err(ClientError::Closed(self.addr.clone()));
            };
            let mut replies = Vec::with_capacity(requests.len());
            for batch in requests.chunks(PIPELINE_DEPTH) {
                for request in batch {
                    conn.feed(Bytes::from(request.to_payload())).await?;
                }
                conn.flush().await?;
                for request in batch {
                    let payload = conn
                        .next()
                        .await
                        .ok_or_else(|| ClientError::Closed(self.addr.clone()))??;
                    let expected = request.reply_kind();
                    replies.push(Reply::parse(&text::decode(&payload), expected)?);
                }
            }
            Ok(replies)
        })
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Timeout {
                addr: self.addr.clone(),
                secs: self.timeout.as_secs(),
            })
        });
        if result.is_err() {
            // The stream may hold half a reply: never reuse it.
            *slot = None;
        }
        result
    }

    /// Sends `request`; a `Success="FALSE"` reply becomes [`ClientError::Refused`].
    pub async fn call(&self, request: Request) -> Result<Reply, ClientError> {
        accepted(self.request(&request).await?)
    }

    /// Submits a job and returns its GUID.
    pub async fn queue(&self, job: JobQueue) -> Result<Guid, ClientError> {
        match self.call(Request::JobQueue(job)).await? {
            Reply::Queued { guid } => Ok(guid),
            _ => Err(ClientError::Unexpected("JobQueue")),
        }
    }

    /// The jobs matching `list` (one page of them).
    pub async fn list(&self, list: JobStatusList) -> Result<Vec<JobEntry>, ClientError> {
        Ok(self.list_page(list).await?.jobs)
    }

    /// One page of the jobs matching `list`, with how many matched in all.
    pub async fn list_page(&self, list: JobStatusList) -> Result<StatusList, ClientError> {
        match accepted(self.request(&Request::JobStatusList(list)).await?)? {
            Reply::StatusList(page) => Ok(page),
            _ => Err(ClientError::Unexpected("JobStatusList")),
        }
    }

    /// Every job matching `list`, page after page.
    pub async fn list_all(&self, list: JobStatusList) -> Result<Vec<JobEntry>, ClientError> {
        let mut all = Vec::new();
        loop {
            let mut page_request = list.clone();
            page_request.settings.start = all.len();
            let page = self.list_page(page_request).await?;
            let got = page.jobs.len();
            all.extend(page.jobs);
            if got == 0 || all.len() >= page.total {
                return Ok(all);
            }
        }
    }

    /// The status of each job, `None` where the server does not know the GUID.
    /// One `JobStatusList` per GUID (Carbon criteria cannot OR), pipelined.
    pub async fn statuses(
        &self,
        guids: &[Guid],
    ) -> Result<Vec<(Guid, Option<JobEntry>)>, ClientError> {
        let requests: Vec<Request> = guids
            .iter()
            .map(|g| Request::JobStatusList(JobStatusList::by_guid(*g)))
            .collect();
        let replies = self.request_many(&requests).await?;
        guids
            .iter()
            .zip(replies)
            .map(|(guid, reply)| Ok((*guid, jobs_of(reply)?.into_iter().find(|j| j.guid == *guid))))
            .collect()
    }

    /// Every job's GUID (`JobList`, page by page).
    pub async fn job_list(&self) -> Result<Vec<Guid>, ClientError> {
        let mut all = Vec::new();
        loop {
            let settings = super::message::ListSettings {
                start: all.len(),
                ..Default::default()
            };
            let page = match self.call(Request::JobList(settings)).await? {
                Reply::JobList(list) => list.jobs,
                _ => return Err(ClientError::Unexpected("JobList")),
            };
            let done = page.len() < super::message::MAX_LIST;
            all.extend(page.into_iter().map(|(guid, _)| guid));
            if done {
                return Ok(all);
            }
        }
    }

    /// A `JobCommand` other than `Query`: the job afterwards (for `Remove`,
    /// as it was).
    pub async fn command(&self, guid: Guid, command: Command) -> Result<JobEntry, ClientError> {
        Ok(self.command_info(guid, command).await?.job)
    }

    async fn command_info(&self, guid: Guid, command: Command) -> Result<JobInfo, ClientError> {
        match self
            .call(Request::JobCommand(JobCommand { guid, command }))
            .await?
        {
            Reply::Info(info) => Ok(*info),
            _ => Err(ClientError::Unexpected("JobCommand")),
        }
    }

    /// `JobCommand QueryInfo`: the whole job record.
    pub async fn info(&self, guid: Guid) -> Result<JobInfo, ClientError> {
        self.command_info(guid, Command::QueryInfo).await
    }

    /// `JobCommand Query`: the job as it was submitted.
    pub async fn query(&self, guid: Guid) -> Result<JobQueue, ClientError> {
        let command = JobCommand {
            guid,
            command: Command::Query,
        };
        match self.call(Request::JobCommand(command)).await? {
            Reply::Job(job) => Ok(*job),
            _ => Err(ClientError::Unexpected("JobCommand Query")),
        }
    }

    /// `JobCommand Remove`.
    pub async fn remove(&self, guid: Guid) -> Result<(), ClientError> {
        let command = JobCommand {
            guid,
            command: Command::Remove,
        };
        match self.call(Request::JobCommand(command)).await? {
            // An older server answers with the GUID alone.
            Reply::Info(_) | Reply::Queued { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("JobCommand Remove")),
        }
    }

    /// `JobEvaluate` of one file, named as the server sees it.
    pub async fn evaluate(&self, filename: &str) -> Result<EvaluatedSource, ClientError> {
        let request = Request::JobEvaluate(JobEvaluate {
            sources: vec![Source::file(filename)],
            destinations: Vec::new(),
        });
        match self.call(request).await? {
            Reply::Evaluated(mut e) if e.sources.len() == 1 => Ok(e.sources.remove(0)),
            _ => Err(ClientError::Unexpected("JobEvaluate")),
        }
    }

    /// The server's presets (`ProfileList`).
    pub async fn profiles(&self) -> Result<Vec<Profile>, ClientError> {
        let request = Request::ProfileList(ProfileList {
            profile_type: Some("Destination".to_owned()),
        });
        match self.call(request).await? {
            Reply::Profiles { profiles } => Ok(profiles),
            _ => Err(ClientError::Unexpected("ProfileList")),
        }
    }

    pub async fn version(&self) -> Result<VersionInfo, ClientError> {
        match self.call(Request::Version).await? {
            Reply::Version(v) => Ok(v),
            _ => Err(ClientError::Unexpected("Version")),
        }
    }

    /// `NodeCommand GetNodeStatus`.
    pub async fn node_status(&self) -> Result<NodeStatus, ClientError> {
        self.node_command(NodeCommand::get(NodeCommandKind::GetNodeStatus))
            .await
    }

    /// `NodeList`: each node's IP (`IP:PORT` when several nodes share one).
    pub async fn node_list(&self) -> Result<Vec<String>, ClientError> {
        match self.call(Request::NodeList).await? {
            Reply::Nodes { ips } => Ok(ips),
            _ => Err(ClientError::Unexpected("NodeList")),
        }
    }

    /// Every node's status as the server sees it: `NodeList`, then
    /// `NodeCommand GetServerNodeStatus` for each node listed.
    pub async fn node_statuses(&self) -> Result<Vec<NodeStatus>, ClientError> {
        let mut statuses = Vec::new();
        for ip in self.node_list().await? {
            let status = self
                .node_command(NodeCommand {
                    kind: NodeCommandKind::GetServerNodeStatus,
                    node_ip: Some(ip),
                    settings: NodeSettings::default(),
                })
                .await?;
            statuses.push(status);
        }
        Ok(statuses)
    }

    /// A `NodeCommand` whose reply is the node's status.
    pub async fn node_command(&self, command: NodeCommand) -> Result<NodeStatus, ClientError> {
        match self.call(Request::NodeCommand(command)).await? {
            Reply::Node(node) | Reply::ServerNode(node) => Ok(node),
            _ => Err(ClientError::Unexpected("NodeCommand")),
        }
    }
}

fn accepted(reply: Reply) -> Result<Reply, ClientError> {
    match reply {
        Reply::Failed { error } => Err(ClientError::Refused(error)),
        other => Ok(other),
    }
}

/// The jobs of a `JobStatusList` reply.
fn jobs_of(reply: Reply) -> Result<Vec<JobEntry>, ClientError> {
    match accepted(reply)? {
        Reply::StatusList(list) => Ok(list.jobs),
        _ => Err(ClientError::Unexpected("JobStatusList")),
    }
}

/// A pooled connection is stale when the server has closed it (EOF is
/// readable) or sent something unasked.
fn is_stale(conn: &Connection) -> bool {
    if !conn.read_buffer().is_empty() {
        return true;
    }
    let mut probe = [0u8; 1];
    !matches!(conn.get_ref().try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
