-- Alerting (SQLite): silences, notification delivery records and per-user
-- overrides of alert rules. Same conventions as the store schema: real columns
-- for what is queried, `data` for the entity's full JSON, timestamps as
-- fixed-width UTC text (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`) that compares as time.

-- Silences are never deleted (expiring one ends its window), so who muted
-- what stays on record.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT,
    created_by TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL
) STRICT;
CREATE INDEX silences_ends ON silences (ends_at);
CREATE INDEX silences_user ON silences (user_id, id);

-- One row per notification: the senders' queue (pending rows due by
-- next_attempt_at and not claimed) and the log of what each group was told.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY NOT NULL,
    receiver        TEXT NOT NULL,
    group_id        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    version         INTEGER NOT NULL,
    data            TEXT NOT NULL
) STRICT;
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_group ON notifications (receiver, group_id, id);

CREATE TABLE alert_rule_overrides (
    rule       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (rule, user_id)
) STRICT;
CREATE INDEX alert_rule_overrides_user ON alert_rule_overrides (user_id, rule);

-- Listing alerts by state, newest first.
CREATE INDEX alerts_state ON alerts (state, id);
