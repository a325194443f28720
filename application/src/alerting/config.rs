//! `[alerting]`: rules, routes, receivers, inhibition, escalation and delivery.
//!
//! The receivers' own settings (URLs, tokens) belong to the notification
//! channels, so the type of a receiver's settings is a parameter: the
//! application only needs their names.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::alert::Severity;
use ordermon_domain::alert::matcher::{Matcher, check_label_name};
use serde::{Deserialize, Serialize};

use super::catalog::builtin_rules;
use super::route::{RouteConfig, RouteTree, matcher_text};
use super::rule::{BuiltinSettings, Rule, RuleConfig, RuleError};

/// One inhibition rule: while an alert matching `source_matchers` fires,
/// alerts matching `target_matchers` with the same values of the `equal`
/// labels send no notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// What mutes.
    #[serde(with = "matcher_text")]
    pub source_matchers: Vec<Matcher>,
    /// What is muted.
    #[serde(with = "matcher_text")]
    pub target_matchers: Vec<Matcher>,
    /// Labels both must share.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Escalation: a critical alert nobody acknowledged goes to a second receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// The second receiver (none = no escalation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// How long a firing alert may stay unacknowledged.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub after: Duration,
    /// Severities that escalate.
    pub severities: Vec<Severity>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            receiver: None,
            after: Duration::from_secs(15 * 60),
            severities: vec![Severity::Critical],
        }
    }
}

/// How notifications are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// First retry delay (doubling, with jitter).
    #[serde(with = "ordermon_domain::duration::serde")]
    pub min_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub max_backoff: Duration,
    /// A notification still undelivered this long after it was decided is
    /// given up (failed).
    #[serde(with = "ordermon_domain::duration::serde")]
    pub give_up_after: Duration,
    /// How long one instance holds a notification it is sending.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub claim_lease: Duration,
    /// Time one delivery attempt may take.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            claim_lease: Duration::from_secs(60),
            timeout: Duration::from_secs(20),
        }
    }
}

/// `[alerting]`; `R` is the type of one receiver's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig<R> {
    /// Off: no rule is evaluated and nothing is sent.
    pub enabled: bool,
    /// How often every rule is evaluated (events are evaluated at once).
    #[serde(with = "ordermon_domain::duration::serde")]
    pub evaluation_interval: Duration,
    /// An order waiting this long at a venue counts toward `venue_stuck_orders`.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub venue_stuck_after: Duration,
    /// How long an alert a strategy asked for stays firing after its last event.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub strategy_alert_hold: Duration,
    /// Longest silence.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub silence_max_duration: Duration,
    /// Delivered notifications are deleted after this long.
    #[serde(with = "ordermon_domain::duration::serde")]
    pub notification_retention: Duration,
    /// Most alerts in one notification (the rest are counted as truncated).
    pub max_alerts_per_notification: u32,
    /// The address people reach the API at, for links in notifications.
    pub external_url: String,
    /// Settings of the built-in rules, by name.
    pub builtin: BTreeMap<String, BuiltinSettings>,
    /// Rules of your own.
    pub rules: Vec<RuleConfig>,
    /// The routing tree.
    pub route: RouteConfig,
    /// Inhibition rules.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Escalation of unacknowledged critical alerts.
    pub escalation: EscalationConfig,
    /// Delivery retries.
    pub delivery: DeliveryConfig,
    /// Receivers by name.
    pub receivers: BTreeMap<String, R>,
}

impl<R> Default for AlertingConfig<R> {
    fn default() -> Self {
        Self {
            enabled: true,
            evaluation_interval: Duration::from_secs(1),
            venue_stuck_after: Duration::from_secs(30),
            strategy_alert_hold: Duration::from_secs(300),
            silence_max_duration: Duration::from_secs(30 * 86_400),
            notification_retention: Duration::from_secs(7 * 86_400),
            max_alerts_per_notification: 100,
            external_url: String::new(),
            builtin: builtin_rules()
                .into_iter()
                .map(|r| (r.name.clone(), BuiltinSettings::of(&r)))
                .collect(),
            rules: Vec::new(),
            route: RouteConfig::default(),
            inhibit_rules: default_inhibit_rules(),
            escalation: EscalationConfig::default(),
            delivery: DeliveryConfig::default(),
            receivers: BTreeMap::new(),
        }
    }
}

fn matchers(texts: &[&str]) -> Vec<Matcher> {
    texts.iter().filter_map(|t| t.parse().ok()).collect()
}

/// The built-in inhibition rules: a venue that is down mutes its orders'
/// stuck alerts; a breached position limit mutes its approach and forecast;
/// the global kill switch mutes the per-user ones; a daily loss near its limit
/// mutes its forecast.
#[must_use]
pub fn default_inhibit_rules() -> Vec<InhibitRule> {
    vec![
        InhibitRule {
            source_matchers: matchers(&[r#"rule="venue_down""#]),
            target_matchers: matchers(&[r#"rule=~"stuck_order|stuck_cancel""#]),
            equal: vec!["venue".to_owned()],
        },
        InhibitRule {
            source_matchers: matchers(&[r#"rule="position_limit_breach""#]),
            target_matchers: matchers(&[
                r#"rule=~"position_limit_approach|position_limit_forecast""#,
            ]),
            equal: vec!["user_id".to_owned(), "instrument_id".to_owned()],
        },
        InhibitRule {
            source_matchers: matchers(&[r#"rule="kill_switch_engaged""#]),
            target_matchers: matchers(&[r#"rule="user_kill_switch_engaged""#]),
            equal: Vec::new(),
        },
        InhibitRule {
            source_matchers: matchers(&[r#"rule="daily_loss_approach""#]),
            target_matchers: matchers(&[r#"rule="daily_loss_forecast""#]),
            equal: vec!["user_id".to_owned()],
        },
    ]
}

impl BuiltinSettings {
    /// Every setting of a built-in rule, as the catalogue has it.
    #[must_use]
    pub fn of(r: &RuleConfig) -> Self {
        Self {
            enabled: Some(r.enabled),
            threshold: r.predict.map(|p| p.limit).or(r.threshold),
            window: r.window,
            for_duration: Some(r.for_duration),
            severity: Some(r.severity),
            min_count: r.min_count,
            labels: None,
            annotations: None,
        }
    }
}

/// Why `[alerting]` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertingConfigError {
    /// A rule is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// Another setting is invalid.
    #[error("alerting.{key}: {message}")]
    Invalid {
        /// The key under `alerting`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> AlertingConfigError {
    AlertingConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl<R> AlertingConfig<R> {
    /// Every rule, validated: the built-ins with their settings, then yours.
    ///
    /// # Errors
    /// The first bad rule, an unknown built-in, or a duplicate name.
    pub fn rules(&self) -> Result<Vec<Rule>, AlertingConfigError> {
        let catalogue = builtin_rules();
        for name in self.builtin.keys() {
            if !catalogue.iter().any(|r| &r.name == name) {
                return Err(invalid(
                    format!("builtin.{name}"),
                    "no built-in rule of this name",
                ));
            }
        }
        let mut out = Vec::with_capacity(catalogue.len() + self.rules.len());
        for r in catalogue {
            let r = match self.builtin.get(&r.name) {
                Some(s) => r.with_settings(s),
                None => r,
            };
            out.push(r.validate(true)?);
        }
        for r in &self.rules {
            let rule = r.validate(false)?;
            if out.iter().any(|o| o.name == rule.name) {
                return Err(RuleError::new(
                    &r.name,
                    "name",
                    "another rule (or a built-in) has this name",
                )
                .into());
            }
            out.push(rule);
        }
        Ok(out)
    }

    /// Checks everything: rules, routes, inhibition, escalation, durations.
    ///
    /// # Errors
    /// The first problem, naming its key or rule.
    pub fn validate(&self) -> Result<(), AlertingConfigError> {
        self.validate_with(&[])
    }

    /// [`AlertingConfig::validate`] where routes and escalation may also name
    /// `registered`: receivers an embedder registered in code rather than
    /// configured here.
    ///
    /// # Errors
    /// The first problem, naming its key or rule.
    pub fn validate_with(&self, registered: &[&str]) -> Result<(), AlertingConfigError> {
        self.rules()?;
        let configured: Vec<&str> = self.receivers.keys().map(String::as_str).collect();
        for n in configured.iter().chain(registered) {
            ordermon_domain::ids::RuleName::new(*n).map_err(|_| {
                invalid(
                    format!("receivers.{n}"),
                    "1-128 of A-Z a-z 0-9 _ . - expected",
                )
            })?;
        }
        let mut names = configured;
        names.extend(
            registered
                .iter()
                .filter(|n| !self.receivers.contains_key(**n)),
        );
        RouteTree::new(&self.route, &names).map_err(|m| invalid("route", m))?;
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            if r.source_matchers.is_empty() || r.target_matchers.is_empty() {
                return Err(invalid(
                    format!("inhibit_rules[{i}]"),
                    "source_matchers and target_matchers must not be empty",
                ));
            }
            for l in &r.equal {
                check_label_name(l)
                    .map_err(|e| invalid(format!("inhibit_rules[{i}].equal"), e.to_string()))?;
            }
        }
        if let Some(r) = &self.escalation.receiver
            && !names.contains(&r.as_str())
        {
            return Err(invalid(
                "escalation.receiver",
                format!("unknown receiver `{r}`"),
            ));
        }
        if self.escalation.after.is_zero() {
            return Err(invalid("escalation.after", "must be positive"));
        }
        for (key, d) in [
            ("evaluation_interval", self.evaluation_interval),
            ("venue_stuck_after", self.venue_stuck_after),
            ("strategy_alert_hold", self.strategy_alert_hold),
            ("silence_max_duration", self.silence_max_duration),
            ("notification_retention", self.notification_retention),
            ("delivery.min_backoff", self.delivery.min_backoff),
            ("delivery.max_backoff", self.delivery.max_backoff),
            ("delivery.give_up_after", self.delivery.give_up_after),
            ("delivery.claim_lease", self.delivery.claim_lease),
            ("delivery.timeout", self.delivery.timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        if self.evaluation_interval > Duration::from_secs(60) {
            return Err(invalid("evaluation_interval", "must be at most 1m"));
        }
        if self.delivery.min_backoff > self.delivery.max_backoff {
            return Err(invalid(
                "delivery.min_backoff",
                "must not exceed delivery.max_backoff",
            ));
        }
        if self.max_alerts_per_notification == 0 {
            return Err(invalid("max_alerts_per_notification", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Config = AlertingConfig<toml::Value>;

    fn parse(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_default_is_valid_and_lists_every_builtin() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.rules().unwrap().len(), builtin_rules().len());
        assert!(c.builtin.contains_key("stuck_order"));
        // The default serializes (for `monitor-server config`) and reads back.
        let text = toml::to_string(&c).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.rules().unwrap(), c.rules().unwrap());
    }

    #[test]
    fn builtin_settings_and_custom_rules_apply() {
        let c = parse(
            r#"
            [builtin.stuck_order]
            threshold = "60"
            severity = "critical"
            [builtin.watchdog]
            enabled = false
            [[rules]]
            name = "many_orders"
            signal = "orders"
            window = "1m"
            threshold = "100"
            "#,
        );
        let rules = c.rules().unwrap();
        let stuck = rules
            .iter()
            .find(|r| r.name.as_str() == "stuck_order")
            .unwrap();
        assert_eq!(
            stuck.condition.threshold(),
            Some(ordermon_domain::Decimal::new(60, 0))
        );
        assert_eq!(stuck.severity, Severity::Critical);
        assert!(
            !rules
                .iter()
                .find(|r| r.name.as_str() == "watchdog")
                .unwrap()
                .enabled
        );
        assert!(
            rules
                .iter()
                .any(|r| r.name.as_str() == "many_orders" && !r.builtin)
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (
                "[builtin.no_such_rule]\nenabled = false",
                "builtin.no_such_rule",
            ),
            (
                "[[rules]]\nname = \"stuck_order\"\nsignal = \"orders\"\nthreshold = \"1\"",
                "stuck_order",
            ),
            (
                "[[rules]]\nname = \"x\"\nsignal = \"orders\"",
                "alert rule `x`: threshold",
            ),
            ("[route]\nreceiver = \"ghost\"", "unknown receiver `ghost`"),
            (
                "[escalation]\nreceiver = \"ghost\"\nafter = \"1m\"\nseverities = [\"critical\"]",
                "escalation.receiver",
            ),
            ("evaluation_interval = \"0s\"", "evaluation_interval"),
            (
                "[[inhibit_rules]]\nsource_matchers = []\ntarget_matchers = ['rule=\"x\"']",
                "inhibit_rules[0]",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(text).validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        // A bad regex in a route is refused by the parser with its message.
        let e = toml::from_str::<Config>("[route]\nmatchers = ['user_id=~\"((\"']").unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
        assert!(toml::from_str::<Config>("no_such_key = 1").is_err());
    }
}
