//! Rules through the API: every rule as it applies to a user, and the
//! per-user overrides (threshold, `for`, severity, on/off), stored here and
//! then handed to the worker.

use std::sync::Arc;

use ordermon_domain::Decimal;
use ordermon_domain::alert::{RuleOverride, Severity};
use ordermon_domain::ids::{RuleName, UserId};
use ordermon_domain::ports::{ChangeSet, StateChange};
use serde::Serialize;

use super::AlertingService;
use crate::alerting::rule::Rule;
use crate::alerting::worker::Command;
use crate::error::AppError;

/// What may change in a user's override of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverridePatch {
    /// On or off for the user.
    pub enabled: Option<bool>,
    /// Threshold.
    pub threshold: Option<Decimal>,
    /// `for` duration.
    pub for_duration: Option<std::time::Duration>,
    /// Severity.
    pub severity: Option<Severity>,
}

/// A rule as listed by `GET /api/v1/alert-rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// Name.
    pub name: String,
    /// Built in or configured.
    pub builtin: bool,
    /// On or off (for this user, when one is asked about).
    pub enabled: bool,
    /// Signal.
    pub signal: String,
    /// What the signal means.
    pub signal_description: String,
    /// Scope of its series.
    pub scope: String,
    /// Window (windowed signals), e.g. `1m`.
    pub window: Option<String>,
    /// The condition, e.g. `>= 0.5`.
    pub condition: String,
    /// Threshold, when it has one.
    pub threshold: Option<String>,
    /// `for` duration.
    #[serde(rename = "for")]
    pub for_duration: String,
    /// Severity.
    pub severity: Severity,
    /// Extra labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The user's override applied, if any.
    pub override_applied: Option<RuleOverride>,
}

impl RuleView {
    fn of(rule: &Rule, o: Option<&RuleOverride>) -> Self {
        let effective = o.map_or_else(|| rule.clone(), |o| rule.overridden(o));
        Self {
            name: effective.name.to_string(),
            builtin: effective.builtin,
            enabled: effective.enabled,
            signal: effective.signal.as_str().to_owned(),
            signal_description: effective.signal.describe().to_owned(),
            scope: effective.scope().as_str().to_owned(),
            window: effective
                .signal
                .windowed()
                .then(|| ordermon_domain::duration::format(effective.window)),
            condition: effective.condition.describe(),
            threshold: effective.condition.threshold().map(|t| t.to_string()),
            for_duration: ordermon_domain::duration::format(effective.for_duration),
            severity: effective.severity,
            labels: effective.labels.clone(),
            annotations: effective.annotations.clone(),
            override_applied: o.cloned(),
        }
    }
}

impl AlertingService {
    /// Every rule, as it applies to `user` when given.
    ///
    /// # Errors
    /// Store failures.
    pub async fn rules(&self, user: Option<&UserId>) -> Result<Vec<RuleView>, AppError> {
        let overrides = match user {
            Some(u) => {
                self.persistence
                    .alert_rules
                    .list_rule_overrides(Some(u))
                    .await?
            }
            None => Vec::new(),
        };
        Ok(self
            .rules
            .iter()
            .map(|r| RuleView::of(r, overrides.iter().find(|o| o.rule == r.name)))
            .collect())
    }

    fn rule(&self, name: &RuleName) -> Result<&Arc<Rule>, AppError> {
        self.rules
            .iter()
            .find(|r| &r.name == name)
            .ok_or(AppError::NotFound("alert rule"))
    }

    /// Sets (or changes) a user's override of a rule.
    ///
    /// # Errors
    /// NotFound rule; Validation when the override does not fit the rule.
    pub async fn set_override(
        &self,
        rule: &RuleName,
        user: &UserId,
        patch: OverridePatch,
        by: &str,
    ) -> Result<RuleView, AppError> {
        let r = self.rule(rule)?.clone();
        if self.persistence.users.get_user(user).await?.is_none() {
            return Err(AppError::NotFound("user"));
        }
        let existing = self
            .persistence
            .alert_rules
            .get_rule_override(rule, user)
            .await?;
        let expected = existing.as_ref().map_or(0, |o| o.version);
        let mut o = existing.unwrap_or(RuleOverride {
            rule: rule.clone(),
            user_id: user.clone(),
            enabled: None,
            threshold: None,
            for_duration: None,
            severity: None,
            updated_by: String::new(),
            updated_at: self.clock.now(),
            version: 0,
        });
        if patch.enabled.is_some() {
            o.enabled = patch.enabled;
        }
        if patch.threshold.is_some() {
            o.threshold = patch.threshold;
        }
        if patch.for_duration.is_some() {
            o.for_duration = patch.for_duration;
        }
        if patch.severity.is_some() {
            o.severity = patch.severity;
        }
        r.check_override(&o)
            .map_err(|e| AppError::field(e.field.clone(), e.message))?;
        o.updated_by = by.to_owned();
        o.updated_at = self.clock.now();
        o.version = expected + 1;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::RuleOverride {
            rule_override: Box::new(o.clone()),
            expected,
        });
        self.committer.commit(cs).await?;
        self.reload_overrides().await?;
        tracing::info!(rule = %rule, user = %user, by, "alert rule override set");
        Ok(RuleView::of(&r, Some(&o)))
    }

    /// Removes a user's override of a rule.
    ///
    /// # Errors
    /// NotFound (rule or override); store failures.
    pub async fn delete_override(&self, rule: &RuleName, user: &UserId) -> Result<(), AppError> {
        self.rule(rule)?;
        let o = self
            .persistence
            .alert_rules
            .get_rule_override(rule, user)
            .await?
            .ok_or(AppError::NotFound("alert rule override"))?;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::DeleteRuleOverride {
            rule: rule.clone(),
            user_id: user.clone(),
            expected: o.version,
        });
        self.committer.commit(cs).await?;
        self.reload_overrides().await
    }

    async fn reload_overrides(&self) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let all = self
            .persistence
            .alert_rules
            .list_rule_overrides(None)
            .await?;
        self.ask(Command::Overrides(all)).await?;
        self.sync().await;
        Ok(())
    }
}
