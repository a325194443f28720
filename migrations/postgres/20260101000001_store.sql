-- ordermon store schema (PostgreSQL).
--
-- Every aggregate keeps what is queried, filtered or read by operators in real
-- columns (exact NUMERIC(38,18) for money and quantities) plus `data`, the full
-- JSON of the entity, so it reads back exactly as it was written.
-- Text ids use the "C" collation so they sort byte-wise, as the application does.

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    role          TEXT NOT NULL,
    account_type  TEXT NOT NULL,
    trading_state TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    data          TEXT NOT NULL
);

CREATE TABLE strategies (
    id            TEXT COLLATE "C" PRIMARY KEY,
    user_id       TEXT COLLATE "C" NOT NULL,
    strategy_type TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    version       BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX strategies_user ON strategies (user_id, id);

CREATE TABLE instruments (
    id             TEXT COLLATE "C" PRIMARY KEY,
    quote_currency TEXT NOT NULL,
    tick_size      NUMERIC(38, 18) NOT NULL,
    lot_size       NUMERIC(38, 18) NOT NULL,
    min_quantity   NUMERIC(38, 18) NOT NULL,
    max_quantity   NUMERIC(38, 18),
    min_notional   NUMERIC(38, 18),
    multiplier     NUMERIC(38, 18) NOT NULL,
    version        BIGINT NOT NULL,
    data           TEXT NOT NULL
);

CREATE TABLE orders (
    id              UUID PRIMARY KEY,
    user_id         TEXT COLLATE "C" NOT NULL,
    client_order_id TEXT COLLATE "C" NOT NULL,
    strategy_id     TEXT COLLATE "C",
    instrument_id   TEXT COLLATE "C" NOT NULL,
    side            TEXT NOT NULL,
    order_type      TEXT NOT NULL,
    time_in_force   TEXT NOT NULL,
    status          TEXT NOT NULL,
    quantity        NUMERIC(38, 18) NOT NULL,
    price           NUMERIC(38, 18),
    trigger_price   NUMERIC(38, 18),
    filled_qty      NUMERIC(38, 18) NOT NULL,
    leaves_qty      NUMERIC(38, 18) NOT NULL,
    avg_px          NUMERIC(38, 18),
    reason          TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT NOT NULL,
    data            TEXT NOT NULL,
    CONSTRAINT orders_client_order_id UNIQUE (user_id, client_order_id)
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, user_id);
CREATE INDEX orders_instrument ON orders (instrument_id, id);

CREATE TABLE fills (
    seq                 BIGSERIAL PRIMARY KEY,
    order_id            UUID NOT NULL,
    trade_id            TEXT COLLATE "C" NOT NULL,
    user_id             TEXT COLLATE "C" NOT NULL,
    instrument_id       TEXT COLLATE "C" NOT NULL,
    side                TEXT NOT NULL,
    quantity            NUMERIC(38, 18) NOT NULL,
    price               NUMERIC(38, 18) NOT NULL,
    commission          NUMERIC(38, 18) NOT NULL,
    commission_currency TEXT NOT NULL,
    liquidity_side      TEXT NOT NULL,
    ts_event            TIMESTAMPTZ NOT NULL,
    data                TEXT NOT NULL,
    CONSTRAINT fills_trade UNIQUE (order_id, trade_id)
);
CREATE INDEX fills_user ON fills (user_id, seq);

CREATE TABLE positions (
    user_id        TEXT COLLATE "C" NOT NULL,
    instrument_id  TEXT COLLATE "C" NOT NULL,
    quote_currency TEXT NOT NULL,
    quantity       NUMERIC(38, 18) NOT NULL,
    cost           NUMERIC(38, 18) NOT NULL,
    realized_pnl   NUMERIC(38, 18) NOT NULL,
    commissions    NUMERIC(38, 18) NOT NULL,
    last_mark      NUMERIC(38, 18),
    opened_at      TIMESTAMPTZ,
    closed_at      TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL,
    version        BIGINT NOT NULL,
    data           TEXT NOT NULL,
    PRIMARY KEY (user_id, instrument_id)
);

CREATE TABLE accounts (
    user_id         TEXT COLLATE "C" PRIMARY KEY,
    account_type    TEXT NOT NULL,
    high_water_mark NUMERIC(38, 18) NOT NULL,
    version         BIGINT NOT NULL,
    data            TEXT NOT NULL
);

-- Cash per currency; `free` is total - reserved.
CREATE TABLE account_balances (
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    currency TEXT COLLATE "C" NOT NULL,
    total    NUMERIC(38, 18) NOT NULL,
    reserved NUMERIC(38, 18) NOT NULL,
    PRIMARY KEY (user_id, currency)
);

-- The event log: the audit trail. `position` is global and handed out under the
-- log_clock row lock, so positions become visible in commit order.
CREATE TABLE events (
    position       BIGINT PRIMARY KEY,
    event_id       UUID NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT COLLATE "C" NOT NULL,
    sequence       BIGINT NOT NULL,
    event_type     TEXT NOT NULL,
    user_id        TEXT COLLATE "C",
    occurred_at    TIMESTAMPTZ NOT NULL,
    correlation_id UUID,
    data           TEXT NOT NULL,
    CONSTRAINT events_event_id UNIQUE (event_id),
    CONSTRAINT events_aggregate_sequence UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX events_user ON events (user_id, position);

-- The transactional outbox, drained by the relay in id (= commit) order.
CREATE TABLE outbox (
    id         BIGINT PRIMARY KEY,
    event_id   UUID NOT NULL,
    topic      TEXT NOT NULL,
    msg_key    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;

-- The last event position and outbox id handed out. Writers lock this row first,
-- which orders every event-writing transaction.
CREATE TABLE log_clock (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_pos BIGINT NOT NULL,
    outbox_id BIGINT NOT NULL
);
INSERT INTO log_clock (id, event_pos, outbox_id) VALUES (1, 0, 0);

CREATE TABLE alerts (
    id           UUID PRIMARY KEY,
    fingerprint  TEXT COLLATE "C" NOT NULL,
    rule         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    user_id      TEXT COLLATE "C",
    acknowledged BOOLEAN NOT NULL,
    silenced     BOOLEAN NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id);
CREATE INDEX alerts_user ON alerts (user_id, id);

CREATE TABLE bars (
    instrument_id TEXT COLLATE "C" NOT NULL,
    bar_interval  TEXT NOT NULL,
    open_time     TIMESTAMPTZ NOT NULL,
    open_px       NUMERIC(38, 18) NOT NULL,
    high_px       NUMERIC(38, 18) NOT NULL,
    low_px        NUMERIC(38, 18) NOT NULL,
    close_px      NUMERIC(38, 18) NOT NULL,
    volume        NUMERIC(38, 18) NOT NULL,
    PRIMARY KEY (instrument_id, bar_interval, open_time)
);
