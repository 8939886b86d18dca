//! `JobStatusList` and `JobList`: the jobs matching a filter, in the
//! order asked for, one page at a time (at most [`MAX_LIST`] a reply).

use std::collections::HashMap;

use super::super::{Encoder, EncoderError, job};
use crate::carbon::message::{
    Direction, JobListing, JobStatusList, ListSettings, MAX_LIST, Reply, StatusList,
};
use crate::carbon::{Guid, JobEntry, JobStatus};
use crate::store::Job;

impl Encoder {
    pub(super) async fn job_status_list(
        &self,
        list: &JobStatusList,
    ) -> Result<Reply, EncoderError> {
        let (page, total) = self.matching(list).await?;
        let positions = if page
            .iter()
            .filter(|(j, _)| j.status == JobStatus::Queued)
            .count()
            > 1
        {
            Some(self.inner.jobs.queue_positions().await?)
        } else {
            None
        };
        let mut jobs = Vec::with_capacity(page.len());
        for (_, mut entry) in page {
            self.add_live_facts(&mut entry, positions.as_ref()).await?;
            jobs.push(entry);
        }
        Ok(Reply::StatusList(StatusList { jobs, total }))
    }

    pub(super) async fn job_list(&self, settings: &ListSettings) -> Result<Reply, EncoderError> {
        let list = JobStatusList {
            criteria: Vec::new(),
            settings: settings.clone(),
        };
        let (page, _) = self.matching(&list).await?;
        Ok(Reply::JobList(JobListing {
            jobs: page.into_iter().map(|(j, e)| (j.guid, e.name)).collect(),
        }))
    }

    /// The page of jobs `list` selects, and how many matched in all.
    async fn matching(
        &self,
        list: &JobStatusList,
    ) -> Result<(Vec<(Job, JobEntry)>, usize), EncoderError> {
        job::validate(&list.criteria)?;
        if let Some(field) = &list.settings.order_by {
            job::check_field(field)?;
        }
        let candidates = match job::guid_criterion(&list.criteria)? {
            // The common case (the seed polls one GUID): one indexed lookup.
            Some(guid) => self.inner.jobs.get(guid).await?.into_iter().collect(),
            None => self.inner.jobs.all().await?,
        };
        self.know_agents(&candidates).await;
        let entry = |job: Job| {
            let entry = job::entry(&job, &self.agent_of(&job));
            (job, entry)
        };
        // Neither filtered nor ordered (JobList, a bare JobStatusList): the
        // page is known before any record is built.
        if list.criteria.is_empty() && list.settings.order_by.is_none() {
            let mut candidates = candidates;
            let total = candidates.len();
            let page = candidates
                .drain(list.settings.page(total))
                .map(entry)
                .collect();
            return Ok((page, total));
        }
        let mut matched = Vec::new();
        for (job, entry) in candidates.into_iter().map(entry) {
            let mut keep = true;
            for criterion in &list.criteria {
                keep = keep && job::matches(&job, &entry, criterion)?;
            }
            if keep {
                matched.push((job, entry));
            }
        }
        if let Some(field) = &list.settings.order_by {
            let descending =
                list.settings.direction.unwrap_or(Direction::Descending) == Direction::Descending;
            // Stable either way: equal values keep check-in order.
            matched.sort_by(|a, b| {
                let order = job::compare_by(field, (&a.0, &a.1), (&b.0, &b.1));
                if descending { order.reverse() } else { order }
            });
        }
        let total = matched.len();
        let range = list.settings.page(total);
        debug_assert!(range.len() <= MAX_LIST);
        let page = matched.drain(range).collect();
        Ok((page, total))
    }

    /// Adds what only this node knows live (videoshare's extensions): the
    /// rate of a running encode, the place of a waiting job. `positions`
    /// holds every place when many jobs are listed at once.
    async fn add_live_facts(
        &self,
        entry: &mut JobEntry,
        positions: Option<&HashMap<Guid, u32>>,
    ) -> Result<(), EncoderError> {
        let two_places = |x: f64| (x * 100.0).round() / 100.0;
        match entry.status {
            JobStatus::Started => {
                // A job encoded here in one run, else one in chunks on any
                // node (their rates summed); unknown for a one-run encode
                // on another node.
                let rate = match self.inner.running.rate(entry.guid) {
                    Some(rate) => Some((rate.fps, rate.speed)),
                    None => (self.inner.chunks.rate(entry.guid).await?).map(|r| (r.fps, r.speed)),
                };
                // ffmpeg says 0 until it has timed a few frames: not known yet.
                if let Some((fps, speed)) = rate {
                    entry.fps = (fps > 0.0).then(|| two_places(fps));
                    entry.speed = (speed > 0.0).then(|| two_places(speed));
                }
            }
            JobStatus::Queued => {
                entry.queue_position = match positions {
                    Some(all) => all.get(&entry.guid).copied(),
                    None => self.inner.jobs.queue_position(entry.guid).await?,
                };
            }
            _ => {}
        }
        Ok(())
    }
}
