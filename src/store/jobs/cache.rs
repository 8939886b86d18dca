//! The jobs read cache: the rows the status polls ask for, kept in memory
//! and forgotten on every write (see [`ReadCache`]).

use std::collections::HashMap;

use super::Job;
use crate::carbon::Guid;

/// Most jobs the read cache holds (about 250 bytes each).
pub(super) const CACHE_CAPACITY: usize = 131_072;

/// Jobs read recently, so the status polls that make up most of the
/// encoder's traffic (the portal asks about each active job four times a
/// second; Carbon clients poll) need no database round trip. sqlx runs
/// SQLite on a worker thread, and handing each query over and back cost
/// far more than the query: profiling the Carbon benchmark showed 60 % of
/// the server's CPU in context switches (docs/benchmarks.md).
///
/// Every write through the store forgets the rows it touched once it has
/// committed, and moves the generation on; a read that overlapped a write
/// (the generation moved meanwhile) is not kept, so the cache never holds
/// a row older than the database.
///
/// Only valid while every write goes through this process: on a database
/// other nodes share (PostgreSQL) it is made off and keeps nothing.
#[derive(Debug, Default)]
pub(super) struct ReadCache {
    state: parking_lot::Mutex<CacheState>,
    off: bool,
}

#[derive(Debug, Default)]
struct CacheState {
    jobs: HashMap<Guid, Job>,
    generation: u64,
}

impl ReadCache {
    /// A cache that keeps nothing.
    pub(super) fn off() -> ReadCache {
        ReadCache {
            off: true,
            ..ReadCache::default()
        }
    }

    pub(super) fn get(&self, guid: Guid) -> Option<Job> {
        self.state.lock().jobs.get(&guid).cloned()
    }

    pub(super) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Keeps `job`, read from the database when the generation was
    /// `seen`, unless a write has happened since.
    pub(super) fn keep(&self, job: &Job, seen: u64) {
        let mut state = self.state.lock();
        if self.off || state.generation != seen {
            return;
        }
        if state.jobs.len() >= CACHE_CAPACITY {
            // Full: let an arbitrary eighth go (hash order is random).
            let evicted: Vec<Guid> = state
                .jobs
                .keys()
                .take(CACHE_CAPACITY / 8)
                .copied()
                .collect();
            for guid in evicted {
                state.jobs.remove(&guid);
            }
        }
        state.jobs.insert(job.guid, job.clone());
    }

    pub(super) fn forget(&self, guid: Guid) {
        let mut state = self.state.lock();
        state.generation += 1;
        state.jobs.remove(&guid);
    }

    pub(super) fn forget_all(&self) {
        let mut state = self.state.lock();
        state.generation += 1;
        state.jobs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::JobStatus;

    fn job(guid: Guid, progress: u32) -> Job {
        Job {
            guid,
            progress,
            ..Job::sample(JobStatus::Started)
        }
    }

    #[test]
    fn a_read_that_overlapped_a_write_is_not_cached() {
        let cache = ReadCache::default();
        let guid: Guid = "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
            .parse()
            .expect("guid");
        // A reader starts, a writer commits and forgets, the reader's (old)
        // row arrives: it must not be kept.
        let seen = cache.generation();
        cache.forget(guid);
        cache.keep(&job(guid, 10), seen);
        assert_eq!(cache.get(guid), None);
        // A read with nothing in between is kept, until the next write.
        let seen = cache.generation();
        cache.keep(&job(guid, 20), seen);
        assert_eq!(cache.get(guid).map(|j| j.progress), Some(20));
        cache.forget(guid);
        assert_eq!(cache.get(guid), None);
        let seen = cache.generation();
        cache.keep(&job(guid, 30), seen);
        cache.forget_all();
        assert_eq!(cache.get(guid), None);
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = ReadCache::default();
        for n in 0..(CACHE_CAPACITY + 10) {
            let guid: Guid = format!("{{{:08X}-0000-0000-0000-000000000000}}", n)
                .parse()
                .expect("guid");
            cache.keep(&job(guid, 0), cache.generation());
        }
        assert!(cache.state.lock().jobs.len() <= CACHE_CAPACITY);
    }
}
