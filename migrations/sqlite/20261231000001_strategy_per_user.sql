-- Strategy ids are unique per user, not globally: two users may each have a
-- strategy `mr-1`, and one cannot learn that the other's exists. SQLite cannot
-- change a primary key in place: the table is rebuilt.
CREATE TABLE strategies_by_user (
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    strategy_type TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    data          TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;
INSERT INTO strategies_by_user
    SELECT id, user_id, strategy_type, name, status, version, created_at, updated_at, data
    FROM strategies;
DROP TABLE strategies;
ALTER TABLE strategies_by_user RENAME TO strategies;
