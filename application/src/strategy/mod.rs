//! The strategy framework: strategies react to quotes, bars, order events and
//! timers by returning commands; they never do I/O. The user's owner executes
//! the commands (risk checks, reservations and persistence included), so a
//! strategy can never bypass pre-trade risk.

mod builtin;
mod registry;

pub use builtin::{MeanReversion, PriceAlert, StopLossTakeProfit, Twap};
pub use registry::StrategyRegistry;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::Severity;
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::market::{Bar, Quote};
use ordermon_domain::order::{Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::OrderChange;
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy as StrategyConfig;
use ordermon_domain::values::{Price, Quantity};

use crate::error::FieldError;

/// An order a strategy wants placed. The owner fills in the user, the strategy
/// id and a unique client order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyOrder {
    /// What to trade.
    pub instrument_id: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Pricing type.
    pub order_type: OrderType,
    /// Quantity.
    pub quantity: Quantity,
    /// Limit price.
    pub price: Option<Price>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Only reduce a position.
    pub reduce_only: bool,
}

/// What a strategy asks the owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyCommand {
    /// Place an order.
    Submit(StrategyOrder),
    /// Modify one of the strategy's orders.
    Modify {
        /// The order.
        order_id: OrderId,
        /// The change.
        change: OrderChange,
    },
    /// Cancel one of the strategy's orders.
    Cancel {
        /// The order.
        order_id: OrderId,
    },
    /// Raise an alert.
    RaiseAlert {
        /// Rule name (e.g. `price_alert`).
        rule: String,
        /// Severity.
        severity: Severity,
        /// One-line summary.
        summary: String,
        /// Extra identifying labels.
        labels: BTreeMap<String, String>,
    },
}

/// What a strategy may look at when it decides.
#[derive(Debug, Clone, Copy)]
pub struct StrategyContext<'a> {
    /// The strategy.
    pub strategy_id: &'a StrategyId,
    /// Its owner.
    pub user_id: &'a UserId,
    /// Now.
    pub now: DateTime<Utc>,
    /// The owner's positions, by instrument.
    pub positions: &'a std::collections::HashMap<InstrumentId, Position>,
    /// The strategy's own open orders.
    pub open_orders: &'a [&'a Order],
}

impl StrategyContext<'_> {
    /// Signed position quantity in an instrument (zero when none).
    #[must_use]
    pub fn position_qty(&self, instrument: &InstrumentId) -> ordermon_domain::Decimal {
        self.positions
            .get(instrument)
            .map_or(ordermon_domain::Decimal::ZERO, |p| p.quantity)
    }
}

/// A running strategy instance. Every callback returns commands; the defaults do nothing.
pub trait Strategy: Send + std::fmt::Debug {
    /// Called once when the strategy starts (and after a restart).
    fn on_start(&mut self, _ctx: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// A new quote for one of the strategy's instruments.
    fn on_quote(&mut self, _ctx: &StrategyContext<'_>, _quote: &Quote) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// A new bar.
    fn on_bar(&mut self, _ctx: &StrategyContext<'_>, _bar: &Bar) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// An event of one of the strategy's orders.
    fn on_order_event(
        &mut self,
        _ctx: &StrategyContext<'_>,
        _order: &Order,
        _event: &OrderEvent,
    ) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// A periodic timer tick (about once a second), for a strategy whose
    /// [`Strategy::uses_timer`] says so.
    fn on_timer(&mut self, _ctx: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// Whether [`Strategy::on_timer`] does anything: asked once when the
    /// strategy starts. A monitor none of whose strategies uses the timer is
    /// woken only for its health checks, every few ticks, which at tens of
    /// thousands of monitors is most of the cost of ticking them. True
    /// unless a strategy says otherwise.
    fn uses_timer(&self) -> bool {
        true
    }
    /// Called once when the strategy stops.
    fn on_stop(&mut self, _ctx: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        Vec::new()
    }
    /// Applies new parameters without a restart.
    ///
    /// # Errors
    /// The invalid fields; nothing changes then.
    fn update_params(&mut self, params: &serde_json::Value) -> Result<(), Vec<FieldError>>;
}

/// Builds strategies of one type and validates their parameters.
pub trait StrategyFactory: Send + Sync + std::fmt::Debug {
    /// The registry key (`price_alert`, `twap`, …).
    fn type_name(&self) -> &'static str;
    /// One line describing the type and its params.
    fn description(&self) -> &'static str;
    /// Checks params (and the instruments they need) without building anything.
    ///
    /// # Errors
    /// Every invalid field.
    fn validate(
        &self,
        params: &serde_json::Value,
        instruments: &[InstrumentId],
    ) -> Result<(), Vec<FieldError>>;
    /// Builds a running instance from a stored configuration.
    ///
    /// # Errors
    /// Every invalid field (a stored config that no longer validates).
    fn create(&self, config: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>>;
}

/// Parses a strategy's params into its typed form, naming the bad field.
///
/// # Errors
/// One field error for the first problem serde reports.
pub fn parse_params<T: serde::de::DeserializeOwned>(
    params: &serde_json::Value,
) -> Result<T, Vec<FieldError>> {
    serde_json::from_value(params.clone()).map_err(|e| {
        let msg = e.to_string();
        // serde names the field in "unknown field `x`" / "missing field `x`".
        let field = msg
            .split('`')
            .nth(1)
            .map_or_else(|| "params".to_owned(), |f| format!("params.{f}"));
        vec![FieldError::new(field, msg)]
    })
}
