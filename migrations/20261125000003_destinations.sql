-- A job may have several destinations (one output each, one ffmpeg run for
-- all). The old one-destination columns move into this table.
CREATE TABLE destinations (
    job_guid    TEXT    NOT NULL REFERENCES jobs (guid) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,             -- Destinations/Module_N order
    preset_guid TEXT    NOT NULL,
    dest_dir    TEXT    NOT NULL,             -- local, checked against the allowed roots
    base_name   TEXT    NOT NULL,             -- output file name without extension
    output_path TEXT,                         -- set when the job completes
    PRIMARY KEY (job_guid, idx)
);

INSERT INTO destinations (job_guid, idx, preset_guid, dest_dir, base_name, output_path)
    SELECT guid, 0, preset_guid, dest_dir, base_name, output_path FROM jobs;

ALTER TABLE jobs DROP COLUMN preset_guid;
ALTER TABLE jobs DROP COLUMN dest_dir;
ALTER TABLE jobs DROP COLUMN base_name;
ALTER TABLE jobs DROP COLUMN output_path;

-- Queue order within a priority: when the job entered the queue. A crash
-- keeps it (the job keeps its place); a Requeue command renews it.
ALTER TABLE jobs ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET queued_at = check_in_time;

DROP INDEX jobs_by_queue_order;
CREATE INDEX jobs_by_queue_order ON jobs (status, priority DESC, queued_at, seq);
