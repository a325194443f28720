-- ordermon store schema (MySQL 8 / MariaDB 10.5+).
--
-- Every aggregate keeps what is queried, filtered or read by operators in real
-- columns (exact DECIMAL(38,18) for money and quantities) plus `data`, the full
-- JSON of the entity, so it reads back exactly as it was written.
-- Tables use the binary collation so ids compare and sort byte-wise, as the
-- application does (a case-insensitive collation would merge `Alice` and `alice`).

CREATE TABLE users (
    id            VARCHAR(64) NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL,
    status        VARCHAR(16) NOT NULL CHECK (status IN ('active', 'disabled')),
    role          VARCHAR(16) NOT NULL,
    account_type  VARCHAR(16) NOT NULL,
    trading_state VARCHAR(16) NOT NULL,
    version       BIGINT NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    data          MEDIUMTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE strategies (
    id            VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id       VARCHAR(64) NOT NULL,
    strategy_type VARCHAR(64) NOT NULL,
    name          TEXT NOT NULL,
    status        VARCHAR(16) NOT NULL CHECK (status IN ('enabled', 'disabled')),
    version       BIGINT NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    data          MEDIUMTEXT NOT NULL,
    INDEX strategies_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE instruments (
    id             VARCHAR(80) NOT NULL PRIMARY KEY,
    quote_currency VARCHAR(16) NOT NULL,
    tick_size      DECIMAL(38, 18) NOT NULL,
    lot_size       DECIMAL(38, 18) NOT NULL,
    min_quantity   DECIMAL(38, 18) NOT NULL,
    max_quantity   DECIMAL(38, 18),
    min_notional   DECIMAL(38, 18),
    multiplier     DECIMAL(38, 18) NOT NULL,
    version        BIGINT NOT NULL,
    data           MEDIUMTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE orders (
    id              CHAR(36) NOT NULL PRIMARY KEY,
    user_id         VARCHAR(64) NOT NULL,
    client_order_id VARCHAR(64) NOT NULL,
    strategy_id     VARCHAR(64),
    instrument_id   VARCHAR(80) NOT NULL,
    side            VARCHAR(8) NOT NULL,
    order_type      VARCHAR(16) NOT NULL,
    time_in_force   VARCHAR(8) NOT NULL,
    status          VARCHAR(32) NOT NULL,
    quantity        DECIMAL(38, 18) NOT NULL,
    price           DECIMAL(38, 18),
    trigger_price   DECIMAL(38, 18),
    filled_qty      DECIMAL(38, 18) NOT NULL,
    leaves_qty      DECIMAL(38, 18) NOT NULL,
    avg_px          DECIMAL(38, 18),
    reason          TEXT,
    created_at      DATETIME(6) NOT NULL,
    updated_at      DATETIME(6) NOT NULL,
    version         BIGINT NOT NULL,
    data            MEDIUMTEXT NOT NULL,
    UNIQUE KEY orders_client_order_id (user_id, client_order_id),
    INDEX orders_user (user_id, id),
    INDEX orders_status (status, user_id),
    INDEX orders_instrument (instrument_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE fills (
    seq                 BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id            CHAR(36) NOT NULL,
    trade_id            VARCHAR(64) NOT NULL,
    user_id             VARCHAR(64) NOT NULL,
    instrument_id       VARCHAR(80) NOT NULL,
    side                VARCHAR(8) NOT NULL,
    quantity            DECIMAL(38, 18) NOT NULL,
    price               DECIMAL(38, 18) NOT NULL,
    commission          DECIMAL(38, 18) NOT NULL,
    commission_currency VARCHAR(16) NOT NULL,
    liquidity_side      VARCHAR(8) NOT NULL,
    ts_event            DATETIME(6) NOT NULL,
    data                MEDIUMTEXT NOT NULL,
    UNIQUE KEY fills_trade (order_id, trade_id),
    INDEX fills_user (user_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE positions (
    user_id        VARCHAR(64) NOT NULL,
    instrument_id  VARCHAR(80) NOT NULL,
    quote_currency VARCHAR(16) NOT NULL,
    quantity       DECIMAL(38, 18) NOT NULL,
    cost           DECIMAL(38, 18) NOT NULL,
    realized_pnl   DECIMAL(38, 18) NOT NULL,
    commissions    DECIMAL(38, 18) NOT NULL,
    last_mark      DECIMAL(38, 18),
    opened_at      DATETIME(6),
    closed_at      DATETIME(6),
    updated_at     DATETIME(6) NOT NULL,
    version        BIGINT NOT NULL,
    data           MEDIUMTEXT NOT NULL,
    PRIMARY KEY (user_id, instrument_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE accounts (
    user_id         VARCHAR(64) NOT NULL PRIMARY KEY,
    account_type    VARCHAR(16) NOT NULL,
    high_water_mark DECIMAL(38, 18) NOT NULL,
    version         BIGINT NOT NULL,
    data            MEDIUMTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Cash per currency; `free` is total - reserved.
CREATE TABLE account_balances (
    user_id  VARCHAR(64) NOT NULL,
    currency VARCHAR(16) NOT NULL,
    total    DECIMAL(38, 18) NOT NULL,
    reserved DECIMAL(38, 18) NOT NULL,
    PRIMARY KEY (user_id, currency),
    CONSTRAINT account_balances_account FOREIGN KEY (user_id)
        REFERENCES accounts (user_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The event log: the audit trail. `position` is global and handed out under the
-- log_clock row lock, so positions become visible in commit order.
CREATE TABLE events (
    position       BIGINT NOT NULL PRIMARY KEY,
    event_id       CHAR(36) NOT NULL,
    aggregate_type VARCHAR(16) NOT NULL,
    aggregate_id   VARCHAR(200) NOT NULL,
    sequence       BIGINT NOT NULL,
    event_type     VARCHAR(100) NOT NULL,
    user_id        VARCHAR(64),
    occurred_at    DATETIME(6) NOT NULL,
    correlation_id CHAR(36),
    data           MEDIUMTEXT NOT NULL,
    UNIQUE KEY events_event_id (event_id),
    UNIQUE KEY events_aggregate_sequence (aggregate_type, aggregate_id, sequence),
    INDEX events_user (user_id, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The transactional outbox, drained by the relay in id (= commit) order.
CREATE TABLE outbox (
    id         BIGINT NOT NULL PRIMARY KEY,
    event_id   CHAR(36) NOT NULL,
    topic      VARCHAR(255) NOT NULL,
    msg_key    VARCHAR(100) NOT NULL,
    payload    MEDIUMTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    sent_at    DATETIME(6),
    INDEX outbox_pending (sent_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The last event position and outbox id handed out. Writers lock this row first,
-- which orders every event-writing transaction.
CREATE TABLE log_clock (
    id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    event_pos BIGINT NOT NULL,
    outbox_id BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO log_clock (id, event_pos, outbox_id) VALUES (1, 0, 0);

CREATE TABLE alerts (
    id           CHAR(36) NOT NULL PRIMARY KEY,
    fingerprint  VARCHAR(32) NOT NULL,
    rule         VARCHAR(128) NOT NULL,
    severity     VARCHAR(16) NOT NULL,
    state        VARCHAR(16) NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    user_id      VARCHAR(64),
    acknowledged BOOLEAN NOT NULL,
    silenced     BOOLEAN NOT NULL,
    starts_at    DATETIME(6) NOT NULL,
    ends_at      DATETIME(6),
    updated_at   DATETIME(6) NOT NULL,
    version      BIGINT NOT NULL,
    data         MEDIUMTEXT NOT NULL,
    INDEX alerts_fingerprint (fingerprint, id),
    INDEX alerts_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE bars (
    instrument_id VARCHAR(80) NOT NULL,
    bar_interval  VARCHAR(8) NOT NULL,
    open_time     DATETIME(6) NOT NULL,
    open_px       DECIMAL(38, 18) NOT NULL,
    high_px       DECIMAL(38, 18) NOT NULL,
    low_px        DECIMAL(38, 18) NOT NULL,
    close_px      DECIMAL(38, 18) NOT NULL,
    volume        DECIMAL(38, 18) NOT NULL,
    PRIMARY KEY (instrument_id, bar_interval, open_time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
