-- ordermon store schema (SQLite).
--
-- Every aggregate keeps what is queried, filtered or read by operators in real
-- columns plus `data`, the full JSON of the entity. Decimals are TEXT (exact, as
-- written); timestamps are TEXT in one fixed-width UTC format
-- (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`), so they compare and sort as text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    role          TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    trading_state TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    data          TEXT NOT NULL
) STRICT;

CREATE TABLE strategies (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    strategy_type TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    data          TEXT NOT NULL
) STRICT;
CREATE INDEX strategies_user ON strategies (user_id, id);

CREATE TABLE instruments (
    id             TEXT PRIMARY KEY NOT NULL,
    quote_currency TEXT NOT NULL,
    tick_size      TEXT NOT NULL,
    lot_size       TEXT NOT NULL,
    min_quantity   TEXT NOT NULL,
    max_quantity   TEXT,
    min_notional   TEXT,
    multiplier     TEXT NOT NULL,
    version        INTEGER NOT NULL,
    data           TEXT NOT NULL
) STRICT;

CREATE TABLE orders (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    strategy_id     TEXT,
    instrument_id   TEXT NOT NULL,
    side            TEXT NOT NULL,
    order_type      TEXT NOT NULL,
    time_in_force   TEXT NOT NULL,
    status          TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    price           TEXT,
    trigger_price   TEXT,
    filled_qty      TEXT NOT NULL,
    leaves_qty      TEXT NOT NULL,
    avg_px          TEXT,
    reason          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    data            TEXT NOT NULL,
    CONSTRAINT orders_client_order_id UNIQUE (user_id, client_order_id)
) STRICT;
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, user_id);
CREATE INDEX orders_instrument ON orders (instrument_id, id);

CREATE TABLE fills (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id            TEXT NOT NULL,
    trade_id            TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    instrument_id       TEXT NOT NULL,
    side                TEXT NOT NULL,
    quantity            TEXT NOT NULL,
    price               TEXT NOT NULL,
    commission          TEXT NOT NULL,
    commission_currency TEXT NOT NULL,
    liquidity_side      TEXT NOT NULL,
    ts_event            TEXT NOT NULL,
    data                TEXT NOT NULL,
    CONSTRAINT fills_trade UNIQUE (order_id, trade_id)
) STRICT;
CREATE INDEX fills_user ON fills (user_id, seq);

CREATE TABLE positions (
    user_id        TEXT NOT NULL,
    instrument_id  TEXT NOT NULL,
    quote_currency TEXT NOT NULL,
    quantity       TEXT NOT NULL,
    cost           TEXT NOT NULL,
    realized_pnl   TEXT NOT NULL,
    commissions    TEXT NOT NULL,
    last_mark      TEXT,
    opened_at      TEXT,
    closed_at      TEXT,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL,
    data           TEXT NOT NULL,
    PRIMARY KEY (user_id, instrument_id)
) STRICT;

CREATE TABLE accounts (
    user_id         TEXT PRIMARY KEY NOT NULL,
    account_type    TEXT NOT NULL,
    high_water_mark TEXT NOT NULL,
    version         INTEGER NOT NULL,
    data            TEXT NOT NULL
) STRICT;

-- Cash per currency; `free` is total - reserved.
CREATE TABLE account_balances (
    user_id  TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    currency TEXT NOT NULL,
    total    TEXT NOT NULL,
    reserved TEXT NOT NULL,
    PRIMARY KEY (user_id, currency)
) STRICT;

-- The event log: the audit trail. `position` is global and handed out by the
-- single writer from log_clock, so positions become visible in commit order.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY NOT NULL,
    event_id       TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    event_type     TEXT NOT NULL,
    user_id        TEXT,
    occurred_at    TEXT NOT NULL,
    correlation_id TEXT,
    data           TEXT NOT NULL,
    CONSTRAINT events_event_id UNIQUE (event_id),
    CONSTRAINT events_aggregate_sequence UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;
CREATE INDEX events_user ON events (user_id, position);

-- The transactional outbox, drained by the relay in id (= commit) order.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY NOT NULL,
    event_id   TEXT NOT NULL,
    topic      TEXT NOT NULL,
    msg_key    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;

-- The last event position and outbox id handed out.
CREATE TABLE log_clock (
    id        INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    event_pos INTEGER NOT NULL,
    outbox_id INTEGER NOT NULL
) STRICT;
INSERT INTO log_clock (id, event_pos, outbox_id) VALUES (1, 0, 0);

CREATE TABLE alerts (
    id           TEXT PRIMARY KEY NOT NULL,
    fingerprint  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    user_id      TEXT,
    acknowledged INTEGER NOT NULL,
    silenced     INTEGER NOT NULL,
    starts_at    TEXT NOT NULL,
    ends_at      TEXT,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    data         TEXT NOT NULL
) STRICT;
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id);
CREATE INDEX alerts_user ON alerts (user_id, id);

CREATE TABLE bars (
    instrument_id TEXT NOT NULL,
    bar_interval  TEXT NOT NULL,
    open_time     TEXT NOT NULL,
    open_px       TEXT NOT NULL,
    high_px       TEXT NOT NULL,
    low_px        TEXT NOT NULL,
    close_px      TEXT NOT NULL,
    volume        TEXT NOT NULL,
    PRIMARY KEY (instrument_id, bar_interval, open_time)
) STRICT;
