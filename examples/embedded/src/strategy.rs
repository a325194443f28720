//! A strategy type of the embedder's: `momentum` buys after a run of rising
//! quotes and sells what it holds after a run of falling ones.
//!
//! Like every strategy it only returns commands; the user's owner runs them
//! through pre-trade risk, so it cannot oversell or spend cash the user lacks.

use std::collections::HashMap;

use ordermon_application::FieldError;
use ordermon_application::strategy::{
    Strategy, StrategyCommand, StrategyContext, StrategyFactory, StrategyOrder, parse_params,
};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::strategy::Strategy as StrategyConfig;
use ordermon_domain::values::Quantity;
use rust_decimal::Decimal;
use serde::Deserialize;

/// The type's name: strategies with `"type": "momentum"` run it.
pub const MOMENTUM: &str = "momentum";

/// `momentum`'s params.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumParams {
    /// What one order trades.
    pub quantity: Quantity,
    /// Consecutive rising (or falling) mid prices that make a signal.
    pub run: u32,
    /// The largest long position it builds.
    pub max_position: Quantity,
}

fn parse(params: &serde_json::Value) -> Result<MomentumParams, Vec<FieldError>> {
    let p: MomentumParams = parse_params(params)?;
    let mut errors = Vec::new();
    if p.quantity.get().is_zero() {
        errors.push(FieldError::new("params.quantity", "must be positive"));
    }
    if p.run == 0 || p.run > 1000 {
        errors.push(FieldError::new("params.run", "must be 1-1000"));
    }
    if p.max_position.get() < p.quantity.get() {
        errors.push(FieldError::new(
            "params.max_position",
            "must be at least params.quantity",
        ));
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

/// Registers `momentum` (see [`ordermon::AppBuilder::strategy`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct MomentumFactory;

impl StrategyFactory for MomentumFactory {
    fn type_name(&self) -> &'static str {
        MOMENTUM
    }

    fn description(&self) -> &'static str {
        "buy `quantity` at market after `run` rising mids (up to `max_position`), sell it after `run` falling ones"
    }

    fn validate(
        &self,
        params: &serde_json::Value,
        _instruments: &[InstrumentId],
    ) -> Result<(), Vec<FieldError>> {
        parse(params).map(|_| ())
    }

    fn create(&self, config: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        Ok(Box::new(Momentum {
            params: parse(&config.params)?,
            runs: HashMap::new(),
        }))
    }
}

/// The last mid of an instrument and the signed length of the run ending
/// there (positive: rising).
#[derive(Debug, Clone, Copy)]
struct Run {
    mid: Decimal,
    length: i64,
}

/// A running `momentum` strategy.
#[derive(Debug)]
pub struct Momentum {
    params: MomentumParams,
    runs: HashMap<InstrumentId, Run>,
}

impl Momentum {
    fn market(&self, quote: &Quote, side: Side, reduce_only: bool) -> StrategyCommand {
        StrategyCommand::Submit(StrategyOrder {
            instrument_id: quote.instrument_id.clone(),
            side,
            order_type: OrderType::Market,
            quantity: self.params.quantity,
            price: None,
            time_in_force: TimeInForce::Ioc,
            reduce_only,
        })
    }
}

impl Strategy for Momentum {
    fn on_quote(&mut self, ctx: &StrategyContext<'_>, quote: &Quote) -> Vec<StrategyCommand> {
        let mid = quote.mid();
        let run = self
            .runs
            .entry(quote.instrument_id.clone())
            .or_insert(Run { mid, length: 0 });
        run.length = match mid.cmp(&run.mid) {
            std::cmp::Ordering::Greater => run.length.max(0) + 1,
            std::cmp::Ordering::Less => run.length.min(0) - 1,
            std::cmp::Ordering::Equal => run.length,
        };
        run.mid = mid;
        let length = run.length;
        // One order at a time: the last one is still working.
        if !ctx.open_orders.is_empty() {
            return Vec::new();
        }
        let held = ctx.position_qty(&quote.instrument_id);
        let signal = i64::from(self.params.run);
        let command = if length >= signal
            && held + self.params.quantity.get() <= self.params.max_position.get()
        {
            self.market(quote, Side::Buy, false)
        } else if length <= -signal && held >= self.params.quantity.get() {
            self.market(quote, Side::Sell, true)
        } else {
            return Vec::new();
        };
        // A new run must build up before the next signal.
        if let Some(run) = self.runs.get_mut(&quote.instrument_id) {
            run.length = 0;
        }
        vec![command]
    }

    fn update_params(&mut self, params: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        self.params = parse(params)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_field_by_field() {
        let f = MomentumFactory;
        let ok = serde_json::json!({"quantity": "1", "run": 3, "max_position": "5"});
        assert!(f.validate(&ok, &[]).is_ok());
        let bad = serde_json::json!({"quantity": "0", "run": 0, "max_position": "5"});
        let fields: Vec<String> = f
            .validate(&bad, &[])
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["params.quantity", "params.run"]);
        let unknown = serde_json::json!({"quantity": "1", "run": 3, "max_position": "5", "x": 1});
        assert!(f.validate(&unknown, &[]).is_err());
    }
}
