-- Password sign-in (SQLite): one argon2id password hash per user (a PHC
-- string) and the sign-in sessions refresh tokens name. Only hashes are
-- stored: the SHA-256 of each session's current refresh secret, never the
-- secret. Plain columns, no `data` JSON: these rows are not event-sourced.
-- Timestamps are fixed-width UTC text, as in the store schema.
CREATE TABLE user_credentials (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE auth_sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT NOT NULL
) STRICT;
-- A user's sessions (revoke all, list live ones); expiry for the purge.
CREATE INDEX auth_sessions_user ON auth_sessions (user_id, id);
CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at);
