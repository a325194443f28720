//! Reference data, market data, events, health, status and the kill switch as
//! the API shows them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, Quote};
use ordermon_domain::ports::StoredEvent;
use ordermon_domain::risk::TradingState;
use ordermon_domain::values::{Currency, Price, Quantity, decimal_string, opt_decimal_string};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An instrument (`POST /api/v1/instruments` creates or replaces one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstrumentDto {
    /// `SYMBOL.VENUE`.
    #[schema(value_type = crate::dto::formats::InstrumentId, example = "ACME.SIM")]
    pub id: InstrumentId,
    /// Quote currency.
    #[schema(value_type = crate::dto::formats::Currency, example = "USD")]
    pub quote_currency: Currency,
    /// Smallest price increment.
    #[serde(deserialize_with = "crate::dto::wire::text")]
    #[schema(value_type = crate::dto::formats::PositiveDecimal, example = "0.01")]
    pub tick_size: Price,
    /// Smallest quantity increment.
    #[serde(deserialize_with = "crate::dto::wire::text")]
    #[schema(value_type = crate::dto::formats::PositiveDecimal, example = "1")]
    pub lot_size: Quantity,
    /// Smallest order quantity (default one lot).
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::NonNegativeDecimal>, example = "1")]
    pub min_quantity: Option<Quantity>,
    /// Largest order quantity.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::NonNegativeDecimal>)]
    pub max_quantity: Option<Quantity>,
    /// Smallest order notional.
    #[serde(
        default,
        serialize_with = "opt_decimal_string::serialize",
        deserialize_with = "crate::dto::wire::opt_decimal"
    )]
    #[schema(value_type = Option<crate::dto::formats::SignedDecimal>)]
    pub min_notional: Option<Decimal>,
    /// Contract multiplier (default 1).
    #[serde(
        default,
        serialize_with = "opt_decimal_string::serialize",
        deserialize_with = "crate::dto::wire::opt_decimal"
    )]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>)]
    pub multiplier: Option<Decimal>,
    /// Version (ignored on input).
    #[serde(default, deserialize_with = "crate::dto::wire::count")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub version: u64,
}

impl InstrumentDto {
    /// The domain instrument (defaults filled in).
    #[must_use]
    pub fn into_instrument(self) -> Instrument {
        Instrument {
            id: self.id,
            quote_currency: self.quote_currency,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            min_quantity: self.min_quantity.unwrap_or(self.lot_size),
            max_quantity: self.max_quantity,
            min_notional: self.min_notional,
            multiplier: self.multiplier.unwrap_or(Decimal::ONE),
            version: 0,
        }
    }
}

impl From<Instrument> for InstrumentDto {
    fn from(i: Instrument) -> Self {
        Self {
            id: i.id,
            quote_currency: i.quote_currency,
            tick_size: i.tick_size,
            lot_size: i.lot_size,
            min_quantity: Some(i.min_quantity),
            max_quantity: i.max_quantity,
            min_notional: i.min_notional,
            multiplier: Some(i.multiplier),
            version: i.version,
        }
    }
}

/// Best bid and ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuoteView {
    /// Instrument.
    #[schema(value_type = String)]
    pub instrument_id: InstrumentId,
    /// Best bid.
    #[schema(value_type = String)]
    pub bid: Price,
    /// Best ask.
    #[schema(value_type = String)]
    pub ask: Price,
    /// Size at the bid.
    #[schema(value_type = String)]
    pub bid_size: Quantity,
    /// Size at the ask.
    #[schema(value_type = String)]
    pub ask_size: Quantity,
    /// `(bid + ask) / 2`.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub mid: Decimal,
    /// Time of the quote.
    pub ts: DateTime<Utc>,
}

impl From<Quote> for QuoteView {
    fn from(q: Quote) -> Self {
        let mid = ordermon_domain::values::round_amount(q.mid());
        Self {
            instrument_id: q.instrument_id,
            bid: q.bid,
            ask: q.ask,
            bid_size: q.bid_size,
            ask_size: q.ask_size,
            mid,
            ts: q.ts,
        }
    }
}

/// A stored domain event with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Global position in the event log (pass as `after`).
    pub position: i64,
    /// The event envelope: `event_id`, `aggregate_type`, `aggregate_id`,
    /// `sequence`, `event_type`, `user_id`, `occurred_at`, `correlation_id`, `payload`.
    #[schema(value_type = Object)]
    pub event: ordermon_domain::event::DomainEvent,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        Self {
            position: e.position,
            event: e.event,
        }
    }
}

/// A page of the event feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Events in log order.
    pub items: Vec<EventView>,
    /// The position to pass as `after` next time.
    pub next_after: i64,
}

/// One component of the readiness report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComponentHealth {
    /// `ok`, `degraded` (a non-critical component failing: the server still
    /// answers correctly) or `error`.
    pub status: String,
    /// What is wrong: in `GET /status` (admin) only, never in the
    /// unauthenticated `/health/ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `/health/live` and `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    /// `ok`, `degraded` (still ready) or `unavailable`.
    pub status: String,
    /// Per component (readiness only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentHealth>,
}

/// `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusReport {
    /// Crate version.
    pub version: String,
    /// When the server started.
    pub started_at: DateTime<Utc>,
    /// Seconds since start.
    pub uptime_secs: i64,
    /// Owner tasks running (active users).
    pub owners: usize,
    /// Commands queued in owners' mailboxes.
    pub queued_commands: usize,
    /// Users whose monitor is running.
    pub monitors: usize,
    /// Strategies running in monitors.
    pub strategies: u64,
    /// Global trading state.
    #[schema(value_type = crate::dto::enums::TradingState)]
    pub trading_state: TradingState,
    /// Instruments known.
    pub instruments: usize,
    /// Each component `/health/ready` checks, with the reason of any failing
    /// (readiness itself tells only the states).
    pub health: BTreeMap<String, ComponentHealth>,
    /// Further sections, each a component's own figures: `monitoring` (active
    /// users, running monitors and strategies, events processed, restarts),
    /// `relay` (outbox lag), `consumers`, `cache`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub components: BTreeMap<String, serde_json::Value>,
}

/// `GET /api/v1/admin/dead-letters` parameters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// The consumer group (default: this instance's own group).
    #[param(value_type = Option<String>, pattern = r"^[A-Za-z0-9_.\-]{1,128}$")]
    pub group: Option<String>,
    /// Most dead letters returned, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::dto::wire::opt_query_count")]
    pub limit: Option<usize>,
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeadLetterDto {
    /// The event id (what a replay takes).
    #[schema(value_type = String, format = Uuid)]
    pub event_id: ordermon_domain::ids::EventId,
    /// The group that gave up on it.
    pub group: String,
    /// The message topic (`aggregate.event.user`).
    pub topic: String,
    /// The ordering key (the user).
    pub key: String,
    /// Deliveries made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
    /// The event as JSON (or the raw text when it is not JSON).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<ordermon_application::consume::DeadLetterView> for DeadLetterDto {
    fn from(d: ordermon_application::consume::DeadLetterView) -> Self {
        Self {
            event_id: d.event_id,
            group: d.group,
            topic: d.topic,
            key: d.key,
            attempts: d.attempts,
            error: d.error,
            dead_at: d.dead_at,
            payload: d.payload,
        }
    }
}

/// `GET /api/v1/admin/dead-letters`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// The group listed.
    pub group: String,
    /// Oldest first.
    pub items: Vec<DeadLetterDto>,
}

/// `POST /api/v1/admin/dead-letters/replay`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The consumer group (default: this instance's own group).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_.\-]{1,128}$")]
    pub group: Option<String>,
    /// Only these events (default: every dead letter of the group).
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::dto::formats::UuidV7>>, min_items = 1)]
    pub event_ids: Option<Vec<ordermon_domain::ids::EventId>>,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplayResponse {
    /// The group.
    pub group: String,
    /// Dead letters sent back to it.
    pub replayed: usize,
}

/// Who a kill switch applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillScope {
    /// Every user.
    Global,
    /// One user (`user_id`).
    User,
}

/// `POST /api/v1/admin/kill-switch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchRequest {
    /// Global or one user.
    pub scope: KillScope,
    /// Required for `scope: user`.
    #[serde(default)]
    #[schema(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
    /// `halted`, `reducing` or `active` (resume).
    #[schema(value_type = crate::dto::enums::TradingState)]
    pub state: TradingState,
    /// Why (audited).
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

/// The kill switch's new state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KillSwitchResponse {
    /// Global or one user.
    pub scope: KillScope,
    /// The user, for `scope: user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The state now in force.
    #[schema(value_type = crate::dto::enums::TradingState)]
    pub state: TradingState,
}

/// One OHLCV bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BarView {
    /// Start of the bar.
    pub open_time: DateTime<Utc>,
    /// Open.
    #[schema(value_type = String)]
    pub open: Price,
    /// High.
    #[schema(value_type = String)]
    pub high: Price,
    /// Low.
    #[schema(value_type = String)]
    pub low: Price,
    /// Close.
    #[schema(value_type = String)]
    pub close: Price,
    /// Volume.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub volume: Decimal,
}

impl From<Bar> for BarView {
    fn from(b: Bar) -> Self {
        Self {
            open_time: b.open_time,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
        }
    }
}

/// Bars of an instrument (`GET /api/v1/bars/{instrument}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BarsView {
    /// Instrument.
    #[schema(value_type = String)]
    pub instrument_id: InstrumentId,
    /// Bar width (`1m`, `5m`, `15m`, `1h`, `1d`).
    pub interval: String,
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// `store` when the bars were loaded into the database (`backfill bars`),
    /// else the market-data provider's name.
    pub source: String,
    /// Oldest first.
    pub bars: Vec<BarView>,
}
