//! Job control: the registry of encodes running on this node and the
//! `Pause`, `Resume` and `Stop` commands acting on them (the `JobCommand`
//! task itself is `tasks/job_command.rs`).
//!
//! The database says what status a job is in; the registry holds the live
//! handles of the jobs a worker is running (suspend/continue its ffmpeg, ask
//! it to stop, learn when it is gone). A command first moves the job in the
//! database through the state machine, then tells the worker: directly when
//! it runs on this node, through the database when it runs on another node
//! of the farm, which [`Encoder::reconcile`]s its worker with the new status
//! (notified at once, and checked again at every lease renewal).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::job;
use super::{Encoder, EncoderError};
use crate::carbon::message::Command;
use crate::carbon::{Guid, JobStatus};
use crate::store::Job;
use crate::store::jobs::Change;

/// The `Description` of a job stopped by a client.
pub(super) const STOPPED_BY_COMMAND: &str = "stopped by JobCommand Stop";

/// How long `Stop` and `Remove` wait for a running encode to end before
/// replying (ffmpeg is killed, so this is a bound, not the usual case).
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How often a command is retried when the job changed status between
/// reading it and moving it (e.g. it started while being paused).
const RACE_RETRIES: usize = 3;

/// How long Pause and Resume wait for the worker to signal ffmpeg.
const SIGNAL_WAIT: Duration = Duration::from_secs(5);

/// The live handles of one running job.
#[derive(Debug)]
pub(super) struct Control {
    /// `true` while the job's ffmpeg must be suspended.
    paused: watch::Sender<bool>,
    /// Whether ffmpeg has been sent `SIGSTOP` (`true`) or `SIGCONT`.
    suspended: watch::Sender<bool>,
    /// Fired by `Stop` / `Remove`: the worker drops the encode.
    pub stop: CancellationToken,
    /// Fired when the worker has written the job's outcome.
    finished: CancellationToken,
    /// Fired when this node lost the job's lease (another node may take
    /// it): the worker drops the encode and writes nothing.
    pub lost: CancellationToken,
    /// Which claim of the job the worker holds (its lease's fencing token).
    pub attempt: i64,
    /// How fast ffmpeg last said it was going (kept in memory only: it
    /// changes four times a second and means nothing after a restart).
    rate: Mutex<Option<super::ffmpeg::Rate>>,
}

/// The jobs running on this node (keyed by GUID), or the chunks of jobs
/// (keyed by GUID and chunk number).
#[derive(Debug)]
pub(super) struct Running<K = Guid> {
    jobs: Mutex<HashMap<K, Arc<Control>>>,
}

impl<K> Default for Running<K> {
    fn default() -> Self {
        Running {
            jobs: Mutex::new(HashMap::new()),
        }
    }
}

/// Keeps a job in the registry; dropping it removes the job and fires
/// `finished`, however the worker ends.
pub(super) struct Registration<'a, K: Eq + Hash + Copy = Guid> {
    running: &'a Running<K>,
    key: K,
    pub control: Arc<Control>,
}

impl<K: Eq + Hash + Copy> Drop for Registration<'_, K> {
    fn drop(&mut self) {
        let mut jobs = self.running.jobs.lock();
        // A requeued job may already run again under a new registration.
        if jobs
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.control))
        {
            jobs.remove(&self.key);
        }
        drop(jobs);
        self.control.finished.cancel();
    }
}

impl Control {
    /// The runner's end of pausing.
    pub fn suspension(&self) -> super::ffmpeg::Suspension {
        super::ffmpeg::Suspension {
            wanted: self.paused.subscribe(),
            applied: self.suspended.clone(),
        }
    }

    pub fn set_rate(&self, rate: super::ffmpeg::Rate) {
        *self.rate.lock() = Some(rate);
    }

    /// The latest rate, unless ffmpeg is suspended.
    pub fn rate(&self) -> Option<super::ffmpeg::Rate> {
        if *self.suspended.borrow() {
            return None;
        }
        *self.rate.lock()
    }

    /// Asks for ffmpeg to start suspended once the source is probed.
    fn hold(&self) {
        self.paused.send_replace(true);
    }

    /// Asks for ffmpeg to be suspended or continued, without waiting.
    pub(super) fn want_paused(&self, paused: bool) {
        self.paused
            .send_if_modified(|now| std::mem::replace(now, paused) != paused);
    }

    /// Asks for ffmpeg to be suspended or continued and waits (bounded)
    /// until it has been signalled, so the reply tells the truth; an encode
    /// that ends meanwhile needs no signal.
    async fn set_paused(&self, paused: bool) {
        let mut applied = self.suspended.subscribe();
        self.paused.send_replace(paused);
        tokio::select! {
            _ = applied.wait_for(|now| *now == paused) => {}
            _ = self.finished.cancelled() => {}
            _ = tokio::time::sleep(SIGNAL_WAIT) => {
                tracing::warn!(paused, "ffmpeg was not signalled within {SIGNAL_WAIT:?}");
            }
        }
    }
}

impl<K: Eq + Hash + Copy> Running<K> {
    pub fn register(&self, key: K, attempt: i64) -> Registration<'_, K> {
        let control = Arc::new(Control {
            paused: watch::Sender::new(false),
            suspended: watch::Sender::new(false),
            stop: CancellationToken::new(),
            finished: CancellationToken::new(),
            lost: CancellationToken::new(),
            attempt,
            rate: Mutex::new(None),
        });
        self.jobs.lock().insert(key, control.clone());
        Registration {
            running: self,
            key,
            control,
        }
    }

    pub(super) fn get(&self, key: K) -> Option<Arc<Control>> {
        self.jobs.lock().get(&key).cloned()
    }

    /// How fast the encode goes, if it is running and not suspended.
    pub fn rate(&self, key: K) -> Option<super::ffmpeg::Rate> {
        self.get(key).and_then(|c| c.rate())
    }

    pub fn len(&self) -> usize {
        self.jobs.lock().len()
    }

    /// Every running job (or chunk) with its handles.
    pub fn all(&self) -> Vec<(K, Arc<Control>)> {
        self.jobs
            .lock()
            .iter()
            .map(|(guid, control)| (*guid, control.clone()))
            .collect()
    }
}

/// What a command does to a job in a given status, decided before touching
/// anything.
enum Plan {
    /// Nothing to change: reply with the job as it is.
    AsIs,
    /// Move the job in the database, then apply `then` to its worker.
    Move {
        from: JobStatus,
        to: JobStatus,
        then: Then,
    },
}

/// What a worker is told after the job moved.
#[derive(Clone, Copy)]
enum Then {
    Nothing,
    Suspend,
    /// Suspend ffmpeg as soon as it is started (the job is still probing).
    SuspendLater,
    Continue,
    /// Fire `stop` and wait for the worker to finish.
    Stop,
    /// A held job went back to the queue: wake the scheduler.
    Wake,
}

impl Encoder {
    /// Pause, Resume and Stop: plan from the current status, move, tell the
    /// worker; retried if the job moved underneath. Returns the job after.
    pub(super) async fn control(&self, guid: Guid, command: Command) -> Result<Job, EncoderError> {
        for _ in 0..RACE_RETRIES {
            let job = self.job(guid).await?;
            let control = self.inner.running.get(guid);
            let elsewhere = job.held && job.node.as_deref() != Some(self.node_name());
            let then = match plan(command, &job, control.is_some() || elsewhere)? {
                Plan::AsIs => return Ok(job),
                Plan::Move { from, to, then } => {
                    debug_assert!(
                        job::allowed_from(to).contains(&from),
                        "{from} -> {to} is not in the state machine"
                    );
                    let change = Change {
                        failure: (to == JobStatus::Stopped).then(|| STOPPED_BY_COMMAND.to_owned()),
                        ..Change::default()
                    };
                    if !self
                        .inner
                        .jobs
                        .transition(guid, &[from], to, change)
                        .await?
                    {
                        continue;
                    }
                    tracing::info!(%guid, %from, %to, "job {}", command.kind());
                    // This node's chunk workers of the job follow at once
                    // (other nodes' hear it through the database).
                    self.reconcile_chunks(guid, Some(to));
                    then
                }
            };
            match (then, control) {
                (Then::Suspend, Some(c)) => c.set_paused(true).await,
                (Then::SuspendLater, Some(c)) => c.hold(),
                (Then::Continue, Some(c)) => c.set_paused(false).await,
                (Then::Stop, Some(c)) => self.stop_worker(&c).await,
                (Then::Stop, None) if elsewhere => self.await_remote_stop(guid).await?,
                (Then::Wake, _) => self.inner.wake.notify_one(),
                _ => {}
            }
            return self.job(guid).await;
        }
        Err(EncoderError::Busy(guid))
    }

    /// Asks a worker to stop and waits (bounded) until it has written the
    /// job's outcome.
    pub(super) async fn stop_worker(&self, control: &Control) {
        control.stop.cancel();
        if tokio::time::timeout(STOP_WAIT, control.finished.cancelled())
            .await
            .is_err()
        {
            tracing::warn!("a stopped encode did not end within {STOP_WAIT:?}");
        }
    }

    /// Waits (bounded) until the node running a job that was asked to stop
    /// has ended it: polls, as the reply must tell the truth.
    async fn await_remote_stop(&self, guid: Guid) -> Result<(), EncoderError> {
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while tokio::time::Instant::now() < deadline {
            let job = self.inner.jobs.get(guid).await?;
            if !job.is_some_and(|j| j.status == JobStatus::Stopping) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(%guid, "the node running a stopped encode did not end it within {STOP_WAIT:?}");
        Ok(())
    }

    /// Brings a worker of this node in line with its job's status, changed
    /// by a command another node took: suspends, continues or stops it.
    pub(super) fn reconcile(&self, guid: Guid, status: JobStatus) {
        let Some(control) = self.inner.running.get(guid) else {
            return;
        };
        match status {
            JobStatus::Paused => control.want_paused(true),
            JobStatus::Started => control.want_paused(false),
            JobStatus::Stopping | JobStatus::Stopped if !control.stop.is_cancelled() => {
                tracing::info!(%guid, "stopped by a command to another node");
                control.stop.cancel();
            }
            _ => {}
        }
    }

    pub(super) async fn job(&self, guid: Guid) -> Result<Job, EncoderError> {
        self.inner
            .jobs
            .get(guid)
            .await?
            .ok_or(EncoderError::NoSuchJob(guid))
    }
}

pub(super) fn cannot(command: Command, status: JobStatus) -> EncoderError {
    let accepts = match command {
        Command::Pause => "QUEUED, STARTING or STARTED",
        Command::Resume => "PAUSED",
        Command::Stop => "QUEUED, STARTING, STARTED or PAUSED",
        Command::Requeue => "STOPPED, ERROR, COMPLETED or INVALID",
        // The others apply to a job in any status.
        _ => "existing",
    };
    EncoderError::CannotCommand {
        command: command.kind().as_str(),
        status,
        accepts,
    }
}

/// Decides what Pause, Resume or Stop does to `job`; `running` says whether
/// a worker holds it, on this node or another (a PAUSED job without one is
/// held in the queue rather than suspended).
fn plan(command: Command, job: &Job, running: bool) -> Result<Plan, EncoderError> {
    use JobStatus::*;
    let moving = |from, to, then| Ok(Plan::Move { from, to, then });
    match (command, job.status) {
        (Command::Pause, Paused) | (Command::Resume, Queued | Started | Starting) => Ok(Plan::AsIs),
        (Command::Stop, Stopped | Stopping) => Ok(Plan::AsIs),
        (Command::Pause, Queued) => moving(Queued, Paused, Then::Nothing),
        // Still probing: ffmpeg will start suspended.
        (Command::Pause, Starting) if running => moving(Starting, Paused, Then::SuspendLater),
        (Command::Pause, Started) if running => moving(Started, Paused, Then::Suspend),
        // Claimed but not yet held by a worker (an instant), or its worker
        // is shutting down.
        (Command::Pause, Starting | Started) => Err(EncoderError::InTransit(job.guid)),
        (Command::Resume, Paused) if running => moving(Paused, Started, Then::Continue),
        (Command::Resume, Paused) => moving(Paused, Queued, Then::Wake),
        (Command::Stop, Queued) => moving(Queued, Stopped, Then::Nothing),
        (Command::Stop, from @ (Starting | Started | Paused)) if running => {
            moving(from, Stopping, Then::Stop)
        }
        // Held, or not (yet) held by a worker: a worker that takes it up
        // finds it STOPPED and never starts ffmpeg.
        (Command::Stop, from @ (Starting | Started | Paused)) => {
            moving(from, Stopped, Then::Nothing)
        }
        (_, status) => Err(cannot(command, status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus) -> Job {
        Job::sample(status)
    }

    /// `(from, to)` of a move, "as is", or the error text.
    fn outcome(command: Command, status: JobStatus, running: bool) -> String {
        match plan(command, &job(status), running) {
            Ok(Plan::AsIs) => "as is".into(),
            Ok(Plan::Move { from, to, .. }) => {
                assert!(job::allowed_from(to).contains(&from), "{from} -> {to}");
                format!("{from}->{to}")
            }
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_planned_move_is_in_the_state_machine() {
        for command in [Command::Pause, Command::Resume, Command::Stop] {
            for status in JobStatus::ALL {
                for running in [false, true] {
                    outcome(command, status, running);
                }
            }
        }
    }

    #[test]
    fn commands_by_status() {
        use JobStatus::*;
        let cases = [
            (Command::Pause, Queued, false, "QUEUED->PAUSED"),
            (Command::Pause, Starting, true, "STARTING->PAUSED"),
            (Command::Pause, Started, true, "STARTED->PAUSED"),
            (Command::Pause, Starting, false, "send the command again"),
            (Command::Pause, Paused, true, "as is"),
            (
                Command::Pause,
                Completed,
                false,
                "cannot Pause job: it is COMPLETED",
            ),
            (Command::Resume, Paused, true, "PAUSED->STARTED"),
            (Command::Resume, Paused, false, "PAUSED->QUEUED"),
            (
                Command::Resume,
                Stopped,
                false,
                "cannot Resume job: it is STOPPED",
            ),
            (Command::Stop, Started, true, "STARTED->STOPPING"),
            (Command::Stop, Paused, true, "PAUSED->STOPPING"),
            (Command::Stop, Paused, false, "PAUSED->STOPPED"),
            (Command::Stop, Starting, false, "STARTING->STOPPED"),
            (Command::Stop, Stopping, true, "as is"),
            (Command::Stop, Error, false, "cannot Stop job: it is ERROR"),
        ];
        for (command, status, running, expected) in cases {
            let got = outcome(command, status, running);
            assert!(
                got.contains(expected),
                "{command:?} on {status} (running {running}): {got}"
            );
        }
    }
}
