-- Owners take turns in the queue: how many encodes an owner (the job's
-- User) has running and when one of theirs last started, looked up per
-- owner with a queued job.
CREATE INDEX jobs_by_owner_status ON jobs (user, status);
CREATE INDEX jobs_by_owner_start ON jobs (user, start_time);
