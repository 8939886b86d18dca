-- Private queues: each upload belongs to the browser session (or account)
-- that sent it. Uploads from before this migration belong to nobody.
ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT '';
-- The preset the user chose, by name, for the queue and the library.
ALTER TABLE uploads ADD COLUMN preset_name TEXT NOT NULL DEFAULT '';
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
    name          TEXT    PRIMARY KEY,    -- as typed, compared case-insensitively
    password_hash TEXT    NOT NULL,       -- argon2id PHC string
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_by_folded_name ON accounts (lower(name));

-- Resumable (tus 1.0) uploads in progress. The bytes received so far are
-- the file tus/<id>; its size is the offset, so a crash never disagrees.
CREATE TABLE tus_uploads (
    id         TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    length     INTEGER NOT NULL,
    file_name  TEXT    NOT NULL,
    preset     TEXT,                       -- GUID, or NULL for the default
    created_at INTEGER NOT NULL,           -- unix milliseconds
    guid       TEXT                        -- the job, once complete and accepted
);
