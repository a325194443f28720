//! Validation: a rule as written becomes a [`Rule`], or a [`RuleError`]
//! naming the rule and the first field that is wrong; a user's override is
//! checked against the rule it changes.

use std::time::Duration;

use ordermon_domain::alert::RuleOverride;
use ordermon_domain::alert::matcher::check_labels;
use ordermon_domain::ids::RuleName;

use super::condition::Condition;
use super::config::RuleConfig;
use super::op::Op;
use super::{MAX_FOR, MAX_WINDOW, Rule, RuleError};
use crate::alerting::signal::SignalScope;

/// Longest annotation template.
const MAX_ANNOTATION: usize = 2048;

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
}

impl Rule {
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
