//! Rules as written in configuration: `[[alerting.rules]]` entries, the specs
//! of their baseline and prediction conditions, and the settings that
//! `[alerting.builtin.NAME]` applies to a built-in rule. Nothing here is
//! checked yet; [`RuleConfig::validate`] makes a [`super::Rule`] of it.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::Decimal;
use ordermon_domain::alert::Severity;
use serde::{Deserialize, Serialize};

use super::op::Op;
use crate::alerting::detect::{DetectorSpec, IsolationForestConfig};
use crate::alerting::signal::Signal;
use crate::config_decimal;

/// Compares a signal with a multiple of its own moving average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    /// The multiple of the baseline the value is compared with (`0.5`).
    pub ratio: f64,
    /// Weight of each new sample in the baseline (0 < alpha ≤ 1).
    #[serde(default = "default_baseline_alpha")]
    pub alpha: f64,
    /// Samples before the baseline is trusted.
    #[serde(default = "default_baseline_samples")]
    pub min_samples: u32,
}

fn default_baseline_alpha() -> f64 {
    0.05
}

fn default_baseline_samples() -> u32 {
    30
}

/// A linear trend reaching a limit within a horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictSpec {
    /// The value the trend must not reach.
    #[serde(deserialize_with = "config_decimal::deserialize")]
    #[serde(serialize_with = "config_decimal::serialize")]
    pub limit: Decimal,
    /// Alert when the limit is reached sooner than this.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub within: Duration,
    /// The samples the trend is fitted over.
    #[serde(with = "ordermon_domain::duration::serde", default = "default_fit")]
    pub fit_window: Duration,
}

fn default_fit() -> Duration {
    Duration::from_secs(600)
}

/// A rule as written in configuration (`[[alerting.rules]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (`[A-Za-z0-9_.-]`).
    pub name: String,
    /// The signal it watches.
    pub signal: Signal,
    /// Window of a windowed signal (default 1 minute; at most 15 minutes).
    #[serde(
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// Comparison for a threshold (default `>=`; for a detector's floor too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// The threshold (or a detector's floor).
    #[serde(
        default,
        with = "config_decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub threshold: Option<Decimal>,
    /// An anomaly detector over the signal's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<DetectorSpec>,
    /// An isolation forest (the `order_flow` signal only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation_forest: Option<IsolationForestConfig>,
    /// A comparison with the signal's own moving average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSpec>,
    /// A forecast of when the signal reaches a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict: Option<PredictSpec>,
    /// Orders the window must hold before a per-order ratio counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default, with = "ordermon_domain::duration::serde")]
    pub for_duration: Duration,
    /// Severity (default `warning`).
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Extra labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotation templates (`summary`, `description`); `{{value}}`,
    /// `{{threshold}}`, `{{window}}` and `{{labels.NAME}}` are filled in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Off when false.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn yes() -> bool {
    true
}

/// Settings of a built-in rule in configuration
/// (`[alerting.builtin.stuck_order]`): every field optional, unset keeps the
/// catalogue's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSettings {
    /// Off when false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Threshold (or floor, or forecast limit for a prediction).
    #[serde(
        default,
        with = "config_decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub threshold: Option<Decimal>,
    /// Window.
    #[serde(
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// `for` duration.
    #[serde(
        rename = "for",
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub for_duration: Option<Duration>,
    /// Severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Minimum orders for per-order ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// Extra labels (added to the rule's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotation templates (replace the rule's of the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl RuleConfig {
    /// The rule with a built-in's settings applied.
    #[must_use]
    pub fn with_settings(mut self, s: &BuiltinSettings) -> Self {
        if let Some(e) = s.enabled {
            self.enabled = e;
        }
        if let Some(t) = s.threshold {
            match &mut self.predict {
                Some(p) => p.limit = t,
                None => self.threshold = Some(t),
            }
        }
        if s.window.is_some() {
            self.window = s.window;
        }
        if let Some(f) = s.for_duration {
            self.for_duration = f;
        }
        if let Some(sev) = s.severity {
            self.severity = sev;
        }
        if s.min_count.is_some() {
            self.min_count = s.min_count;
        }
        if let Some(l) = &s.labels {
            self.labels.extend(l.clone());
        }
        if let Some(a) = &s.annotations {
            self.annotations.extend(a.clone());
        }
        self
    }
}
