-- Chunked encoding: a long job split into chunks, each leased by encoder
-- nodes as jobs are (node, lease_expires on the database clock, attempts as
-- the fencing token). Carbon sees only the parent job. The rows go with
-- their job (foreign keys are on: see `store::open`).

-- How a job was split: the source as it was then (size, mtime), the recipe
-- and the encoder's own spec (JSON), and the folder the chunks are written to.
CREATE TABLE chunk_plans (
    job_guid        TEXT    PRIMARY KEY REFERENCES jobs (guid) ON DELETE CASCADE,
    source_size     INTEGER NOT NULL,
    source_mtime_ns INTEGER NOT NULL,
    recipe          TEXT    NOT NULL,
    spec            TEXT    NOT NULL,
    work_dir        TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);

-- The chunks of a planned job, idx 0.. in plan order.
CREATE TABLE chunks (
    job_guid      TEXT    NOT NULL REFERENCES jobs (guid) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    kind          TEXT    NOT NULL,                  -- audio, video
    start_us      INTEGER NOT NULL,
    end_us        INTEGER NOT NULL,
    frames        INTEGER,
    first_segment INTEGER NOT NULL DEFAULT 0,
    weight        INTEGER NOT NULL,                  -- share of the job's work
    state         TEXT    NOT NULL DEFAULT 'queued', -- queued, running, done, failed
    progress      INTEGER NOT NULL DEFAULT 0,
    node          TEXT,                              -- who claimed it last
    lease_expires INTEGER,                           -- unix ms, database clock; NULL: not held
    attempts      INTEGER NOT NULL DEFAULT 0,        -- claims so far: the fencing token
    lease_losses  INTEGER NOT NULL DEFAULT 0,        -- leases that ran out
    runs          INTEGER NOT NULL DEFAULT 0,        -- encoder runs started
    output        TEXT,
    failure       TEXT    NOT NULL DEFAULT '',
    done_at       INTEGER,
    PRIMARY KEY (job_guid, idx)
);
CREATE INDEX chunks_queued ON chunks (job_guid, kind, idx) WHERE state = 'queued';
CREATE INDEX chunks_by_lease ON chunks (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE INDEX chunks_by_node ON chunks (node) WHERE state = 'running';

-- A secret per encoder node (only its SHA-256 is kept).
CREATE TABLE node_tokens (
    node       TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
