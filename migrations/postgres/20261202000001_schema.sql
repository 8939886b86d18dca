-- The whole schema on PostgreSQL, equal to what migrations/*.sql build on
-- SQLite, so one SQL text serves both engines. Every integer is BIGINT (the
-- store reads them as i64); times are unix milliseconds; JSON columns are
-- TEXT, parsed by the store; `no_audio` stays 0/1 as on SQLite.

-- The encoder's durable job queue. A job is accepted (and its GUID returned
-- to the client) only after its row is committed here.
CREATE TABLE jobs (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- FIFO order
    guid           TEXT    NOT NULL UNIQUE,       -- {XXXXXXXX-...}, canonical form
    name           TEXT    NOT NULL,
    "user"         TEXT    NOT NULL DEFAULT '',   -- a bare `user` is CURRENT_USER here
    status         TEXT    NOT NULL,
    progress       BIGINT  NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    description    TEXT    NOT NULL DEFAULT '',
    priority       BIGINT  NOT NULL DEFAULT 100,
    source_path    TEXT    NOT NULL,
    check_in_time  BIGINT  NOT NULL,
    start_time     BIGINT,
    completed_time BIGINT,
    queued_at      BIGINT  NOT NULL DEFAULT 0,    -- queue order within a priority
    failure        TEXT    NOT NULL DEFAULT '',
    request_xml    TEXT    NOT NULL DEFAULT '',
    audio_path     TEXT,
    no_audio       BIGINT  NOT NULL DEFAULT 0,
    trim_in        BIGINT,
    trim_out       BIGINT,
    notes          TEXT    NOT NULL DEFAULT '[]',
    source_copies  TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX jobs_by_queue_order ON jobs (status, priority DESC, queued_at, seq);
CREATE INDEX jobs_by_owner_status ON jobs ("user", status);
CREATE INDEX jobs_by_owner_start ON jobs ("user", start_time);

-- A job's outputs, one per destination, in the request's order.
CREATE TABLE destinations (
    job_guid    TEXT   NOT NULL REFERENCES jobs (guid) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    preset_guid TEXT   NOT NULL,
    dest_dir    TEXT   NOT NULL,
    base_name   TEXT   NOT NULL,
    output_path TEXT,
    name        TEXT,
    copies      TEXT   NOT NULL DEFAULT '[]',
    copied      TEXT   NOT NULL DEFAULT '[]',
    PRIMARY KEY (job_guid, idx)
);

-- One row that /healthz rewrites to prove the database takes writes.
CREATE TABLE health (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT NOT NULL
);

-- The portal's record of what browsers uploaded and the job each became.
CREATE TABLE uploads (
    guid          TEXT   PRIMARY KEY,
    original_name TEXT   NOT NULL,
    stored_name   TEXT   NOT NULL,
    size          BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    progress      BIGINT NOT NULL DEFAULT 0,
    description   TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    owner         TEXT   NOT NULL DEFAULT '',
    preset_name   TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX uploads_by_status ON uploads (status);
CREATE INDEX uploads_by_owner ON uploads (owner, created_at);

-- The files a finished upload's job wrote (names under streams/).
CREATE TABLE upload_outputs (
    guid        TEXT NOT NULL REFERENCES uploads (guid) ON DELETE CASCADE,
    file_name   TEXT NOT NULL,
    preset_name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (guid, file_name)
);
CREATE INDEX upload_outputs_by_name ON upload_outputs (file_name);

-- Optional accounts (when the portal runs with --accounts).
CREATE TABLE accounts (
    name          TEXT   PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_by_folded_name ON accounts (lower(name));

-- Resumable (tus 1.0) uploads in progress.
CREATE TABLE tus_uploads (
    id         TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    length     BIGINT NOT NULL,
    file_name  TEXT   NOT NULL,
    preset     TEXT,
    created_at BIGINT NOT NULL,
    guid       TEXT
);
CREATE INDEX tus_uploads_by_owner ON tus_uploads (owner);

-- Signed-in sessions, one row per browser that signed in to an account.
CREATE TABLE sessions (
    id         TEXT   PRIMARY KEY,
    account    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account);
