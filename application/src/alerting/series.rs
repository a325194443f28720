//! What the alerting service knows of each user, built from the committed
//! events (and, at start, from the store): order-flow counters, the open
//! orders and how long they have waited, positions, cash, equity and its
//! high-water mark, limits and trading state, and each strategy's health.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::alert::Severity;
use ordermon_domain::ids::{InstrumentId, OrderId, RuleName, StrategyId};
use ordermon_domain::order::{OrderType, Side};
use ordermon_domain::risk::{RiskLimits, TradingState};
use ordermon_domain::values::Currency;

use super::flow::{BUCKET_SECS, BUCKETS, FlowRing, bucket_of};

/// How far back an identical order counts as a duplicate.
pub const DUPLICATE_WINDOW_SECS: i64 = 10;
/// Signatures of recent orders kept for duplicate detection.
const RECENT_SIGNATURES: usize = 64;
/// Completed orders remembered to notice fills beyond their quantity.
const RECENT_DONE: usize = 64;

/// Where a tracked order waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Waiting {
    /// Created, not yet sent.
    New,
    /// Sent, waiting for the venue's acknowledgement.
    Ack,
    /// Working at the venue.
    Working,
    /// A cancel is in flight.
    Cancel,
}

/// An open order as alerting tracks it.
#[derive(Debug, Clone)]
pub struct OpenOrder {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Strategy.
    pub strategy: Option<StrategyId>,
    /// Quantity ordered.
    pub quantity: Decimal,
    /// Quantity filled.
    pub filled: Decimal,
    /// What it waits for.
    pub waiting: Waiting,
    /// Since when it waits for it.
    pub since: DateTime<Utc>,
    /// When it was sent (for the acknowledgement latency).
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A strategy's health.
#[derive(Debug, Clone, Default)]
pub struct StrategyHealth {
    /// Its heartbeat is reported missing.
    pub heartbeat_missing: bool,
    /// Failures (restarts), newest last, within the last 15 minutes.
    pub restarts: VecDeque<DateTime<Utc>>,
}

/// An alert a strategy asked for, held for a while after its last event.
#[derive(Debug, Clone)]
pub struct StrategyAlert {
    /// The strategy.
    pub strategy: StrategyId,
    /// The rule it names.
    pub rule: RuleName,
    /// Severity.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The last time it was asked for.
    pub last: DateTime<Utc>,
}

/// A position as alerting tracks it.
#[derive(Debug, Clone)]
pub struct Holding {
    /// Signed quantity.
    pub quantity: Decimal,
    /// Last fill price (the mark when there is no quote).
    pub last_price: Decimal,
}

/// Equity bookkeeping of a user in its first currency.
#[derive(Debug, Clone, Default)]
pub struct EquityTrack {
    /// Highest equity seen since the service started.
    pub high_water: Option<Decimal>,
    /// The UTC day `day_start` belongs to.
    pub day: Option<NaiveDate>,
    /// Equity at the first look of the day.
    pub day_start: Decimal,
    /// Equity at the end of each 10-second bucket (bucket index, value).
    pub history: VecDeque<(i64, Decimal)>,
}

/// Orders waiting for one thing at one venue: since when, and which.
pub type WaitingSince = BTreeSet<(DateTime<Utc>, OrderId)>;

/// Everything known of one user.
#[derive(Debug, Default)]
pub struct UserSeries {
    /// Order-flow counters (allocated on first activity).
    pub flow: Option<Box<FlowRing>>,
    /// Open orders.
    pub open: HashMap<OrderId, OpenOrder>,
    /// The open orders waiting for the venue (an acknowledgement or a
    /// cancel) by what they wait for and venue, oldest first: the oldest
    /// of each is what the stuck-order signals look at, found without
    /// walking the open orders. Kept by [`UserSeries::sync_waiting`].
    pub waiting: BTreeMap<(Waiting, String), WaitingSince>,
    /// Where each waiting order is filed in `waiting`.
    pub waiting_at: HashMap<OrderId, (Waiting, String, DateTime<Utc>)>,
    /// Recently completed orders: id, quantity, filled.
    pub done: VecDeque<(OrderId, Decimal, Decimal)>,
    /// Recent order signatures for duplicate detection.
    pub signatures: VecDeque<(u64, DateTime<Utc>)>,
    /// The user's event sequence the limits and trading state reflect.
    pub user_seq: u64,
    /// Limits.
    pub limits: RiskLimits,
    /// The user's own kill switch.
    pub trading_state: TradingState,
    /// Positions by instrument.
    pub positions: HashMap<InstrumentId, Holding>,
    /// Cash by currency (once the account is known).
    pub cash: BTreeMap<Currency, Decimal>,
    /// The account's event sequence the cash reflects (`None` until seeded).
    pub account_seq: Option<u64>,
    /// Account changes seen before the account was seeded: (sequence, deltas).
    pub early_cash: Vec<(u64, Vec<(Currency, Decimal)>)>,
    /// Equity bookkeeping.
    pub equity: EquityTrack,
    /// Strategies' health.
    pub strategies: HashMap<StrategyId, StrategyHealth>,
    /// Alerts the user's strategies asked for.
    pub strategy_alerts: Vec<StrategyAlert>,
    /// Last event about the user.
    pub last_activity: Option<DateTime<Utc>>,
}

/// Identifies an order's shape for duplicate detection.
#[must_use]
pub fn order_signature(
    instrument: &InstrumentId,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Option<Decimal>,
) -> u64 {
    // FNV-1a over the parts; normalized decimals so "10" and "10.0" agree.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(instrument.as_str().as_bytes());
    eat(side.as_str().as_bytes());
    eat(order_type.as_str().as_bytes());
    eat(quantity.normalize().to_string().as_bytes());
    eat(price
        .map(|p| p.normalize().to_string())
        .unwrap_or_default()
        .as_bytes());
    h
}

impl UserSeries {
    /// The flow ring, allocated on first use.
    pub fn flow_mut(&mut self) -> &mut FlowRing {
        self.flow.get_or_insert_with(Box::default)
    }

    /// Records an order's signature; true when an identical order was sent
    /// less than [`DUPLICATE_WINDOW_SECS`] before.
    pub fn note_signature(&mut self, sig: u64, at: DateTime<Utc>) -> bool {
        let horizon = at - Duration::seconds(DUPLICATE_WINDOW_SECS);
        while self.signatures.front().is_some_and(|(_, t)| *t < horizon) {
            self.signatures.pop_front();
        }
        let dup = self.signatures.iter().any(|(s, _)| *s == sig);
        if self.signatures.len() == RECENT_SIGNATURES {
            self.signatures.pop_front();
        }
        self.signatures.push_back((sig, at));
        dup
    }

    /// Files an open order under `waiting` or takes it out, by what it
    /// waits for now; call after anything that may change it.
    pub fn sync_waiting(&mut self, id: OrderId) {
        let now = self
            .open
            .get(&id)
            .filter(|o| matches!(o.waiting, Waiting::Ack | Waiting::Cancel))
            .map(|o| (o.waiting, o.instrument.venue(), o.since));
        let filed = self.waiting_at.get(&id);
        if let (Some((w, v, t)), Some((fw, fv, ft))) = (now, filed)
            && w == *fw
            && v == fv
            && t == *ft
        {
            return;
        }
        let now = now.map(|(w, v, t)| (w, v.to_owned(), t));
        if let Some((w, v, t)) = self.waiting_at.remove(&id) {
            let key = (w, v);
            if let Some(set) = self.waiting.get_mut(&key) {
                set.remove(&(t, id));
                if set.is_empty() {
                    self.waiting.remove(&key);
                }
            }
        }
        if let Some((w, v, t)) = now {
            self.waiting
                .entry((w, v.clone()))
                .or_default()
                .insert((t, id));
            self.waiting_at.insert(id, (w, v, t));
        }
    }

    /// Since when the longest-waiting order waits for `what`, by venue.
    pub fn oldest_waiting_by_venue(
        &self,
        what: Waiting,
    ) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
        self.waiting
            .range((what, String::new())..)
            .take_while(move |((w, _), _)| *w == what)
            .filter_map(|((_, v), set)| set.first().map(|(t, _)| (v.as_str(), *t)))
    }

    /// Since when the longest-waiting order waits for `what`, any venue.
    #[must_use]
    pub fn oldest_waiting(&self, what: Waiting) -> Option<DateTime<Utc>> {
        self.oldest_waiting_by_venue(what).map(|(_, t)| t).min()
    }

    /// Orders waiting for the venue since `cutoff` or before, by venue.
    pub fn waiting_since_by_venue(
        &self,
        cutoff: DateTime<Utc>,
    ) -> impl Iterator<Item = (&str, u64)> {
        self.waiting.iter().map(move |((_, v), set)| {
            let n = set.iter().take_while(|(t, _)| *t <= cutoff).count();
            (v.as_str(), n as u64)
        })
    }

    /// Remembers a completed order (to notice fills beyond its quantity).
    pub fn complete(&mut self, id: OrderId) {
        let removed = self.open.remove(&id);
        self.sync_waiting(id);
        if let Some(o) = removed {
            if self.done.len() == RECENT_DONE {
                self.done.pop_front();
            }
            self.done.push_back((id, o.quantity, o.filled));
        }
    }

    /// The user's equity in its first currency: that cash plus the market
    /// value of positions quoted in it (as the account view computes it).
    /// `None` until the account is known.
    pub fn equity(
        &self,
        value: impl Fn(&InstrumentId, &Holding) -> Option<(Currency, Decimal)>,
    ) -> Option<Decimal> {
        self.account_seq?;
        let (currency, cash) = self.cash.iter().next()?;
        let mut equity = *cash;
        for (id, h) in &self.positions {
            if let Some((c, v)) = value(id, h)
                && &c == currency
            {
                equity = equity.checked_add(v)?;
            }
        }
        Some(equity)
    }

    /// Applies the cash changes of the account event `seq` (held back until
    /// the account is seeded; ignored when the seeded account has it already).
    pub fn account_change(&mut self, seq: u64, deltas: Vec<(Currency, Decimal)>) {
        match self.account_seq {
            None => self.early_cash.push((seq, deltas)),
            Some(known) if seq <= known => {}
            Some(_) => {
                for (currency, delta) in deltas {
                    let c = self.cash.entry(currency).or_default();
                    *c = c.checked_add(delta).unwrap_or(*c);
                }
                self.account_seq = Some(seq);
            }
        }
    }

    /// An account opened now: it starts empty, so every later change applies.
    pub fn open_account(&mut self, seq: u64) {
        if self.account_seq.is_none() {
            self.seed_account(seq, BTreeMap::new());
        }
    }

    /// Installs the account as stored (its event sequence and totals), then
    /// applies the changes seen meanwhile that it does not include. A
    /// snapshot older than what events already gave is ignored.
    pub fn seed_account(&mut self, seq: u64, totals: BTreeMap<Currency, Decimal>) {
        if self.account_seq.is_some_and(|known| known >= seq) {
            return;
        }
        self.cash = totals;
        self.account_seq = Some(seq);
        let early = std::mem::take(&mut self.early_cash);
        for (s, deltas) in early {
            self.account_change(s, deltas);
        }
    }

    /// Drops what is older than the 15 minutes the series keep; true when the
    /// user has nothing left worth keeping in memory beyond the basics.
    pub fn trim(&mut self, now: DateTime<Utc>) {
        let horizon = now - Duration::seconds(BUCKET_SECS * BUCKETS as i64);
        for s in self.strategies.values_mut() {
            while s.restarts.front().is_some_and(|t| *t < horizon) {
                s.restarts.pop_front();
            }
        }
        self.strategies
            .retain(|_, s| s.heartbeat_missing || !s.restarts.is_empty());
        if self.flow.as_ref().is_some_and(|f| f.idle(now)) {
            self.flow = None;
        }
        let oldest = bucket_of(horizon);
        while self
            .equity
            .history
            .front()
            .is_some_and(|(b, _)| *b < oldest)
        {
            self.equity.history.pop_front();
        }
    }

    /// Records the equity at the end of a bucket, updates the high-water mark
    /// and the day's start.
    pub fn sample_equity(&mut self, now: DateTime<Utc>, equity: Decimal) {
        let e = &mut self.equity;
        e.high_water = Some(e.high_water.map_or(equity, |h| h.max(equity)));
        let today = now.date_naive();
        if e.day != Some(today) {
            e.day = Some(today);
            e.day_start = equity;
        }
        let b = bucket_of(now);
        match e.history.back_mut() {
            Some((last, v)) if *last == b => *v = equity,
            _ => e.history.push_back((b, equity)),
        }
        while e.history.len() > BUCKETS + 1 {
            e.history.pop_front();
        }
    }

    /// The equity `secs` ago (the oldest sample at or before then).
    #[must_use]
    pub fn equity_ago(&self, now: DateTime<Utc>, secs: i64) -> Option<Decimal> {
        let target = bucket_of(now - Duration::seconds(secs));
        self.equity
            .history
            .iter()
            .rev()
            .find(|(b, _)| *b <= target)
            .or_else(|| self.equity.history.front())
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn usd() -> Currency {
        Currency::new("USD").unwrap()
    }

    #[test]
    fn duplicates_within_ten_seconds() {
        let mut u = UserSeries::default();
        let i = InstrumentId::new("ACME.SIM").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let s = order_signature(
            &i,
            Side::Buy,
            OrderType::Limit,
            Decimal::new(10, 0),
            Some(Decimal::new(1000, 2)),
        );
        let same = order_signature(
            &i,
            Side::Buy,
            OrderType::Limit,
            Decimal::new(100, 1),
            Some(Decimal::new(10, 0)),
        );
        let other = order_signature(
            &i,
            Side::Sell,
            OrderType::Limit,
            Decimal::new(10, 0),
            Some(Decimal::new(10, 0)),
        );
        assert_eq!(s, same);
        assert_ne!(s, other);
        assert!(!u.note_signature(s, t));
        assert!(u.note_signature(same, t + Duration::seconds(3)));
        assert!(!u.note_signature(other, t + Duration::seconds(4)));
        assert!(!u.note_signature(s, t + Duration::seconds(20)));
    }

    #[test]
    fn cash_seen_before_seeding_is_applied_once() {
        let mut u = UserSeries::default();
        u.account_change(3, vec![(usd(), Decimal::new(-100, 0))]); // in the snapshot already
        u.account_change(5, vec![(usd(), Decimal::new(50, 0))]); // after it
        let mut totals = BTreeMap::new();
        totals.insert(usd(), Decimal::new(900, 0));
        u.seed_account(4, totals);
        assert_eq!(u.cash[&usd()], Decimal::new(950, 0));
        u.account_change(5, vec![(usd(), Decimal::new(50, 0))]); // a repeat
        u.account_change(6, vec![(usd(), Decimal::new(-10, 0))]);
        assert_eq!(u.cash[&usd()], Decimal::new(940, 0));
        assert_eq!(u.equity(|_, _| None), Some(Decimal::new(940, 0)));
    }

    #[test]
    fn equity_history_gives_the_value_a_window_ago() {
        let mut u = UserSeries::default();
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        for k in 0..40 {
            u.sample_equity(t + Duration::seconds(10 * k), Decimal::from(1000 - k));
        }
        let now = t + Duration::seconds(390);
        assert_eq!(u.equity_ago(now, 300), Some(Decimal::from(991)));
        assert_eq!(u.equity.high_water, Some(Decimal::from(1000)));
        assert_eq!(u.equity.day_start, Decimal::from(1000));
    }
}
