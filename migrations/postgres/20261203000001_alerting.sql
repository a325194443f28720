-- Alerting (PostgreSQL): silences, notification delivery records and per-user
-- overrides of alert rules. Same conventions as the store schema: real columns
-- for what is queried, `data` for the entity's full JSON, text keys in the "C"
-- collation so they sort byte-wise, as the application does.

-- Silences are never deleted (expiring one ends its window), so who muted
-- what stays on record.
CREATE TABLE silences (
    id         UUID PRIMARY KEY,
    user_id    TEXT COLLATE "C",
    created_by TEXT NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);
CREATE INDEX silences_user ON silences (user_id, id);

-- One row per notification: the senders' queue (pending rows due by
-- next_attempt_at and not claimed) and the log of what each group was told.
CREATE TABLE notifications (
    id              UUID PRIMARY KEY,
    receiver        TEXT COLLATE "C" NOT NULL,
    group_id        TEXT COLLATE "C" NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    version         BIGINT NOT NULL,
    data            TEXT NOT NULL
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_group ON notifications (receiver, group_id, id);

CREATE TABLE alert_rule_overrides (
    rule       TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (rule, user_id)
);
CREATE INDEX alert_rule_overrides_user ON alert_rule_overrides (user_id, rule);

-- Listing alerts by state, newest first.
CREATE INDEX alerts_state ON alerts (state, id);
