-- Signed-in sessions, one row per browser that signed in to an account.
-- The cookie names the row; ending a session deletes it, so a copied cookie
-- dies with it. Anonymous browsers have no row (their cookie is the identity).
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,     -- 32 hex digits, random
    account    TEXT    NOT NULL,        -- accounts.name as registered
    created_at INTEGER NOT NULL,        -- unix milliseconds
    seen_at    INTEGER NOT NULL         -- last renewal; idle past the lifetime = ended
);
CREATE INDEX sessions_by_account ON sessions (account);

-- Per-user caps count a user's resumable uploads.
CREATE INDEX tus_uploads_by_owner ON tus_uploads (owner);
