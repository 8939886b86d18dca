//! An async Carbon client: one TCP connection, reused across requests,
//! re-established when the server has closed it, with a timeout per exchange.
//!
//! It speaks the same typed messages as the server ([`Request`], [`Reply`]);
//! nothing here writes XML by hand.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::codec::Framed;

use super::frame::{CarbonCodec, FrameError};
use super::guid::Guid;
use super::latin1;
use super::message::{
    Command, EvaluatedSource, JobCommand, JobEntry, JobEvaluate, JobInfo, JobQueue, JobStatusList,
    MessageError, NodeCommand, NodeStatus, Profile, ProfileList, Reply, Request, Source,
    VersionInfo,
};

type Connection = Framed<TcpStream, CarbonCodec>;

/// Requests written before their replies are read. Bounded so that neither
/// side can fill both socket buffers and wait on the other forever.
const PIPELINE_DEPTH: usize = 32;

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
    connection: Mutex<Option<Connection>>,
}

impl Client {
    /// A client for `addr` (`host:port`). Connects lazily.
    pub fn new(addr: impl Into<String>) -> Self {
        Client {
            addr: addr.into(),
            timeout: Duration::from_secs(10),
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

    /// Sends several requests on one connection and reads their replies in
    /// order, [`PIPELINE_DEPTH`] at a time (one round trip per batch).
    ///
    /// A reused connection the server has since closed is replaced and the
    /// batch retried once — only when every request is safe to repeat.
    pub async fn request_many(&self, requests: &[Request]) -> Result<Vec<Reply>, ClientError> {
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
                *slot = Some(Framed::new(stream, CarbonCodec::default()));
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
                    replies.push(Reply::parse(&latin1::decode(&payload), expected)?);
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

    /// The jobs matching `list`.
    pub async fn list(&self, list: JobStatusList) -> Result<Vec<JobEntry>, ClientError> {
        jobs_of(self.request(&Request::JobStatusList(list)).await?)
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

    /// Every job's GUID (`JobList`).
    pub async fn job_list(&self) -> Result<Vec<Guid>, ClientError> {
        match self.call(Request::JobList).await? {
            Reply::JobList { guids } => Ok(guids),
            _ => Err(ClientError::Unexpected("JobList")),
        }
    }

    /// `JobCommand` `Query`, or a control command (`Stop`, `Pause`, `Resume`,
    /// `SetPriority`, `Requeue`): the job's status afterwards.
    pub async fn command(&self, guid: Guid, command: Command) -> Result<JobEntry, ClientError> {
        match self
            .call(Request::JobCommand(JobCommand { guid, command }))
            .await?
        {
            Reply::Status(job) => Ok(*job),
            _ => Err(ClientError::Unexpected("JobCommand")),
        }
    }

    /// `JobCommand QueryInfo`: the whole job record.
    pub async fn info(&self, guid: Guid) -> Result<JobInfo, ClientError> {
        let command = JobCommand {
            guid,
            command: Command::QueryInfo,
        };
        match self.call(Request::JobCommand(command)).await? {
            Reply::Info(info) => Ok(*info),
            _ => Err(ClientError::Unexpected("JobCommand QueryInfo")),
        }
    }

    /// `JobCommand Remove`.
    pub async fn remove(&self, guid: Guid) -> Result<(), ClientError> {
        let command = JobCommand {
            guid,
            command: Command::Remove,
        };
        match self.call(Request::JobCommand(command)).await? {
            Reply::Removed { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("JobCommand Remove")),
        }
    }

    /// `JobEvaluate` of one file, named as the server sees it.
    pub async fn evaluate(&self, filename: &str) -> Result<EvaluatedSource, ClientError> {
        let request = Request::JobEvaluate(JobEvaluate {
            sources: vec![Source {
                filename: filename.to_owned(),
            }],
        });
        match self.call(request).await? {
            Reply::Evaluated { mut sources } if sources.len() == 1 => Ok(sources.remove(0)),
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
        match self
            .call(Request::NodeCommand(NodeCommand::GetNodeStatus))
            .await?
        {
            Reply::Node(node) => Ok(node),
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
        Reply::StatusList { jobs } => Ok(jobs),
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
