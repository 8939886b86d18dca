//! The Carbon task types, one file each, mini-redis style: the request
//! type comes from [`crate::carbon::message`], the handler is here, the
//! reply type goes back there. [`Encoder::handle`] is the one dispatch.
//!
//! - [`job_queue`]: `JobQueue`, the one way in for every job.
//! - [`job_status_list`]: `JobStatusList` and `JobList` (filters, order, pages).
//! - [`job_command`]: `JobCommand` (queries here; control in `super::control`).
//! - [`job_evaluate`]: `JobEvaluate` (probe, nothing encoded).
//! - [`profile_list`]: `ProfileList` (presets as profiles).
//! - [`node_command`]: `NodeCommand`, `NodeList`, `Version`, `CarbonRoles`.

mod job_command;
mod job_evaluate;
mod job_queue;
mod job_status_list;
pub(crate) mod node_command;
mod profile_list;

pub use node_command::NodeState;

use super::{Encoder, EncoderError};
use crate::carbon::message::{Reply, Request};
use crate::carbon::text;

impl Encoder {
    /// Answers one request payload with one reply payload.
    pub async fn handle_payload(&self, payload: &[u8]) -> Vec<u8> {
        let reply = match Request::parse(&text::decode(payload)) {
            Ok(request) => self.handle(request).await,
            Err(e) => {
                tracing::info!(error = %e, "refused a Carbon request");
                self.inner.metrics.carbon_request("invalid", false);
                failed(&e)
            }
        };
        reply.to_payload()
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Reply {
        let task = request.task_type();
        let result: Result<Reply, EncoderError> = match request {
            Request::JobQueue(job) => self.job_queue(job).await,
            Request::JobStatusList(list) => self.job_status_list(&list).await,
            Request::JobList(settings) => self.job_list(&settings).await,
            Request::JobCommand(c) => self.job_command(c.guid, c.command).await,
            Request::JobEvaluate(e) => self.job_evaluate(&e).await,
            Request::ProfileList(list) => Ok(self.profile_list(&list)),
            Request::Version => Ok(self.version()),
            Request::CarbonRoles => Ok(Reply::Roles {
                role: "SERVER".to_owned(),
            }),
            Request::NodeList => self.node_list().await,
            Request::NodeCommand(command) => self.node_command(&command).await,
        };
        self.inner
            .metrics
            .carbon_request(task.as_str(), result.is_ok());
        result.unwrap_or_else(|e| {
            tracing::info!(error = %e, %task, "Carbon request failed");
            failed(&e)
        })
    }
}

/// The one conversion of a refusal (an [`EncoderError`], a request that
/// did not parse, or a connection the server will not serve) into the
/// Carbon reply's `Error` text.
pub(super) fn failed(error: &dyn std::error::Error) -> Reply {
    Reply::Failed {
        error: error.to_string(),
    }
}
