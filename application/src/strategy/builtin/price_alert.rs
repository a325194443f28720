//! `price_alert`: raises an alert when an instrument's price crosses a level.

use std::collections::BTreeMap;

use ordermon_domain::Decimal;
use ordermon_domain::alert::Severity;
use ordermon_domain::market::Quote;
use ordermon_domain::values::decimal_string;
use serde::Deserialize;

use super::{FnFactory, PerInstrument};
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, parse_params};

/// Which crossings alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Direction {
    /// Price moves from below the level to at or above it.
    Above,
    /// Price moves from at or above the level to below it.
    Below,
    /// Either.
    #[default]
    Cross,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(with = "decimal_string")]
    level: Decimal,
    #[serde(default)]
    direction: Direction,
    #[serde(default = "warning")]
    severity: Severity,
}

fn warning() -> Severity {
    Severity::Warning
}

fn parse(params: &serde_json::Value) -> Result<Params, Vec<FieldError>> {
    let p: Params = parse_params(params)?;
    if p.level <= Decimal::ZERO {
        return Err(vec![FieldError::new("params.level", "must be positive")]);
    }
    Ok(p)
}

/// Alerts on price crossings of a level, for each of its instruments.
#[derive(Debug)]
pub struct PriceAlert {
    params: Params,
    above: PerInstrument<bool>,
}

impl PriceAlert {
    /// The factory registered as `price_alert`.
    #[must_use]
    pub fn factory() -> FnFactory {
        FnFactory {
            name: "price_alert",
            description: "alert when the mid price crosses `level` (`direction`: above|below|cross, `severity`)",
            validate: |p, _| parse(p).map(|_| ()),
            create: |c| {
                Ok(Box::new(Self {
                    params: parse(&c.params)?,
                    above: PerInstrument::default(),
                }))
            },
        }
    }
}

impl Strategy for PriceAlert {
    fn uses_timer(&self) -> bool {
        false
    }

    fn on_quote(&mut self, ctx: &StrategyContext<'_>, quote: &Quote) -> Vec<StrategyCommand> {
        let mid = quote.mid();
        let now_above = mid >= self.params.level;
        let before = self.above.replace(&quote.instrument_id, now_above);
        let crossed = match (before, self.params.direction) {
            (Some(false), Direction::Above | Direction::Cross) => now_above,
            (Some(true), Direction::Below | Direction::Cross) => !now_above,
            _ => false,
        };
        if !crossed {
            return Vec::new();
        }
        let word = if now_above { "above" } else { "below" };
        let mut labels = BTreeMap::new();
        labels.insert("instrument_id".to_owned(), quote.instrument_id.to_string());
        labels.insert("strategy_id".to_owned(), ctx.strategy_id.to_string());
        labels.insert("direction".to_owned(), word.to_owned());
        vec![StrategyCommand::RaiseAlert {
            rule: "price_alert".to_owned(),
            severity: self.params.severity,
            summary: format!(
                "{} crossed {word} {} (mid {mid})",
                quote.instrument_id, self.params.level
            ),
            labels,
        }]
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

    #[test]
    fn alerts_on_each_crossing_only() {
        let mut s = Script::new(PriceAlert::factory(), serde_json::json!({"level": "100"}));
        assert!(
            s.quote(quote("99.00", "99.02")).is_empty(),
            "first quote only arms"
        );
        assert!(s.quote(quote("99.50", "99.52")).is_empty());
        let up = s.quote(quote("100.00", "100.02"));
        assert_eq!(up.len(), 1);
        assert!(
            matches!(&up[0], StrategyCommand::RaiseAlert { summary, .. } if summary.contains("above"))
        );
        assert!(
            s.quote(quote("101.00", "101.02")).is_empty(),
            "no repeat while above"
        );
        let down = s.quote(quote("98.00", "98.02"));
        assert!(
            matches!(&down[0], StrategyCommand::RaiseAlert { summary, .. } if summary.contains("below"))
        );
    }

    #[test]
    fn direction_filters() {
        let mut s = Script::new(
            PriceAlert::factory(),
            serde_json::json!({"level": "100", "direction": "below", "severity": "critical"}),
        );
        s.quote(quote("99.00", "99.02"));
        assert!(s.quote(quote("100.00", "100.02")).is_empty());
        let down = s.quote(quote("98.00", "98.02"));
        assert!(matches!(
            &down[0],
            StrategyCommand::RaiseAlert {
                severity: Severity::Critical,
                ..
            }
        ));
    }

    #[test]
    fn params_are_validated() {
        let f = PriceAlert::factory();
        use crate::strategy::StrategyFactory;
        assert!(f.validate(&serde_json::json!({"level": "0"}), &[]).is_err());
        assert!(
            f.validate(&serde_json::json!({"level": 100}), &[]).is_err(),
            "numbers refused"
        );
        let e = f
            .validate(&serde_json::json!({"level": "1", "bogus": 1}), &[])
            .unwrap_err();
        assert_eq!(e[0].field, "params.bogus");
        assert!(f.validate(&serde_json::json!({}), &[]).is_err());
    }
}
