//! What other processes tell this one through the database (PostgreSQL's
//! LISTEN/NOTIFY; the triggers are in `migrations/postgres/`): a job was
//! queued, a held job's status was changed by a command, a node was
//! enabled or disabled, a chunk of a job was done or failed. A notification is a hint to look again, never the
//! only way to learn: the nodes also poll, since notifications sent while
//! the listening connection is down are lost.

use std::str::FromStr;

use sqlx::postgres::PgListener;

use super::{Db, RowReader, StoreError};
use crate::carbon::{Guid, JobStatus};

/// Something changed that a node may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job became QUEUED.
    Queued,
    /// The status of a job that `node` holds was changed by someone else.
    Job {
        node: String,
        guid: Guid,
        status: JobStatus,
    },
    /// Node `name` was enabled or disabled.
    Node { name: String },
    /// A chunk of job `guid` was done or failed.
    ChunkDone { guid: Guid },
    /// The listening connection was lost and is back: anything may have
    /// been missed meanwhile.
    Reconnected,
}

/// A connection listening for [`Event`]s.
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// Listens on `db`; `None` on SQLite, where one process does all.
    pub async fn open(db: &Db) -> Result<Option<Listener>, StoreError> {
        let Some(url) = &db.url else {
            return Ok(None);
        };
        let mut inner = PgListener::connect(url).await?;
        inner
            .listen_all(["vs_queue", "vs_jobs", "vs_nodes", "vs_chunks"])
            .await?;
        Ok(Some(Listener { inner }))
    }

    /// The next event. A notification that does not parse is skipped.
    pub async fn next(&mut self) -> Result<Event, StoreError> {
        loop {
            let Some(notice) = self.inner.try_recv().await? else {
                // Closed: the next call reconnects and listens again.
                return Ok(Event::Reconnected);
            };
            let event = match notice.channel() {
                "vs_queue" => Some(Event::Queued),
                "vs_jobs" => job_event(notice.payload()),
                "vs_nodes" => Some(Event::Node {
                    name: notice.payload().to_owned(),
                }),
                "vs_chunks" => chunk_event(notice.payload()),
                _ => None,
            };
            if let Some(event) = event {
                return Ok(event);
            }
        }
    }
}

/// `"<node> <guid> <status>"`, as the `vs_notify_job` trigger writes it.
fn job_event(payload: &str) -> Option<Event> {
    let mut parts = payload.split(' ');
    let (node, guid, status) = (parts.next()?, parts.next()?, parts.next()?);
    let read = RowReader { table: "jobs" };
    Some(Event::Job {
        node: node.to_owned(),
        guid: read.guid(guid).ok()?,
        status: JobStatus::from_str(status).ok()?,
    })
}

/// A job's GUID, as the `vs_notify_chunk` trigger writes it.
fn chunk_event(payload: &str) -> Option<Event> {
    let read = RowReader { table: "chunks" };
    Some(Event::ChunkDone {
        guid: read.guid(payload).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_notification_reads_back() {
        let guid = Guid::new_random();
        assert_eq!(
            job_event(&format!("node-a {guid} PAUSED")),
            Some(Event::Job {
                node: "node-a".into(),
                guid,
                status: JobStatus::Paused,
            })
        );
        assert_eq!(job_event("node-a nonsense PAUSED"), None);
        assert_eq!(job_event("node-a"), None);
    }

    #[test]
    fn a_chunk_notification_reads_back() {
        let guid = Guid::new_random();
        assert_eq!(
            chunk_event(&guid.to_string()),
            Some(Event::ChunkDone { guid })
        );
        assert_eq!(chunk_event("nonsense"), None);
    }
}
