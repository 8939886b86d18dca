-- Chunked encoding: a long job split into chunks, each leased by encoder
-- nodes as jobs are (node, lease_expires on the database clock, attempts as
-- the fencing token). Carbon sees only the parent job. The rows go with
-- their job (ON DELETE CASCADE).

-- How a job was split: the source as it was then (size, mtime), the recipe
-- and the encoder's own spec (JSON), and the folder the chunks are written to.
CREATE TABLE chunk_plans (
    job_guid        TEXT    PRIMARY KEY REFERENCES jobs (guid) ON DELETE CASCADE,
    source_size     BIGINT  NOT NULL,
    source_mtime_ns BIGINT  NOT NULL,
    recipe          TEXT    NOT NULL,
    spec            TEXT    NOT NULL,
    work_dir        TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);

-- The chunks of a planned job, idx 0.. in plan order.
CREATE TABLE chunks (
    job_guid      TEXT    NOT NULL REFERENCES jobs (guid) ON DELETE CASCADE,
    idx           BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,                  -- audio, video
    start_us      BIGINT  NOT NULL,
    end_us        BIGINT  NOT NULL,
    frames        BIGINT,
    first_segment BIGINT  NOT NULL DEFAULT 0,
    weight        BIGINT  NOT NULL,                  -- share of the job's work
    state         TEXT    NOT NULL DEFAULT 'queued', -- queued, running, done, failed
    progress      BIGINT  NOT NULL DEFAULT 0,
    node          TEXT,                              -- who claimed it last
    lease_expires BIGINT,                           -- unix ms, database clock; NULL: not held
    attempts      BIGINT  NOT NULL DEFAULT 0,        -- claims so far: the fencing token
    lease_losses  BIGINT  NOT NULL DEFAULT 0,        -- leases that ran out
    runs          BIGINT  NOT NULL DEFAULT 0,        -- encoder runs started
    output        TEXT,
    failure       TEXT    NOT NULL DEFAULT '',
    done_at       BIGINT,
    PRIMARY KEY (job_guid, idx)
);
CREATE INDEX chunks_queued ON chunks (job_guid, kind, idx) WHERE state = 'queued';
CREATE INDEX chunks_by_lease ON chunks (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE INDEX chunks_by_node ON chunks (node) WHERE state = 'running';

-- A secret per encoder node (only its SHA-256 is kept).
CREATE TABLE node_tokens (
    node       TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Wake-ups (see 20261202000003_notify.sql):
--   vs_queue   a chunk became queued: idle nodes claim
--   vs_chunks  a chunk is done or failed: its job's GUID, for the node
--              that assembles the job
CREATE TRIGGER chunks_queued AFTER INSERT OR UPDATE OF state ON chunks
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION vs_notify_queue();

CREATE FUNCTION vs_notify_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vs_chunks', NEW.job_guid);
    RETURN NULL;
END $$;

CREATE TRIGGER chunks_ended AFTER UPDATE OF state ON chunks
    FOR EACH ROW WHEN (NEW.state IN ('done', 'failed')
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION vs_notify_chunk();
