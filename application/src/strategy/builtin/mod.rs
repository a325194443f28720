//! The built-in strategy types.

mod mean_reversion;
mod per_instrument;
mod price_alert;
mod sltp;
mod twap;

pub use mean_reversion::MeanReversion;
pub use price_alert::PriceAlert;
pub use sltp::StopLossTakeProfit;
pub use twap::Twap;

use per_instrument::PerInstrument;

use ordermon_domain::ids::InstrumentId;
use ordermon_domain::strategy::Strategy as StrategyConfig;

use super::{Strategy, StrategyFactory};
use crate::error::FieldError;

type Validate = fn(&serde_json::Value, &[InstrumentId]) -> Result<(), Vec<FieldError>>;
type Create = fn(&StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>>;

/// A factory made of two functions, for the built-in types.
#[derive(Debug, Clone, Copy)]
pub struct FnFactory {
    name: &'static str,
    description: &'static str,
    validate: Validate,
    create: Create,
}

impl StrategyFactory for FnFactory {
    fn type_name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn validate(
        &self,
        params: &serde_json::Value,
        instruments: &[InstrumentId],
    ) -> Result<(), Vec<FieldError>> {
        (self.validate)(params, instruments)
    }
    fn create(&self, config: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        (self.create)(config)
    }
}

fn single_instrument(instruments: &[InstrumentId]) -> Result<InstrumentId, Vec<FieldError>> {
    match instruments {
        [one] => Ok(one.clone()),
        _ => Err(vec![FieldError::new(
            "instruments",
            "this strategy type trades exactly one instrument",
        )]),
    }
}

#[cfg(test)]
pub(crate) mod testing;
