-- Portfolio high-water marks (PostgreSQL): the highest equity each user's
-- account was seen at, in its first currency. Observed at market marks, which
-- are not events, so this is a projection of its own that only ever rises
-- (see domain/src/high_water.rs); drawdown survives restarts and is the same
-- on every instance.
CREATE TABLE high_water_marks (
    user_id    TEXT COLLATE "C" PRIMARY KEY,
    currency   TEXT NOT NULL,
    value      NUMERIC(38, 18) NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT NOT NULL
);
