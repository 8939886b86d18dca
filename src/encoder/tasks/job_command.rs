//! `JobCommand`: every command answers with the job's `JobInfo` (after the
//! command; for `Remove`, as it was), `Query` with the job as submitted.
//! Pause, Resume and Stop act through `super::control`.

use super::super::control::cannot;
use super::super::job::{self, REQUEUEABLE};
use super::super::{Encoder, EncoderError, check_priority};
use crate::carbon::message::{
    Command, Destination, DestinationInfo, JobInfo, JobQueue, ModuleData, Reply, Source,
};
use crate::carbon::{Guid, Request};
use crate::store::Job;

/// The files a destination wrote: its output, then its copies.
fn target_files(d: &crate::store::jobs::Destination) -> Vec<String> {
    d.output_path
        .iter()
        .chain(&d.copied)
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

impl Encoder {
    pub(super) async fn job_command(
        &self,
        guid: Guid,
        command: Command,
    ) -> Result<Reply, EncoderError> {
        let job = match command {
            Command::Query => return Ok(Reply::Job(Box::new(self.submitted(guid).await?))),
            Command::QueryInfo => self.job(guid).await?,
            Command::SetPriority(priority) => {
                let priority = check_priority(priority)?;
                if !self.inner.jobs.set_priority(guid, priority).await? {
                    return Err(EncoderError::NoSuchJob(guid));
                }
                // A queued job may now come first.
                self.inner.wake.notify_one();
                self.job(guid).await?
            }
            Command::Requeue => {
                if !self.inner.jobs.requeue(guid, &REQUEUEABLE).await? {
                    return Err(cannot(command, self.job(guid).await?.status));
                }
                tracing::info!(%guid, "job requeued");
                self.inner.wake.notify_one();
                self.job(guid).await?
            }
            Command::Remove => {
                let before = self.job(guid).await?;
                let info = self.info(&before).await?;
                // A running encode is stopped first (its temp output goes
                // with it); finished outputs are left where they are.
                if let Some(control) = self.inner.running.get(guid) {
                    self.stop_worker(&control).await;
                }
                // Unfinished chunk pieces go too (chunk workers on other
                // nodes drop theirs when they see the job gone).
                self.forget_chunks(guid).await;
                if !self.inner.jobs.remove(guid).await? {
                    return Err(EncoderError::NoSuchJob(guid));
                }
                tracing::info!(%guid, "job removed");
                return Ok(Reply::Info(Box::new(info)));
            }
            Command::Pause | Command::Resume | Command::Stop => self.control(guid, command).await?,
        };
        Ok(Reply::Info(Box::new(self.info(&job).await?)))
    }

    /// The job record with its source and each destination's preset,
    /// folder and, once written, output and copies.
    async fn info(&self, job: &Job) -> Result<JobInfo, EncoderError> {
        let destinations = self.inner.jobs.destinations(job.guid).await?;
        self.know_agents(std::slice::from_ref(job)).await;
        let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let mut sources = vec![text(&job.source_path)];
        if let crate::store::jobs::AudioSource::File(audio) = &job.audio {
            sources.push(text(audio));
        }
        Ok(JobInfo {
            job: job::entry(job, &self.agent_of(job)),
            sources,
            destinations: destinations
                .iter()
                .map(|d| DestinationInfo {
                    preset_guid: d.preset_guid,
                    preset_name: self
                        .inner
                        .presets
                        .get(d.preset_guid)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    name: d.name.clone(),
                    path: text(&d.dest_dir),
                    base_name: d.base_name.clone(),
                    target_files: target_files(d),
                })
                .collect(),
        })
    }

    /// `Query`: the request as the client sent it (as it was kept), or,
    /// for a job from before requests were kept, rebuilt from the record;
    /// each destination with the files it wrote (`TargetFiles`).
    async fn submitted(&self, guid: Guid) -> Result<JobQueue, EncoderError> {
        let job = self.job(guid).await?;
        let stored = self.inner.jobs.destinations(guid).await?;
        let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let kept = self.inner.jobs.request_xml(guid).await?.unwrap_or_default();
        let mut request = match Request::parse(&kept) {
            Ok(Request::JobQueue(request)) => request,
            _ => JobQueue {
                job_name: Some(job.name.clone()),
                description: Some(job.description.clone()).filter(|d| !d.is_empty()),
                user: Some(job.user.clone()).filter(|u| !u.is_empty()),
                sources: vec![Source::file(text(&job.source_path))],
                destinations: stored
                    .iter()
                    .map(|d| Destination {
                        preset_guid: Some(d.preset_guid.to_string()),
                        module_data: ModuleData {
                            path: Some(text(&d.dest_dir)),
                            base_file_name: Some(d.base_name.clone()),
                        },
                        name: d.name.clone(),
                        ..Destination::default()
                    })
                    .collect(),
                priority: Some(job.priority),
                unapplied: Vec::new(),
            },
        };
        for (destination, d) in request.destinations.iter_mut().zip(&stored) {
            destination.target_files = target_files(d);
        }
        Ok(request)
    }
}
