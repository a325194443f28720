//! `mean_reversion`: buys below a moving average, sells back above it.

use ordermon_domain::Decimal;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::values::{Quantity, decimal_string};
use serde::Deserialize;

use super::{FnFactory, PerInstrument};
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, StrategyOrder, parse_params};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Quotes in the moving average.
    window: usize,
    /// Distance from the average that triggers, as a fraction (0.002 = 0.2 %).
    #[serde(with = "decimal_string")]
    threshold_pct: Decimal,
    /// Size of each entry.
    #[serde(with = "decimal_string")]
    quantity: Decimal,
    /// Largest long position it builds.
    #[serde(with = "decimal_string")]
    max_position: Decimal,
}

fn parse(params: &serde_json::Value) -> Result<Params, Vec<FieldError>> {
    let p: Params = parse_params(params)?;
    let mut errors = Vec::new();
    if !(2..=10_000).contains(&p.window) {
        errors.push(FieldError::new("params.window", "must be 2-10000"));
    }
    if p.threshold_pct <= Decimal::ZERO || p.threshold_pct >= Decimal::ONE {
        errors.push(FieldError::new(
            "params.threshold_pct",
            "must be between 0 and 1",
        ));
    }
    if p.quantity <= Decimal::ZERO {
        errors.push(FieldError::new("params.quantity", "must be positive"));
    }
    if p.max_position < p.quantity {
        errors.push(FieldError::new(
            "params.max_position",
            "must be at least quantity",
        ));
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

/// The last `window` quotes of one instrument, kept as `bid + ask` (twice
/// the mid): comparing against the average then needs no division.
///
/// A ring made whole, and written, when the strategy starts: a lane's first
/// quotes write into memory the owner already touched instead of allocating
/// and faulting in fresh pages (at 50,000 strategies starting together, the
/// first second's calls spent more time in the kernel clearing pages than in
/// the strategies).
#[derive(Debug)]
struct Window {
    ring: Box<[Decimal]>,
    /// Where the next value goes.
    next: usize,
    /// Values held, up to the ring's length.
    filled: usize,
    sum: Decimal,
}

impl Window {
    fn new(len: usize) -> Self {
        Self {
            ring: vec![Decimal::ZERO; len.max(1)].into_boxed_slice(),
            next: 0,
            filled: 0,
            sum: Decimal::ZERO,
        }
    }

    /// Keeps the last `len` values: the newest takes the oldest's place.
    fn push(&mut self, bid_plus_ask: Decimal) {
        let len = self.ring.len();
        let Some(slot) = self.ring.get_mut(self.next) else {
            return;
        };
        if self.filled == len {
            self.sum -= *slot;
        } else {
            self.filled += 1;
        }
        *slot = bid_plus_ask;
        self.sum += bid_plus_ask;
        self.next = (self.next + 1) % len;
    }

    fn is_full(&self) -> bool {
        self.filled == self.ring.len()
    }

    /// The values held, oldest first.
    fn values(&self) -> impl Iterator<Item = Decimal> + '_ {
        let len = self.ring.len();
        let oldest = (self.next + len - self.filled) % len;
        (0..self.filled).filter_map(move |i| self.ring.get((oldest + i) % len).copied())
    }

    /// The same quotes in a window of `len` (the newest ones when it is
    /// shorter).
    fn resized(&self, len: usize) -> Self {
        let mut w = Self::new(len);
        let skip = self.filled.saturating_sub(w.ring.len());
        for v in self.values().skip(skip) {
            w.push(v);
        }
        w
    }
}

/// Buys `quantity` when the mid is `threshold_pct` below its moving average
/// (up to `max_position`), and sells the position back when the mid is
/// `threshold_pct` above it. Long-only, so it works on cash accounts.
///
/// Called for every quote of its instruments, so the comparison is kept
/// cheap and exact: `mid < avg × (1 − t)` is decided as
/// `(bid + ask) × n < Σ(bid + ask) × (1 − t)`, without the rounding of a
/// division.
#[derive(Debug)]
pub struct MeanReversion {
    params: Params,
    windows: PerInstrument<Window>,
}

impl MeanReversion {
    /// The factory registered as `mean_reversion`.
    #[must_use]
    pub fn factory() -> FnFactory {
        FnFactory {
            name: "mean_reversion",
            description: "buy `quantity` when the mid is `threshold_pct` under its `window`-quote average (up to `max_position`), sell it back when above",
            validate: |p, _| parse(p).map(|_| ()),
            create: |c| {
                let params = parse(&c.params)?;
                // Every instrument's window made now, on start (see `Window`).
                let mut windows = PerInstrument::default();
                for id in &c.instruments {
                    windows.get_or_insert_with(id, || Window::new(params.window));
                }
                Ok(Box::new(Self { params, windows }))
            },
        }
    }
}

impl Strategy for MeanReversion {
    fn uses_timer(&self) -> bool {
        false
    }

    fn on_quote(&mut self, ctx: &StrategyContext<'_>, quote: &Quote) -> Vec<StrategyCommand> {
        let twice_mid = quote.bid.get() + quote.ask.get();
        let len = self.params.window;
        let w = self
            .windows
            .get_or_insert_with(&quote.instrument_id, || Window::new(len));
        w.push(twice_mid);
        if !w.is_full() {
            return Vec::new();
        }
        if ctx
            .open_orders
            .iter()
            .any(|o| o.instrument_id == quote.instrument_id)
        {
            return Vec::new();
        }
        let t = self.params.threshold_pct;
        // Out of `Decimal`'s range only for prices no instrument has: then no
        // decision rather than a panic.
        let (Some(scaled), Some(lower), Some(upper)) = (
            twice_mid.checked_mul(Decimal::from(w.filled)),
            w.sum.checked_mul(Decimal::ONE - t),
            w.sum.checked_mul(Decimal::ONE + t),
        ) else {
            return Vec::new();
        };
        let (side, qty, reduce_only) = if scaled < lower {
            let pos = ctx.position_qty(&quote.instrument_id);
            if pos + self.params.quantity > self.params.max_position {
                return Vec::new();
            }
            (Side::Buy, self.params.quantity, false)
        } else if scaled > upper {
            let pos = ctx.position_qty(&quote.instrument_id);
            if pos <= Decimal::ZERO {
                return Vec::new();
            }
            (Side::Sell, pos.min(self.params.quantity), true)
        } else {
            return Vec::new();
        };
        let Ok(quantity) = Quantity::new(qty) else {
            return Vec::new();
        };
        vec![StrategyCommand::Submit(StrategyOrder {
            instrument_id: quote.instrument_id.clone(),
            side,
            order_type: OrderType::Market,
            quantity,
            price: None,
            time_in_force: TimeInForce::Ioc,
            reduce_only,
        })]
    }

    fn update_params(&mut self, params: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        let params = parse(params)?;
        if params.window != self.params.window {
            self.windows.update(|w| *w = w.resized(params.window));
        }
        self.params = params;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::builtin::testing::{Script, quote};

    fn script() -> Script {
        Script::new(
            MeanReversion::factory(),
            serde_json::json!({"window": 4, "threshold_pct": "0.01", "quantity": "5", "max_position": "10"}),
        )
    }

    #[test]
    fn buys_the_dip_and_sells_the_rip() {
        let mut s = script();
        for _ in 0..3 {
            assert!(
                s.quote(quote("100.00", "100.00")).is_empty(),
                "window not full"
            );
        }
        // avg of (100,100,100,97) = 99.25; 97 < 99.25 × 0.99 → buy.
        let out = s.quote(quote("97.00", "97.00"));
        assert!(
            matches!(&out[0], StrategyCommand::Submit(o) if o.side == Side::Buy && o.quantity.get() == Decimal::from(5))
        );
        s.hold("10", "97.00");
        // At max position no further buys.
        assert!(s.quote(quote("90.00", "90.00")).is_empty());
        // avg of (100,97,90,110) = 99.25; 110 > 100.2425 → sell 5 of the 10.
        let out = s.quote(quote("110.00", "110.00"));
        assert!(
            matches!(&out[0], StrategyCommand::Submit(o) if o.side == Side::Sell && o.reduce_only && o.quantity.get() == Decimal::from(5))
        );
    }

    #[test]
    fn hot_param_update() {
        let mut s = script();
        assert!(s.update(serde_json::json!({"window": 1, "threshold_pct": "0.01", "quantity": "5", "max_position": "10"})).is_err());
        assert!(s.update(serde_json::json!({"window": 2, "threshold_pct": "0.01", "quantity": "5", "max_position": "10"})).is_ok());
        s.quote(quote("100.00", "100.00"));
        let out = s.quote(quote("90.00", "90.00"));
        assert_eq!(out.len(), 1, "the new window of 2 applies at once");
    }

    fn d(v: i64) -> Decimal {
        Decimal::from(v)
    }

    #[test]
    fn a_window_keeps_the_last_quotes_and_their_sum() {
        let mut w = Window::new(3);
        for v in 1..=2 {
            w.push(d(v));
        }
        assert!(!w.is_full());
        assert_eq!(w.values().collect::<Vec<_>>(), vec![d(1), d(2)]);
        for v in 3..=7 {
            w.push(d(v));
        }
        assert!(w.is_full());
        assert_eq!(w.values().collect::<Vec<_>>(), vec![d(5), d(6), d(7)]);
        assert_eq!(w.sum, d(18));
        // Shorter: the newest stay; longer: all stay, not full yet.
        let short = w.resized(2);
        assert_eq!(short.values().collect::<Vec<_>>(), vec![d(6), d(7)]);
        assert_eq!((short.sum, short.is_full()), (d(13), true));
        let long = w.resized(5);
        assert_eq!(long.values().collect::<Vec<_>>(), vec![d(5), d(6), d(7)]);
        assert_eq!((long.sum, long.is_full()), (d(18), false));
    }

    #[test]
    fn a_shorter_window_keeps_the_quotes_already_seen() {
        let mut s = script();
        for _ in 0..3 {
            assert!(s.quote(quote("100.00", "100.00")).is_empty());
        }
        assert!(s.update(serde_json::json!({"window": 2, "threshold_pct": "0.01", "quantity": "5", "max_position": "10"})).is_ok());
        // (100, 90): 90 < 95 × 0.99 → buy on the first quote after the change.
        let out = s.quote(quote("90.00", "90.00"));
        assert_eq!(out.len(), 1);
    }
}
