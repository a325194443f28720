//! The registry of strategy types, keyed by the `type` name stored with each strategy.

use std::collections::BTreeMap;
use std::sync::Arc;

use ordermon_domain::ids::InstrumentId;
use ordermon_domain::strategy::Strategy as StrategyConfig;

use super::builtin::{MeanReversion, PriceAlert, StopLossTakeProfit, Twap};
use super::{Strategy, StrategyFactory};
use crate::error::FieldError;

/// Strategy types by name.
#[derive(Debug, Clone, Default)]
pub struct StrategyRegistry {
    types: BTreeMap<&'static str, Arc<dyn StrategyFactory>>,
}

impl StrategyRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in types: `price_alert`, `stop_loss_take_profit`, `twap`, `mean_reversion`.
    #[must_use]
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register(Arc::new(PriceAlert::factory()));
        r.register(Arc::new(StopLossTakeProfit::factory()));
        r.register(Arc::new(Twap::factory()));
        r.register(Arc::new(MeanReversion::factory()));
        r
    }

    /// Adds (or replaces) a type.
    pub fn register(&mut self, factory: Arc<dyn StrategyFactory>) {
        self.types.insert(factory.type_name(), factory);
    }

    /// One type.
    #[must_use]
    pub fn get(&self, type_name: &str) -> Option<&Arc<dyn StrategyFactory>> {
        self.types.get(type_name)
    }

    /// Every type's name and description.
    #[must_use]
    pub fn describe(&self) -> Vec<(&'static str, &'static str)> {
        self.types
            .values()
            .map(|f| (f.type_name(), f.description()))
            .collect()
    }

    /// Validates a configuration: a known type, at least one instrument, and
    /// params the type accepts.
    ///
    /// # Errors
    /// Every invalid field.
    pub fn validate(
        &self,
        type_name: &str,
        params: &serde_json::Value,
        instruments: &[InstrumentId],
    ) -> Result<(), Vec<FieldError>> {
        let Some(f) = self.get(type_name) else {
            let known: Vec<_> = self.types.keys().copied().collect();
            return Err(vec![FieldError::new(
                "type",
                format!(
                    "unknown strategy type {type_name:?}; known: {}",
                    known.join(", ")
                ),
            )]);
        };
        if instruments.is_empty() {
            return Err(vec![FieldError::new(
                "instruments",
                "at least one instrument",
            )]);
        }
        f.validate(params, instruments)
    }

    /// Builds an instance for a stored configuration.
    ///
    /// # Errors
    /// Unknown type or invalid params.
    pub fn create(&self, config: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        let f = self.get(&config.strategy_type).ok_or_else(|| {
            vec![FieldError::new(
                "type",
                format!("unknown strategy type {:?}", config.strategy_type),
            )]
        })?;
        f.create(config)
    }
}
