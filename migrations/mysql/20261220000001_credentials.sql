-- Password sign-in (MySQL 8 / MariaDB 10.5+): one argon2id password hash per
-- user (a PHC string) and the sign-in sessions refresh tokens name. Only
-- hashes are stored: the SHA-256 of each session's current refresh secret,
-- never the secret. Plain columns, no `data` JSON: these rows are not
-- event-sourced.
CREATE TABLE user_credentials (
    user_id       VARCHAR(64) NOT NULL PRIMARY KEY,
    password_hash VARCHAR(512) NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    CONSTRAINT user_credentials_user FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE auth_sessions (
    id           CHAR(36) NOT NULL PRIMARY KEY,
    user_id      VARCHAR(64) NOT NULL,
    refresh_hash CHAR(64) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6) NOT NULL,
    revoked_at   DATETIME(6),
    last_used_at DATETIME(6) NOT NULL,
    -- A user's sessions (revoke all, list live ones); expiry for the purge.
    INDEX auth_sessions_user (user_id, id),
    INDEX auth_sessions_expires (expires_at),
    CONSTRAINT auth_sessions_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
