-- Portfolio high-water marks (SQLite): the highest equity each user's account
-- was seen at, in its first currency. Observed at market marks, which are not
-- events, so this is a projection of its own that only ever rises (see
-- domain/src/high_water.rs); drawdown survives restarts.
CREATE TABLE high_water_marks (
    user_id    TEXT PRIMARY KEY NOT NULL,
    currency   TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL
) STRICT;
