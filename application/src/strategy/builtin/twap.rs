//! `twap`: works a parent quantity in equal slices over a duration.

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::values::{Quantity, decimal_string};
use rust_decimal::RoundingStrategy;
use serde::Deserialize;

use super::{FnFactory, single_instrument};
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, StrategyOrder, parse_params};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    side: Side,
    #[serde(with = "decimal_string")]
    quantity: Decimal,
    duration_secs: u64,
    slices: u32,
}

fn parse(params: &serde_json::Value) -> Result<Params, Vec<FieldError>> {
    let p: Params = parse_params(params)?;
    let mut errors = Vec::new();
    if p.quantity <= Decimal::ZERO {
        errors.push(FieldError::new("params.quantity", "must be positive"));
    }
    if !(1..=86_400 * 7).contains(&p.duration_secs) {
        errors.push(FieldError::new(
            "params.duration_secs",
            "must be 1 s to 7 days",
        ));
    }
    if !(1..=10_000).contains(&p.slices) {
        errors.push(FieldError::new("params.slices", "must be 1-10000"));
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

/// Sends `slices` market orders evenly over `duration_secs`; the last slice
/// carries the remainder so the total is exact.
#[derive(Debug)]
pub struct Twap {
    params: Params,
    instrument: InstrumentId,
    started: Option<DateTime<Utc>>,
    sent_slices: u32,
    sent_qty: Decimal,
}

impl Twap {
    /// The factory registered as `twap`.
    #[must_use]
    pub fn factory() -> FnFactory {
        FnFactory {
            name: "twap",
            description: "work `quantity` on `side` in `slices` market orders evenly over `duration_secs` (one instrument)",
            validate: |p, i| {
                single_instrument(i)?;
                parse(p).map(|_| ())
            },
            create: |c| {
                Ok(Box::new(Self {
                    params: parse(&c.params)?,
                    instrument: single_instrument(&c.instruments)?,
                    started: None,
                    sent_slices: 0,
                    sent_qty: Decimal::ZERO,
                }))
            },
        }
    }

    /// True once every slice was sent.
    #[must_use]
    pub fn done(&self) -> bool {
        self.sent_slices >= self.params.slices
    }

    fn slice_qty(&self, last: bool) -> Decimal {
        let total = self.params.quantity;
        if last {
            return total - self.sent_qty;
        }
        (total / Decimal::from(self.params.slices))
            .round_dp_with_strategy(total.scale(), RoundingStrategy::ToZero)
    }
}

impl Strategy for Twap {
    fn on_start(&mut self, ctx: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        if self.started.is_none() {
            self.started = Some(ctx.now);
        }
        self.on_timer(ctx)
    }

    fn on_timer(&mut self, ctx: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        let Some(started) = self.started else {
            return Vec::new();
        };
        let elapsed_ms = (ctx.now - started).num_milliseconds().max(0);
        let slice_ms = (i64::try_from(self.params.duration_secs).unwrap_or(i64::MAX) * 1000)
            / i64::from(self.params.slices);
        // Slice k (0-based) is due at k × slice length.
        let due = if slice_ms == 0 {
            self.params.slices
        } else {
            u32::try_from(elapsed_ms / slice_ms + 1)
                .unwrap_or(u32::MAX)
                .min(self.params.slices)
        };
        let mut out = Vec::new();
        while self.sent_slices < due {
            let last = self.sent_slices + 1 == self.params.slices;
            let q = self.slice_qty(last);
            self.sent_slices += 1;
            if q <= Decimal::ZERO {
                continue;
            }
            let Ok(quantity) = Quantity::new(q) else {
                continue;
            };
            self.sent_qty += q;
            out.push(StrategyCommand::Submit(StrategyOrder {
                instrument_id: self.instrument.clone(),
                side: self.params.side,
                order_type: OrderType::Market,
                quantity,
                price: None,
                time_in_force: TimeInForce::Ioc,
                reduce_only: false,
            }));
        }
        out
    }

    fn update_params(&mut self, params: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        let p = parse(params)?;
        if p.quantity < self.sent_qty {
            return Err(vec![FieldError::new(
                "params.quantity",
                format!("{} already sent", self.sent_qty),
            )]);
        }
        self.params = p;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::builtin::testing::Script;

    fn submitted(cmds: &[StrategyCommand]) -> Vec<Decimal> {
        cmds.iter()
            .filter_map(|c| match c {
                StrategyCommand::Submit(o) => Some(o.quantity.get()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn slices_evenly_and_exactly() {
        let mut s = Script::new(
            Twap::factory(),
            serde_json::json!({"side": "buy", "quantity": "100", "duration_secs": 60, "slices": 3}),
        );
        assert_eq!(submitted(&s.start()), [Decimal::from(33)]);
        s.advance_secs(10);
        assert!(s.timer().is_empty());
        s.advance_secs(10);
        assert_eq!(submitted(&s.timer()), [Decimal::from(33)]);
        s.advance_secs(100);
        assert_eq!(submitted(&s.timer()), [Decimal::from(34)]);
        assert!(s.timer().is_empty(), "nothing after the last slice");
    }

    #[test]
    fn late_timer_catches_up() {
        let mut s = Script::new(
            Twap::factory(),
            serde_json::json!({"side": "sell", "quantity": "1.5", "duration_secs": 4, "slices": 4}),
        );
        s.start();
        s.advance_secs(10);
        let q = submitted(&s.timer());
        assert_eq!(q.len(), 3);
        let total: Decimal = q.iter().sum::<Decimal>() + Decimal::new(3, 1);
        assert_eq!(total, Decimal::new(15, 1));
    }

    #[test]
    fn params_checked() {
        use crate::strategy::StrategyFactory;
        let f = Twap::factory();
        let i = [InstrumentId::new("ACME.SIM").unwrap()];
        assert!(f.validate(&serde_json::json!({"side": "buy", "quantity": "0", "duration_secs": 60, "slices": 3}), &i).is_err());
        assert!(f.validate(&serde_json::json!({"side": "buy", "quantity": "5", "duration_secs": 60, "slices": 0}), &i).is_err());
        assert!(f.validate(&serde_json::json!({"side": "buy", "quantity": "5", "duration_secs": 60, "slices": 2}), &[]).is_err());
        assert!(f.validate(&serde_json::json!({"side": "buy", "quantity": "5", "duration_secs": 60, "slices": 2}), &i).is_ok());
    }
}
