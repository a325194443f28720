//! What a signal's value is now: the series a rule reads (its key and
//! labels), what evaluation reads besides the series, and the value of each
//! signal of a user, an instrument or the instance. Evaluation
//! ([`super::eval`]) and sampling ([`super::sampled`]) both read values here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::risk::TradingState;
use rust_decimal::prelude::FromPrimitive;

use super::observed::Observed;
use super::rule::Rule;
use super::series::UserSeries;
use super::signal::Signal;
use crate::catalog::InstrumentCatalog;
use crate::market::QuoteBook;

/// One series of a rule: which user, instrument, venue or strategy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeriesKey {
    /// A user.
    User(UserId),
    /// A user's position.
    UserInstrument(UserId, InstrumentId),
    /// A user's orders at a venue.
    UserVenue(UserId, String),
    /// A strategy.
    Strategy(UserId, StrategyId),
    /// An instrument.
    Instrument(InstrumentId),
    /// A venue.
    Venue(String),
    /// The instance.
    System,
}

impl SeriesKey {
    /// The labels the series gives its alerts.
    #[must_use]
    pub fn labels(&self, instance: &str) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            l.insert(k.to_owned(), v.to_owned());
        };
        match self {
            Self::User(u) => put("user_id", u.as_str()),
            Self::UserInstrument(u, i) => {
                put("user_id", u.as_str());
                put("instrument_id", i.as_str());
                put("venue", i.venue());
            }
            Self::UserVenue(u, v) => {
                put("user_id", u.as_str());
                put("venue", v);
            }
            Self::Strategy(u, s) => {
                put("user_id", u.as_str());
                put("strategy_id", s.as_str());
            }
            Self::Instrument(i) => {
                put("instrument_id", i.as_str());
                put("venue", i.venue());
            }
            Self::Venue(v) => put("venue", v),
            Self::System => put("instance", instance),
        }
        l
    }

    /// The user the series belongs to.
    #[must_use]
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User(u)
            | Self::UserInstrument(u, _)
            | Self::UserVenue(u, _)
            | Self::Strategy(u, _) => Some(u),
            Self::Instrument(_) | Self::Venue(_) | Self::System => None,
        }
    }
}

/// Figures of the instance from outside alerting (relay, consumer, owners).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemFigures {
    /// Outbox rows not yet relayed.
    pub outbox_pending: Option<u64>,
    /// Dead letters of this instance's group.
    pub dead_letters: Option<u64>,
    /// Outbox rows this instance's relay set aside (the broker refused them).
    pub outbox_set_aside: Option<u64>,
    /// Commands queued in owners.
    pub queued_commands: Option<u64>,
}

/// What evaluation reads besides the series.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// Now.
    pub now: DateTime<Utc>,
    /// Latest quotes.
    pub quotes: &'a QuoteBook,
    /// Instruments.
    pub catalog: &'a InstrumentCatalog,
    /// Orders waiting longer count toward `venue_stuck_orders`.
    pub venue_stuck_after: Duration,
    /// How long a strategy's alert stays firing.
    pub strategy_alert_hold: Duration,
    /// When the service started (the age of an instrument never quoted).
    pub started_at: DateTime<Utc>,
    /// Instance figures.
    pub system: SystemFigures,
    /// This instance's name.
    pub instance: &'a str,
}

/// The rules, with each user's overrides applied.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Every rule, in order.
    pub rules: Vec<Arc<Rule>>,
    /// Users with overrides: their effective rules (same order).
    pub per_user: HashMap<UserId, Vec<Arc<Rule>>>,
}

impl RuleSet {
    /// The rules as they apply to `user`.
    #[must_use]
    pub fn for_user(&self, user: &UserId) -> &[Arc<Rule>] {
        if self.per_user.is_empty() {
            return &self.rules;
        }
        self.per_user.get(user).map_or(&self.rules, Vec::as_slice)
    }

    /// Applies the overrides: each user's effective rules.
    pub fn set_overrides(&mut self, overrides: &[ordermon_domain::alert::RuleOverride]) {
        self.per_user.clear();
        for o in overrides {
            let Some(idx) = self.rules.iter().position(|r| r.name == o.rule) else {
                continue;
            };
            let list = self
                .per_user
                .entry(o.user_id.clone())
                .or_insert_with(|| self.rules.clone());
            list[idx] = Arc::new(self.rules[idx].overridden(o));
        }
    }
}

fn dec(x: f64) -> Decimal {
    Decimal::from_f64(x).unwrap_or(Decimal::ZERO).round_dp(6)
}

/// A signal's value: order-flow statistics are `f64` (counts, rates, ratios;
/// never money) and are compared as such, which spares a decimal conversion
/// per rule per user per evaluation; money-derived values stay decimal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A statistic.
    F(f64),
    /// An exact value.
    D(Decimal),
}

impl From<Decimal> for Num {
    fn from(d: Decimal) -> Self {
        Self::D(d)
    }
}

impl Num {
    /// The value as a decimal (statistics rounded to 6 places).
    #[must_use]
    pub fn decimal(self) -> Decimal {
        match self {
            Self::F(x) => dec(x),
            Self::D(d) => d,
        }
    }
}

pub(crate) fn secs(d: chrono::Duration) -> Decimal {
    Decimal::from(d.num_milliseconds().max(0)) / Decimal::from(1000)
}

/// The value of a user-scope signal now (`None` = unknown: no hit).
pub(crate) fn user_value(
    signal: Signal,
    window: Duration,
    min_count: u32,
    view: &UserView<'_>,
) -> Option<Num> {
    let (u, ctx) = (view.u, view.ctx);
    let w = || view.window(window.as_secs().try_into().unwrap_or(i64::MAX));
    let ratio = |part: f64, orders: f64| {
        if orders < f64::from(min_count.max(1)) {
            None
        } else {
            Some(part / orders)
        }
    };
    let stat = match signal {
        Signal::Orders => Some(w().orders),
        Signal::OrderRate => Some(w().orders / window.as_secs_f64().max(1.0)),
        Signal::Rejects => Some(w().rejects),
        Signal::RejectRatio => {
            let c = w();
            Some(ratio(c.rejects, c.orders)?)
        }
        Signal::CancelRatio => {
            let c = w();
            Some(ratio(c.cancels, c.orders)?)
        }
        Signal::FillRatio => {
            let c = w();
            Some(ratio(c.first_fills, c.orders)?)
        }
        Signal::NotionalPerOrder => {
            let c = w();
            Some(ratio(c.notional, c.orders)?)
        }
        Signal::DuplicateOrders => Some(w().duplicates),
        Signal::ThrottledOrders => Some(w().throttled),
        Signal::AckLatencyMs => Some(u.flow.as_ref().map_or(0.0, |f| {
            f.ack_max(ctx.now, window.as_secs().try_into().unwrap_or(i64::MAX))
        })),
        Signal::ReconMismatches => Some(w().mismatches),
        _ => None,
    };
    if let Some(x) = stat {
        return Some(Num::F(x));
    }
    Some(Num::D(match signal {
        Signal::OpenOrders => Decimal::from(u.open.len()),
        Signal::TradingHalted => Decimal::from(u8::from(u.trading_state == TradingState::Halted)),
        Signal::Drawdown
        | Signal::DrawdownRatio
        | Signal::LossVelocity
        | Signal::DailyLossUtilization => {
            let equity = view.equity()?;
            match signal {
                Signal::Drawdown => u
                    .equity
                    .high_water
                    .map_or(Decimal::ZERO, |h| (h - equity).max(Decimal::ZERO)),
                Signal::DrawdownRatio => {
                    let h = u.equity.high_water?;
                    if h <= Decimal::ZERO {
                        return None;
                    }
                    ((h - equity).max(Decimal::ZERO) / h).round_dp(6)
                }
                Signal::LossVelocity => {
                    let then =
                        u.equity_ago(ctx.now, window.as_secs().try_into().unwrap_or(i64::MAX))?;
                    if then <= Decimal::ZERO {
                        return None;
                    }
                    ((then - equity) / then).round_dp(6)
                }
                _ => {
                    let limit = u.limits.max_daily_loss.filter(|l| *l > Decimal::ZERO)?;
                    u.equity.day?;
                    ((u.equity.day_start - equity).max(Decimal::ZERO) / limit).round_dp(6)
                }
            }
        }
        _ => return None,
    }))
}

/// The user's equity now, positions valued at the latest quotes.
pub fn equity(u: &UserSeries, ctx: &EvalContext<'_>) -> Option<Decimal> {
    u.equity(|id, h| {
        let inst = ctx.catalog.get(id)?;
        let mark = ctx.quotes.last_price(id).map_or(h.last_price, |p| p.get());
        let value = h.quantity.checked_mul(mark)?.checked_mul(inst.multiplier)?;
        Some((inst.quote_currency.clone(), value))
    })
}

/// One user's figures for one evaluation, each computed at most once
/// (several rules read the same window or the equity).
pub(crate) struct UserView<'a> {
    u: &'a UserSeries,
    ctx: &'a EvalContext<'a>,
    equity: std::cell::OnceCell<Option<Decimal>>,
    windows: std::cell::RefCell<Vec<(i64, super::flow::Counts)>>,
}

impl<'a> UserView<'a> {
    pub(crate) fn new(u: &'a UserSeries, ctx: &'a EvalContext<'a>) -> Self {
        Self {
            u,
            ctx,
            equity: std::cell::OnceCell::new(),
            windows: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn window(&self, secs: i64) -> super::flow::Counts {
        let Some(flow) = self.u.flow.as_ref() else {
            return super::flow::Counts::default();
        };
        if let Some((_, c)) = self.windows.borrow().iter().find(|(w, _)| *w == secs) {
            return *c;
        }
        let c = flow.window(self.ctx.now, secs);
        self.windows.borrow_mut().push((secs, c));
        c
    }

    fn equity(&self) -> Option<Decimal> {
        *self.equity.get_or_init(|| equity(self.u, self.ctx))
    }
}

/// The value of an instance signal now.
pub fn system_value(signal: Signal, observed: &Observed, ctx: &EvalContext<'_>) -> Option<Decimal> {
    match signal {
        Signal::Watchdog => Some(Decimal::ONE),
        Signal::GlobalTradingHalted => Some(Decimal::from(u8::from(
            observed.global_state == TradingState::Halted,
        ))),
        Signal::OutboxPending => ctx.system.outbox_pending.map(Decimal::from),
        Signal::OutboxSetAside => ctx.system.outbox_set_aside.map(Decimal::from),
        Signal::DeadLetters => ctx.system.dead_letters.map(Decimal::from),
        Signal::QueuedCommands => ctx.system.queued_commands.map(Decimal::from),
        _ => None,
    }
}

/// The value of any non-multivariate signal of a series (for sampling).
pub fn series_value(
    rule: &Rule,
    key: &SeriesKey,
    observed: &Observed,
    ctx: &EvalContext<'_>,
) -> Option<Decimal> {
    match key {
        SeriesKey::User(u) => {
            let s = observed.users.get(u)?;
            user_value(
                rule.signal,
                rule.window,
                rule.min_count,
                &UserView::new(s, ctx),
            )
            .map(Num::decimal)
        }
        SeriesKey::UserInstrument(u, i) => {
            let s = observed.users.get(u)?;
            let h = s.positions.get(i)?;
            let limit = s.limits.max_position.filter(|l| *l > Decimal::ZERO)?;
            Some((h.quantity.abs() / limit).round_dp(6))
        }
        SeriesKey::System => system_value(rule.signal, observed, ctx),
        SeriesKey::Instrument(i) => {
            let last = ctx.quotes.latest(i).map_or(ctx.started_at, |q| q.ts);
            Some(secs(ctx.now - last))
        }
        SeriesKey::UserVenue(..) | SeriesKey::Strategy(..) | SeriesKey::Venue(_) => None,
    }
}
