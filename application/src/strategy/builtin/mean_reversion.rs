//! `mean_reversion`: buys below a moving average, sells back above it.

use std::collections::VecDeque;

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
#[derive(Debug)]
struct Window {
    sides: VecDeque<Decimal>,
    sum: Decimal,
}

impl Window {
    fn new(len: usize) -> Self {
        Self {
            sides: VecDeque::with_capacity(len),
            sum: Decimal::ZERO,
        }
    }

    /// Keeps the last `len` values. The oldest leaves before the newest
    /// enters, so a full window reuses its slot: no growth past `len`, one
    /// cache line touched.
    fn push(&mut self, bid_plus_ask: Decimal, len: usize) {
        while self.sides.len() >= len.max(1) {
            match self.sides.pop_front() {
                Some(old) => self.sum -= old,
                None => break,
            }
        }
        self.sides.push_back(bid_plus_ask);
        self.sum += bid_plus_ask;
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
                Ok(Box::new(Self {
                    params: parse(&c.params)?,
                    windows: PerInstrument::default(),
                }))
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
        w.push(twice_mid, len);
        if w.sides.len() < len {
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
            twice_mid.checked_mul(Decimal::from(w.sides.len())),
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
        self.params = parse(params)?;
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
}
