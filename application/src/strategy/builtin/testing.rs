//! A driver for scripted strategy tests: feeds quotes and timers to one
//! strategy with a controllable clock and positions.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::position::Position;
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};
use ordermon_domain::values::{Currency, Price, Quantity};

use super::FnFactory;
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, StrategyFactory};

pub(crate) fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

pub(crate) fn quote(bid: &str, ask: &str) -> Quote {
    Quote {
        instrument_id: acme(),
        bid: Price::from_str(bid).unwrap(),
        ask: Price::from_str(ask).unwrap(),
        bid_size: Quantity::from_str("100").unwrap(),
        ask_size: Quantity::from_str("100").unwrap(),
        ts: Utc::now(),
    }
}

pub(crate) struct Script {
    strategy: Box<dyn Strategy>,
    id: StrategyId,
    user: UserId,
    now: DateTime<Utc>,
    positions: HashMap<InstrumentId, Position>,
}

impl Script {
    pub(crate) fn new(factory: FnFactory, params: serde_json::Value) -> Self {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 9, 30, 0).unwrap();
        let config = StrategyConfig {
            id: StrategyId::new("s1").unwrap(),
            user_id: UserId::new("alice").unwrap(),
            strategy_type: factory.type_name().to_owned(),
            name: "test".to_owned(),
            instruments: vec![acme()],
            params,
            status: StrategyStatus::Enabled,
            stats: Default::default(),
            created_at: now,
            updated_at: now,
            version: 1,
            sequence: 1,
        };
        factory
            .validate(&config.params, &config.instruments)
            .unwrap();
        Self {
            strategy: factory.create(&config).unwrap(),
            id: config.id,
            user: config.user_id,
            now,
            positions: HashMap::new(),
        }
    }

    fn run(
        &mut self,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) -> Vec<StrategyCommand> {
        let ctx = StrategyContext {
            strategy_id: &self.id,
            user_id: &self.user,
            now: self.now,
            positions: &self.positions,
            open_orders: &[],
        };
        f(self.strategy.as_mut(), &ctx)
    }

    pub(crate) fn quote(&mut self, q: Quote) -> Vec<StrategyCommand> {
        self.run(|s, ctx| s.on_quote(ctx, &q))
    }

    pub(crate) fn start(&mut self) -> Vec<StrategyCommand> {
        self.run(|s, ctx| s.on_start(ctx))
    }

    pub(crate) fn timer(&mut self) -> Vec<StrategyCommand> {
        self.run(|s, ctx| s.on_timer(ctx))
    }

    pub(crate) fn advance_secs(&mut self, secs: i64) {
        self.now += Duration::seconds(secs);
    }

    pub(crate) fn update(&mut self, params: serde_json::Value) -> Result<(), Vec<FieldError>> {
        self.strategy.update_params(&params)
    }

    /// Sets the position to `qty` bought at `px`.
    pub(crate) fn hold(&mut self, qty: &str, px: &str) {
        let q = Decimal::from_str(qty).unwrap();
        let mut p = Position::flat(
            self.user.clone(),
            acme(),
            Currency::new("USD").unwrap(),
            Decimal::ONE,
            self.now,
        );
        p.quantity = q;
        p.cost = q * Decimal::from_str(px).unwrap();
        self.positions.insert(acme(), p);
    }
}
