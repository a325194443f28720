//! Per-user overrides of an alert rule: a desk that trades fast raises its
//! order-rate threshold, another turns a rule off. Set through the API, stored
//! durably, applied on top of the rule from configuration.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Severity;
use crate::ids::{RuleName, UserId};
use crate::values::opt_decimal_string;

/// One user's override of one rule. Unset fields keep the rule's own value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleOverride {
    /// The rule.
    pub rule: RuleName,
    /// The user.
    pub user_id: UserId,
    /// Turn the rule off (or back on) for this user.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The rule's threshold for this user.
    #[serde(default, with = "opt_decimal_string")]
    pub threshold: Option<Decimal>,
    /// The rule's `for` duration for this user.
    #[serde(default, with = "crate::duration::serde_opt")]
    pub for_duration: Option<Duration>,
    /// The rule's severity for this user.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Who set it.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_json() {
        let o = RuleOverride {
            rule: RuleName::new("runaway_order_rate").unwrap(),
            user_id: UserId::new("alice").unwrap(),
            enabled: None,
            threshold: Some(Decimal::new(250, 1)),
            for_duration: Some(Duration::from_secs(30)),
            severity: Some(Severity::Critical),
            updated_by: "root".to_owned(),
            updated_at: Utc::now(),
            version: 1,
        };
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains(r#""threshold":"25.0""#), "{json}");
        assert!(json.contains(r#""for_duration":"30s""#), "{json}");
        let back: RuleOverride = serde_json::from_str(&json).unwrap();
        assert_eq!(back, o);
    }
}
