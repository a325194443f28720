//! `stop_loss_take_profit`: protects open positions with exit orders.

use ordermon_domain::Decimal;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::values::{Quantity, opt_decimal_string};
use serde::Deserialize;

use super::FnFactory;
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, StrategyOrder, parse_params};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Exit when the price moves this fraction against the position (0.05 = 5 %).
    #[serde(default, with = "opt_decimal_string")]
    stop_loss_pct: Option<Decimal>,
    /// Exit when the price moves this fraction in favour of the position.
    #[serde(default, with = "opt_decimal_string")]
    take_profit_pct: Option<Decimal>,
}

fn parse(params: &serde_json::Value) -> Result<Params, Vec<FieldError>> {
    let p: Params = parse_params(params)?;
    let mut errors = Vec::new();
    if p.stop_loss_pct.is_none() && p.take_profit_pct.is_none() {
        errors.push(FieldError::new(
            "params",
            "give stop_loss_pct and/or take_profit_pct",
        ));
    }
    for (name, v) in [
        ("stop_loss_pct", p.stop_loss_pct),
        ("take_profit_pct", p.take_profit_pct),
    ] {
        if let Some(v) = v
            && (v <= Decimal::ZERO || v >= Decimal::ONE)
        {
            errors.push(FieldError::new(
                format!("params.{name}"),
                "must be between 0 and 1",
            ));
        }
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

/// Closes a position with a market order when its price hits the stop or the target.
#[derive(Debug)]
pub struct StopLossTakeProfit {
    params: Params,
}

impl StopLossTakeProfit {
    /// The factory registered as `stop_loss_take_profit`.
    #[must_use]
    pub fn factory() -> FnFactory {
        FnFactory {
            name: "stop_loss_take_profit",
            description: "close positions at market when the mid moves `stop_loss_pct` against or `take_profit_pct` in favour of the average open price",
            validate: |p, _| parse(p).map(|_| ()),
            create: |c| {
                Ok(Box::new(Self {
                    params: parse(&c.params)?,
                }))
            },
        }
    }
}

impl Strategy for StopLossTakeProfit {
    fn uses_timer(&self) -> bool {
        false
    }

    fn on_quote(&mut self, ctx: &StrategyContext<'_>, quote: &Quote) -> Vec<StrategyCommand> {
        let Some(position) = ctx.positions.get(&quote.instrument_id) else {
            return Vec::new();
        };
        let Some(avg) = position.avg_open_price() else {
            return Vec::new();
        };
        // One exit at a time: wait while an exit order is working.
        if ctx
            .open_orders
            .iter()
            .any(|o| o.instrument_id == quote.instrument_id)
        {
            return Vec::new();
        }
        let mid = quote.mid();
        let long = position.quantity > Decimal::ZERO;
        // Move in favour of the position, as a fraction of the average price.
        let gain = if long {
            (mid - avg) / avg
        } else {
            (avg - mid) / avg
        };
        let stop = self.params.stop_loss_pct.is_some_and(|sl| gain <= -sl);
        let target = self.params.take_profit_pct.is_some_and(|tp| gain >= tp);
        if !(stop || target) {
            return Vec::new();
        }
        let Ok(quantity) = Quantity::new(position.quantity.abs()) else {
            return Vec::new();
        };
        vec![StrategyCommand::Submit(StrategyOrder {
            instrument_id: quote.instrument_id.clone(),
            side: if long { Side::Sell } else { Side::Buy },
            order_type: OrderType::Market,
            quantity,
            price: None,
            time_in_force: TimeInForce::Ioc,
            reduce_only: true,
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
            StopLossTakeProfit::factory(),
            serde_json::json!({"stop_loss_pct": "0.05", "take_profit_pct": "0.10"}),
        )
    }

    #[test]
    fn stop_loss_closes_a_long() {
        let mut s = script();
        s.hold("10", "100.00");
        assert!(s.quote(quote("96.00", "96.02")).is_empty());
        let out = s.quote(quote("94.99", "95.00"));
        assert!(
            matches!(&out[0], StrategyCommand::Submit(o) if o.side == Side::Sell && o.reduce_only && o.quantity.get() == Decimal::TEN)
        );
    }

    #[test]
    fn take_profit_closes_a_short() {
        let mut s = script();
        s.hold("-4", "50.00");
        assert!(s.quote(quote("47.00", "47.02")).is_empty());
        let out = s.quote(quote("44.99", "45.00"));
        assert!(
            matches!(&out[0], StrategyCommand::Submit(o) if o.side == Side::Buy && o.quantity.get() == Decimal::from(4))
        );
    }

    #[test]
    fn no_position_no_orders_and_params_checked() {
        let mut s = script();
        assert!(s.quote(quote("1.00", "1.02")).is_empty());
        use crate::strategy::StrategyFactory;
        let f = StopLossTakeProfit::factory();
        assert!(f.validate(&serde_json::json!({}), &[]).is_err());
        assert!(
            f.validate(&serde_json::json!({"stop_loss_pct": "1.5"}), &[])
                .is_err()
        );
        assert!(
            f.validate(&serde_json::json!({"take_profit_pct": "0.2"}), &[])
                .is_ok()
        );
    }
}
