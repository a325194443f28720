-- Alerting (MySQL 8 / MariaDB 10.5+): silences, notification delivery records
-- and per-user overrides of alert rules. Same conventions as the store schema:
-- real columns for what is queried, `data` for the entity's full JSON, the
-- binary collation so keys compare and sort byte-wise, as the application does.

-- Silences are never deleted (expiring one ends its window), so who muted
-- what stays on record.
CREATE TABLE silences (
    id         CHAR(36) NOT NULL PRIMARY KEY,
    user_id    VARCHAR(64),
    created_by TEXT NOT NULL,
    starts_at  DATETIME(6) NOT NULL,
    ends_at    DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    version    BIGINT NOT NULL,
    data       MEDIUMTEXT NOT NULL,
    INDEX silences_ends (ends_at),
    INDEX silences_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per notification: the senders' queue (pending rows due by
-- next_attempt_at and not claimed) and the log of what each group was told.
-- A notification carries its group's alerts, hence MEDIUMTEXT.
CREATE TABLE notifications (
    id              CHAR(36) NOT NULL PRIMARY KEY,
    receiver        VARCHAR(255) NOT NULL,
    group_id        VARCHAR(64) NOT NULL,
    status          VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at DATETIME(6) NOT NULL,
    claimed_until   DATETIME(6),
    created_at      DATETIME(6) NOT NULL,
    delivered_at    DATETIME(6),
    version         BIGINT NOT NULL,
    data            MEDIUMTEXT NOT NULL,
    INDEX notifications_due (status, next_attempt_at),
    INDEX notifications_group (receiver, group_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE alert_rule_overrides (
    rule       VARCHAR(128) NOT NULL,
    user_id    VARCHAR(64) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    version    BIGINT NOT NULL,
    data       MEDIUMTEXT NOT NULL,
    PRIMARY KEY (rule, user_id),
    INDEX alert_rule_overrides_user (user_id, rule)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Listing alerts by state, newest first.
CREATE INDEX alerts_state ON alerts (state, id);
