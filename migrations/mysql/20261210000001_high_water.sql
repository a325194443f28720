-- Portfolio high-water marks (MySQL 8 / MariaDB 10.5+): the highest equity
-- each user's account was seen at, in its first currency. Observed at market
-- marks, which are not events, so this is a projection of its own that only
-- ever rises (see domain/src/high_water.rs); drawdown survives restarts and is
-- the same on every instance.
CREATE TABLE high_water_marks (
    user_id    VARCHAR(64) NOT NULL PRIMARY KEY,
    currency   VARCHAR(16) NOT NULL,
    value      DECIMAL(38, 18) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    version    BIGINT NOT NULL,
    data       MEDIUMTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
