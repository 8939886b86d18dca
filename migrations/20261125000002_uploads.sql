-- The portal's record of what browsers uploaded and the encoder job each
-- became: the set of jobs the portal's poller follows, surviving restarts.
CREATE TABLE uploads (
    guid          TEXT    PRIMARY KEY,    -- the encoder's job GUID
    original_name TEXT    NOT NULL,       -- as the browser sent it (display only)
    stored_name   TEXT    NOT NULL,       -- sanitised name under uploaded/
    size          INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    description   TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,       -- unix milliseconds
    updated_at    INTEGER NOT NULL
);

CREATE INDEX uploads_by_status ON uploads (status);
