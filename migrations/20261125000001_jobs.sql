-- The encoder's durable job queue. A job is accepted (and its GUID returned
-- to the client) only after its row is committed here.
CREATE TABLE jobs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT, -- FIFO order within a priority
    guid           TEXT    NOT NULL UNIQUE,           -- {XXXXXXXX-...}, canonical form
    name           TEXT    NOT NULL,
    user           TEXT    NOT NULL DEFAULT '',
    status         TEXT    NOT NULL,
    progress       INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    description    TEXT    NOT NULL DEFAULT '',
    priority       INTEGER NOT NULL DEFAULT 100,
    source_path    TEXT    NOT NULL,                  -- local, checked against the allowed roots
    preset_guid    TEXT    NOT NULL,
    dest_dir       TEXT    NOT NULL,                  -- local, checked against the allowed roots
    base_name      TEXT    NOT NULL,                  -- output file name without extension
    output_path    TEXT,                              -- set when COMPLETED
    check_in_time  INTEGER NOT NULL,                  -- unix milliseconds
    start_time     INTEGER,
    completed_time INTEGER
);

CREATE INDEX jobs_by_queue_order ON jobs (status, priority DESC, seq);
