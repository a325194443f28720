-- Password sign-in (PostgreSQL): one argon2id password hash per user (a PHC
-- string) and the sign-in sessions refresh tokens name. Only hashes are
-- stored: the SHA-256 of each session's current refresh secret, never the
-- secret. Plain columns, no `data` JSON: these rows are not event-sourced.
CREATE TABLE user_credentials (
    user_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE auth_sessions (
    id           UUID PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash CHAR(64) NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ NOT NULL
);
-- A user's sessions (revoke all, list live ones); expiry for the purge.
CREATE INDEX auth_sessions_user ON auth_sessions (user_id, id);
CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at);
