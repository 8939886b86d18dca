-- Encoder farm: many encoder nodes may share one queue (on PostgreSQL; on
-- SQLite there is one). A worker holds a job under a lease it renews; a job
-- whose lease runs out is put back by any node's sweeper.
ALTER TABLE jobs ADD COLUMN node TEXT;                        -- who claimed it last (kept after)
ALTER TABLE jobs ADD COLUMN lease_expires INTEGER;            -- unix ms, database clock; NULL: not held
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;     -- claims so far: the fencing token
ALTER TABLE jobs ADD COLUMN lease_losses INTEGER NOT NULL DEFAULT 0; -- leases that ran out
CREATE INDEX jobs_by_lease ON jobs (lease_expires) WHERE lease_expires IS NOT NULL;

-- The encoder nodes, each registered by the process running it.
CREATE TABLE nodes (
    name           TEXT    PRIMARY KEY,
    instance       TEXT    NOT NULL,             -- random per process: who holds the name
    address        TEXT    NOT NULL DEFAULT '',  -- its Carbon listener
    slots          INTEGER NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 1,
    version        TEXT    NOT NULL,
    encoders       TEXT    NOT NULL DEFAULT '[]', -- JSON list of ffmpeg encoders it has
    started_at     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,             -- unix ms, database clock
    state          TEXT    NOT NULL,             -- up, left
    note           TEXT    NOT NULL DEFAULT '',  -- what it wants an operator to know
    lease_expiries INTEGER NOT NULL DEFAULT 0    -- its leases that ran out
);
