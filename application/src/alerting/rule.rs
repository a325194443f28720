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

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::Decimal;
use ordermon_domain::alert::matcher::check_labels;
use ordermon_domain::alert::{RuleOverride, Severity};
use ordermon_domain::ids::RuleName;
use serde::{Deserialize, Serialize};

use super::detect::{DetectorSpec, IsolationForestConfig};
use super::signal::{Signal, SignalScope};

/// Longest window a windowed signal can cover (the series keep this much).
pub const MAX_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest `for` duration.
pub const MAX_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longest annotation template.
const MAX_ANNOTATION: usize = 2048;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `>`.
    #[serde(rename = ">")]
    Gt,
    /// `>=`.
    #[serde(rename = ">=")]
    Ge,
    /// `<`.
    #[serde(rename = "<")]
    Lt,
    /// `<=`.
    #[serde(rename = "<=")]
    Le,
    /// `==`.
    #[serde(rename = "==")]
    Eq,
    /// `!=`.
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// Applies the comparison to statistics (`false` for NaN).
    #[must_use]
    pub fn holds_f64(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            #[allow(clippy::float_cmp)]
            Self::Eq => value == threshold,
            #[allow(clippy::float_cmp)]
            Self::Ne => value != threshold,
        }
    }

    /// Applies the comparison.
    #[must_use]
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }

    /// As written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

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

/// What a rule tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `value op threshold`.
    Threshold {
        /// The comparison.
        op: Op,
        /// The threshold.
        value: Decimal,
    },
    /// A detector flags the latest sample (and the value passes the floor).
    Detector {
        /// The detector.
        spec: DetectorSpec,
        /// `value op threshold` the value must also meet.
        floor: Option<(Op, Decimal)>,
    },
    /// `value op ratio × baseline`.
    Baseline {
        /// The comparison.
        op: Op,
        /// The baseline.
        spec: BaselineSpec,
    },
    /// The trend reaches the limit within the horizon.
    Predict(PredictSpec),
    /// The isolation forest scores the latest order-flow vector as unusual.
    Forest(IsolationForestConfig),
}

impl Condition {
    /// True when the condition is decided on samples taken every
    /// `alerting.sample_interval` rather than at every evaluation.
    #[must_use]
    pub fn sampled(&self) -> bool {
        !matches!(self, Self::Threshold { .. })
    }

    /// The threshold the value is shown against in annotations.
    #[must_use]
    pub fn threshold(&self) -> Option<Decimal> {
        match self {
            Self::Threshold { value, .. } => Some(*value),
            Self::Detector { floor, .. } => floor.map(|(_, v)| v),
            Self::Predict(p) => Some(p.limit),
            Self::Baseline { .. } | Self::Forest(_) => None,
        }
    }

    /// A short text for listings: `>= 0.5`, `zscore`, `< 0.5 x baseline`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Threshold { op, value } => format!("{} {value}", op.as_str()),
            Self::Detector { spec, floor } => match floor {
                Some((op, v)) => format!("{} and {} {v}", spec.kind(), op.as_str()),
                None => spec.kind().to_owned(),
            },
            Self::Baseline { op, spec } => format!("{} {} x baseline", op.as_str(), spec.ratio),
            Self::Predict(p) => format!(
                "reaches {} within {}",
                p.limit,
                ordermon_domain::duration::format(p.within)
            ),
            Self::Forest(_) => "isolation_forest".to_owned(),
        }
    }
}

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

/// Labels the service sets itself; a rule may not set them.
const RESERVED_LABELS: &[&str] = &[
    "rule",
    "severity",
    "user_id",
    "instrument_id",
    "venue",
    "strategy_id",
    "instance",
];

impl RuleConfig {
    /// Validates the rule.
    ///
    /// # Errors
    /// The first problem, naming the rule and field.
    pub fn validate(&self, builtin: bool) -> Result<Rule, RuleError> {
        let err = |field: &str, message: String| RuleError::new(&self.name, field, message);
        let name = RuleName::new(self.name.clone()).map_err(|e| err("name", e.to_string()))?;
        let signal = self.signal;
        let window = match (signal.windowed(), self.window) {
            (true, w) => {
                let w = w.unwrap_or(Duration::from_secs(60));
                if w < Duration::from_secs(1) || w > MAX_WINDOW {
                    return Err(err("window", "must be between 1s and 15m".to_owned()));
                }
                w
            }
            (false, None) => Duration::ZERO,
            (false, Some(_)) => {
                return Err(err(
                    "window",
                    format!("signal `{signal}` is not windowed; remove the window"),
                ));
            }
        };
        let conditions = [
            self.detector.is_some(),
            self.baseline.is_some(),
            self.predict.is_some(),
            self.isolation_forest.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if conditions > 1 {
            return Err(err(
                "condition",
                "use one of detector, baseline, predict, isolation_forest".to_owned(),
            ));
        }
        let op = self.op.unwrap_or(Op::Ge);
        let condition = if let Some(spec) = &self.detector {
            if signal.multivariate() {
                return Err(err(
                    "detector",
                    "the order_flow signal takes isolation_forest".to_owned(),
                ));
            }
            spec.validate()
                .map_err(|e| err("detector", e.to_string()))?;
            Condition::Detector {
                spec: spec.clone(),
                floor: self.threshold.map(|t| (op, t)),
            }
        } else if let Some(spec) = self.baseline {
            if self.threshold.is_some() {
                return Err(err(
                    "threshold",
                    "a baseline rule compares with baseline.ratio; remove threshold".to_owned(),
                ));
            }
            let ok = spec.ratio.is_finite()
                && spec.ratio > 0.0
                && spec.alpha.is_finite()
                && spec.alpha > 0.0
                && spec.alpha <= 1.0;
            if !ok {
                return Err(err(
                    "baseline",
                    "ratio must be positive and 0 < alpha <= 1".to_owned(),
                ));
            }
            Condition::Baseline {
                op: self.op.unwrap_or(Op::Lt),
                spec,
            }
        } else if let Some(spec) = self.predict {
            if self.threshold.is_some() || self.op.is_some() {
                return Err(err(
                    "threshold",
                    "a prediction uses predict.limit; remove threshold and op".to_owned(),
                ));
            }
            if spec.within.is_zero() || spec.fit_window < Duration::from_secs(10) {
                return Err(err(
                    "predict",
                    "within must be positive and fit_window at least 10s".to_owned(),
                ));
            }
            Condition::Predict(spec)
        } else if let Some(cfg) = &self.isolation_forest {
            if !signal.multivariate() {
                return Err(err(
                    "isolation_forest",
                    "only the order_flow signal takes an isolation forest".to_owned(),
                ));
            }
            cfg.validate()
                .map_err(|e| err("isolation_forest", e.to_string()))?;
            Condition::Forest(cfg.clone())
        } else {
            if signal.multivariate() {
                return Err(err(
                    "isolation_forest",
                    "the order_flow signal needs an isolation_forest".to_owned(),
                ));
            }
            let value = self.threshold.ok_or_else(|| {
                err(
                    "threshold",
                    "required (or give a detector, baseline or predict)".to_owned(),
                )
            })?;
            Condition::Threshold { op, value }
        };
        if condition.sampled()
            && matches!(
                signal.scope(),
                SignalScope::UserVenue | SignalScope::Strategy | SignalScope::Venue
            )
        {
            return Err(err(
                "condition",
                format!(
                    "`{signal}` is a {} signal: only thresholds apply to it",
                    signal.scope().as_str()
                ),
            ));
        }
        if self.min_count.is_some() && !signal.per_order() {
            return Err(err(
                "min_count",
                format!("only per-order ratios take min_count, not `{signal}`"),
            ));
        }
        if self.for_duration > MAX_FOR {
            return Err(err("for", "must be at most 24h".to_owned()));
        }
        check_labels(&self.labels).map_err(|e| err("labels", e.to_string()))?;
        if let Some(k) = self
            .labels
            .keys()
            .find(|k| RESERVED_LABELS.contains(&k.as_str()))
        {
            return Err(err(
                &format!("labels.{k}"),
                "set by the service; choose another name".to_owned(),
            ));
        }
        for (k, v) in &self.annotations {
            ordermon_domain::alert::matcher::check_label_name(k)
                .map_err(|e| err("annotations", e.to_string()))?;
            if v.chars().count() > MAX_ANNOTATION {
                return Err(err(
                    &format!("annotations.{k}"),
                    "longer than 2048 characters".to_owned(),
                ));
            }
        }
        Ok(Rule {
            name,
            signal,
            window,
            condition,
            min_count: self.min_count.unwrap_or(0),
            for_duration: self.for_duration,
            severity: self.severity,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            enabled: self.enabled,
            builtin,
            threshold_f64: 0.0,
        }
        .with_fast_threshold())
    }

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

    /// Checks that an override fits this rule.
    ///
    /// # Errors
    /// A threshold on a rule that has none, or a `for` beyond 24 h.
    pub fn check_override(&self, o: &RuleOverride) -> Result<(), RuleError> {
        if o.threshold.is_some()
            && matches!(
                self.condition,
                Condition::Baseline { .. } | Condition::Forest(_)
            )
        {
            return Err(RuleError::new(
                self.name.as_str(),
                "threshold",
                "this rule has no threshold to override",
            ));
        }
        if o.for_duration.is_some_and(|f| f > MAX_FOR) {
            return Err(RuleError::new(
                self.name.as_str(),
                "for",
                "must be at most 24h",
            ));
        }
        if !self.scope().is_user() {
            return Err(RuleError::new(
                self.name.as_str(),
                "rule",
                "not a per-user rule; it cannot be overridden per user",
            ));
        }
        Ok(())
    }
}

/// Decimals in configuration: a string (`"0.5"`), or for convenience a TOML
/// integer or float (read through its shortest decimal text).
pub(crate) mod config_decimal {
    use std::str::FromStr;

    use ordermon_domain::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Float(f64),
    }

    fn convert<E: serde::de::Error>(raw: Raw) -> Result<Decimal, E> {
        let text = match raw {
            Raw::Text(t) => t,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) if f.is_finite() => f.to_string(),
            Raw::Float(_) => return Err(E::custom("a finite number expected")),
        };
        Decimal::from_str(text.trim())
            .map_err(|_| E::custom(format!("bad decimal `{text}` (write e.g. \"0.5\")")))
    }

    pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        convert(Raw::deserialize(d)?)
    }

    pub(crate) mod option {
        use ordermon_domain::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Decimal>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(d),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Decimal>, D::Error> {
            Option::<super::Raw>::deserialize(d)?
                .map(super::convert)
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Result<Rule, RuleError> {
        // `;` separates keys on one line in the cases below.
        let text = toml_text.replace(';', "\n");
        let c: RuleConfig =
            toml::from_str(&text).map_err(|e| RuleError::new("?", "toml", e.to_string()))?;
        c.validate(false)
    }

    #[test]
    fn a_threshold_rule_from_toml() {
        let r = rule(
            r#"
            name = "big_rejects"
            signal = "reject_ratio"
            window = "5m"
            threshold = 0.4
            min_count = 20
            for = "1m"
            severity = "critical"
            labels = { team = "risk" }
            annotations = { summary = "{{value}} rejected" }
            "#,
        )
        .unwrap();
        assert_eq!(r.window, Duration::from_secs(300));
        assert_eq!(
            r.condition,
            Condition::Threshold {
                op: Op::Ge,
                value: Decimal::new(4, 1)
            }
        );
        assert_eq!((r.min_count, r.severity), (20, Severity::Critical));
        assert_eq!(r.for_duration, Duration::from_secs(60));
    }

    #[test]
    fn bad_rules_are_refused_naming_rule_and_field() {
        let cases = [
            (r#"name = "a"; signal = "orders""#, "threshold"),
            (
                r#"name = "a"; signal = "open_orders"; window = "1m"; threshold = "1""#,
                "window",
            ),
            (
                r#"name = "a"; signal = "orders"; window = "16m"; threshold = "1""#,
                "window",
            ),
            (
                r#"name = "a"; signal = "orders"; threshold = "1"; min_count = 3"#,
                "min_count",
            ),
            (
                r#"name = "a"; signal = "orders"; threshold = "1"; labels = { user_id = "x" }"#,
                "labels.user_id",
            ),
            (
                r#"name = "a"; signal = "orders"; threshold = "1"; labels = { "bad-name" = "x" }"#,
                "labels",
            ),
            (
                r#"name = "a b"; signal = "orders"; threshold = "1""#,
                "name",
            ),
            (
                r#"name = "a"; signal = "orders"; threshold = "1"; for = "2d""#,
                "for",
            ),
            (r#"name = "a"; signal = "order_flow""#, "isolation_forest"),
            (
                r#"name = "a"; signal = "fill_ratio"; threshold = "1"; baseline = { ratio = 0.5 }"#,
                "threshold",
            ),
            (
                r#"name = "a"; signal = "fill_ratio"; baseline = { ratio = 0.5, alpha = 2.0 }"#,
                "baseline",
            ),
            (
                r#"name = "a"; signal = "position_utilization"; predict = { limit = "1", within = "0s" }"#,
                "predict",
            ),
        ];
        for (text, field) in cases {
            let e = rule(text).expect_err(text);
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.to_string().starts_with("alert rule `a"), "{e}");
        }
        // An unknown field is refused by the parser itself.
        assert!(
            rule(r#"name = "a"; signal = "orders"; treshold = "1""#)
                .is_err_and(|e| e.field == "toml")
        );
        assert!(
            rule(r#"name = "a"; signal = "no_such_signal"; threshold = "1""#)
                .is_err_and(|e| e.field == "toml")
        );
    }

    #[test]
    fn overrides_move_the_threshold_for_severity_and_enabled() {
        let r = rule(r#"name = "rate"; signal = "order_rate"; window = "10s"; threshold = "20""#)
            .unwrap();
        let o = RuleOverride {
            rule: r.name.clone(),
            user_id: ordermon_domain::ids::UserId::new("alice").unwrap(),
            enabled: Some(false),
            threshold: Some(Decimal::new(50, 0)),
            for_duration: Some(Duration::from_secs(5)),
            severity: Some(Severity::Critical),
            updated_by: "root".to_owned(),
            updated_at: chrono::Utc::now(),
            version: 1,
        };
        r.check_override(&o).unwrap();
        let e = r.overridden(&o);
        assert!(!e.enabled);
        assert_eq!(e.condition.threshold(), Some(Decimal::new(50, 0)));
        assert_eq!(e.for_duration, Duration::from_secs(5));
        assert_eq!(e.severity, Severity::Critical);
        let sys = rule(r#"name = "dl"; signal = "dead_letters"; threshold = "1""#).unwrap();
        assert_eq!(sys.check_override(&o).unwrap_err().field, "rule");
    }

    #[test]
    fn ops_compare() {
        let (a, b) = (Decimal::ONE, Decimal::TWO);
        assert!(Op::Lt.holds(a, b) && Op::Le.holds(a, a) && Op::Gt.holds(b, a));
        assert!(Op::Ge.holds(b, b) && Op::Eq.holds(a, a) && Op::Ne.holds(a, b));
        assert!(!Op::Gt.holds(a, a));
    }
}
