//! Alert rules: a condition over one signal, held for a `for` duration, with a
//! severity, labels and annotations. A rule's condition is one of
//!
//! - a **threshold**: the signal compared with a value (`reject_ratio >= 0.5`);
//! - a **detector**: an anomaly detector over the signal's samples (optionally
//!   with a floor the value must also pass, so an idle series never pages);
//! - a **baseline**: the signal compared with a multiple of its own slow
//!   moving average (`fill_ratio < 0.5 × usual`);
//! - a **prediction**: a linear trend of the signal reaching a limit within a
//!   horizon (time until the position limit is reached);
//! - an **isolation forest** over the user's order-flow vector.
//!
//! Rules come from the built-in catalogue ([`super::catalog`]) with settings
//! from configuration, from `[[alerting.rules]]`, and per user from overrides
//! set through the API. Every rule is validated at start and at the API; an
//! error names the rule and the field.

mod condition;
mod config;
mod op;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::alert::{RuleOverride, Severity};
use ordermon_domain::ids::RuleName;

use super::signal::{Signal, SignalScope};

pub use self::condition::Condition;
pub use self::config::{BaselineSpec, BuiltinSettings, PredictSpec, RuleConfig};
pub use self::op::Op;

/// Longest window a windowed signal can cover (the series keep this much).
pub const MAX_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest `for` duration.
pub const MAX_FOR: Duration = Duration::from_secs(24 * 3600);

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Name.
    pub name: RuleName,
    /// Signal.
    pub signal: Signal,
    /// Window (windowed signals; otherwise unused).
    pub window: Duration,
    /// Condition.
    pub condition: Condition,
    /// Minimum orders for per-order ratios (0 = none).
    pub min_count: u32,
    /// `for` duration.
    pub for_duration: Duration,
    /// Severity.
    pub severity: Severity,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, String>,
    /// Off when false.
    pub enabled: bool,
    /// From the built-in catalogue.
    pub builtin: bool,
    /// A threshold condition's value as `f64`, to compare statistics with
    /// (kept in step with the condition by the constructors).
    pub threshold_f64: f64,
}

/// Why a rule was refused: names the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert rule `{rule}`: {field}: {message}")]
pub struct RuleError {
    /// The rule.
    pub rule: String,
    /// The field (`threshold`, `window`, `labels.x`, …).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(
        rule: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule: rule.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Rule {
    /// The scope of the rule's series.
    #[must_use]
    pub fn scope(&self) -> SignalScope {
        self.signal.scope()
    }

    /// The rule with one user's override applied (threshold, `for`,
    /// severity, enabled). A threshold override of a prediction moves its limit.
    #[must_use]
    pub fn overridden(&self, o: &RuleOverride) -> Self {
        let mut r = self.clone();
        if let Some(e) = o.enabled {
            r.enabled = e;
        }
        if let Some(t) = o.threshold {
            match &mut r.condition {
                Condition::Threshold { value, .. } => *value = t,
                Condition::Detector { floor, .. } => {
                    *floor = Some((floor.map_or(Op::Ge, |(op, _)| op), t));
                }
                Condition::Predict(p) => p.limit = t,
                Condition::Baseline { .. } | Condition::Forest(_) => {}
            }
        }
        if let Some(f) = o.for_duration {
            r.for_duration = f;
        }
        if let Some(s) = o.severity {
            r.severity = s;
        }
        r.with_fast_threshold()
    }

    fn with_fast_threshold(mut self) -> Self {
        use rust_decimal::prelude::ToPrimitive;
        self.threshold_f64 = match &self.condition {
            // (Never NaN, so rules still compare equal to themselves.)
            Condition::Threshold { value, .. } => value.to_f64().unwrap_or(f64::MAX),
            _ => 0.0,
        };
        self
    }
}

#[cfg(test)]
mod tests;
