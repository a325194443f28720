//! Bodies of the alerting endpoints: alerts, silences, rules and overrides.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordermon_application::alerting::RuleView;
use ordermon_domain::alert::{
    Alert, AlertState, MatchOp, Matcher, RuleOverride, Severity, Silence,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeverityDto {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl From<Severity> for SeverityDto {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => Self::Info,
            Severity::Warning => Self::Warning,
            Severity::Critical => Self::Critical,
        }
    }
}

impl From<SeverityDto> for Severity {
    fn from(s: SeverityDto) -> Self {
        match s {
            SeverityDto::Info => Self::Info,
            SeverityDto::Warning => Self::Warning,
            SeverityDto::Critical => Self::Critical,
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStateDto {
    /// The condition holds, not yet for the rule's `for` duration.
    Pending,
    /// Firing: notifications go out.
    Firing,
    /// Over.
    Resolved,
}

impl From<AlertState> for AlertStateDto {
    fn from(s: AlertState) -> Self {
        match s {
            AlertState::Pending => Self::Pending,
            AlertState::Firing => Self::Firing,
            AlertState::Resolved => Self::Resolved,
        }
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AlertView {
    /// Id of this occurrence (UUIDv7).
    pub id: String,
    /// Identity across occurrences: a hash of the sorted labels (16 hex digits).
    pub fingerprint: String,
    /// The rule that raised it.
    pub rule: String,
    /// Severity.
    pub severity: SeverityDto,
    /// Lifecycle state.
    pub state: AlertStateDto,
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Human text (`summary`, `description`).
    pub annotations: BTreeMap<String, String>,
    /// The user it concerns (absent for system alerts).
    pub user_id: Option<String>,
    /// The value that fired.
    pub value: Option<String>,
    /// Acknowledged: no repeats, no escalation.
    pub acknowledged: bool,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Muted by a silence.
    pub silenced: bool,
    /// The silences muting it.
    pub silenced_by: Vec<String>,
    /// Muted by another firing alert (an inhibition rule).
    pub inhibited: bool,
    /// First seen.
    pub starts_at: DateTime<Utc>,
    /// Started firing.
    pub fired_at: Option<DateTime<Utc>>,
    /// Resolved.
    pub ends_at: Option<DateTime<Utc>>,
    /// The operator who resolved it by hand.
    pub resolved_by: Option<String>,
    /// Escalated to the escalation receiver.
    pub escalated_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version (each change is one event in the log).
    pub version: u64,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id.to_string(),
            fingerprint: a.fingerprint.to_string(),
            rule: a.rule.to_string(),
            severity: a.severity.into(),
            state: a.state.into(),
            labels: a.labels,
            annotations: a.annotations,
            user_id: a.user_id.map(|u| u.to_string()),
            value: a.value,
            acknowledged: a.acknowledged,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at,
            silenced: a.silenced,
            silenced_by: a.silenced_by.iter().map(ToString::to_string).collect(),
            inhibited: a.inhibited,
            starts_at: a.starts_at,
            fired_at: a.fired_at,
            ends_at: a.ends_at,
            resolved_by: a.resolved_by,
            escalated_at: a.escalated_at,
            updated_at: a.updated_at,
            version: a.version,
        }
    }
}

/// A page of alerts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPage {
    /// The alerts.
    pub items: Vec<AlertView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/alerts/{id}/ack` and `/resolve` (the body is optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertActionRequest {
    /// Why (logged).
    #[serde(default)]
    pub comment: Option<String>,
}

/// A label matcher: `name`, `op` (`=`, `!=`, `=~`, `!~`) and `value`; or the
/// same written as one string, `severity="critical"`.
///
/// Read by hand rather than as serde's untagged enum, which would also take an
/// array of the three parts and ignore unknown fields of the object.
#[derive(Debug, Clone, ToSchema)]
#[serde(untagged)]
pub enum MatcherInput {
    /// `name<op>"value"`.
    Text(String),
    /// The parts.
    Parts {
        /// Label name.
        name: String,
        /// `=`, `!=`, `=~` or `!~`.
        op: String,
        /// Value or regular expression (anchored).
        value: String,
    },
}

/// The object form of a matcher.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherParts {
    name: String,
    op: String,
    value: String,
}

impl<'de> Deserialize<'de> for MatcherInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = MatcherInput;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a matcher: text such as severity=\"critical\", or an object {name, op, value}",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MatcherInput, E> {
                Ok(MatcherInput::Text(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MatcherInput, A::Error> {
                let p =
                    MatcherParts::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MatcherInput::Parts {
                    name: p.name,
                    op: p.op,
                    value: p.value,
                })
            }
        }
        d.deserialize_any(Either)
    }
}

impl MatcherInput {
    /// The matcher, or why it is refused.
    ///
    /// # Errors
    /// The matcher's own error text.
    pub fn parse(&self) -> Result<Matcher, String> {
        match self {
            Self::Text(t) => t.parse::<Matcher>().map_err(|e| e.to_string()),
            Self::Parts { name, op, value } => {
                let op = match op.as_str() {
                    "=" => MatchOp::Eq,
                    "!=" => MatchOp::NotEq,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    other => return Err(format!("unknown operator `{other}` (=, !=, =~, !~)")),
                };
                Matcher::new(name.clone(), op, value.clone()).map_err(|e| e.to_string())
            }
        }
    }
}

/// `POST /api/v1/silences`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSilenceRequest {
    /// Every matcher must match (1–16; at least one must not match the empty string).
    pub matchers: Vec<MatcherInput>,
    /// Start (default now).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// End; give this or `duration`.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Length from the start (`2h`, `30m`); give this or `ends_at`.
    #[serde(default)]
    pub duration: Option<String>,
    /// Why (up to 1024 characters).
    #[serde(default)]
    pub comment: String,
    /// Admins: limit the silence to one user's alerts (traders' silences
    /// always cover only their own).
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A matcher as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MatcherView {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: String,
    /// Value or pattern.
    pub value: String,
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SilenceView {
    /// Id (UUIDv7).
    pub id: String,
    /// `pending`, `active` or `expired`.
    pub state: String,
    /// Matchers.
    pub matchers: Vec<MatcherView>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// The user it is limited to.
    pub user_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl SilenceView {
    /// The view of a silence at `now`.
    #[must_use]
    pub fn of(s: Silence, now: DateTime<Utc>) -> Self {
        let state = match s.state(now) {
            ordermon_domain::alert::SilenceState::Pending => "pending",
            ordermon_domain::alert::SilenceState::Active => "active",
            ordermon_domain::alert::SilenceState::Expired => "expired",
        };
        Self {
            id: s.id.to_string(),
            state: state.to_owned(),
            matchers: s
                .matchers
                .iter()
                .map(|m| MatcherView {
                    name: m.name().to_owned(),
                    op: m.op().as_str().to_owned(),
                    value: m.value().to_owned(),
                })
                .collect(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by,
            comment: s.comment,
            user_id: s.user_id.map(|u| u.to_string()),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A page of silences, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SilencePage {
    /// The silences.
    pub items: Vec<SilenceView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A user's override of a rule, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OverrideView {
    /// The user.
    pub user_id: String,
    /// On or off.
    pub enabled: Option<bool>,
    /// Threshold.
    pub threshold: Option<String>,
    /// `for` duration.
    #[serde(rename = "for")]
    pub for_duration: Option<String>,
    /// Severity.
    pub severity: Option<SeverityDto>,
    /// Who set it.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

impl From<RuleOverride> for OverrideView {
    fn from(o: RuleOverride) -> Self {
        Self {
            user_id: o.user_id.to_string(),
            enabled: o.enabled,
            threshold: o.threshold.map(|t| t.to_string()),
            for_duration: o.for_duration.map(ordermon_domain::duration::format),
            severity: o.severity.map(Into::into),
            updated_by: o.updated_by,
            updated_at: o.updated_at,
        }
    }
}

/// An alert rule as it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AlertRuleView {
    /// Name.
    pub name: String,
    /// Built in (SPEC §7) or configured.
    pub builtin: bool,
    /// On or off.
    pub enabled: bool,
    /// The signal it watches.
    pub signal: String,
    /// What the signal measures.
    pub signal_description: String,
    /// `user`, `user_instrument`, `user_venue`, `strategy`, `instrument`, `venue` or `system`.
    pub scope: String,
    /// Window of a windowed signal.
    pub window: Option<String>,
    /// The condition (`>= 0.5`, `ewma and >= 250`, `reaches 1 within 10m`).
    pub condition: String,
    /// Threshold, when it has one.
    pub threshold: Option<String>,
    /// How long the condition must hold.
    #[serde(rename = "for")]
    pub for_duration: String,
    /// Severity.
    pub severity: SeverityDto,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, String>,
    /// The user's override, when one was asked about and has one.
    #[serde(rename = "override")]
    pub override_applied: Option<OverrideView>,
}

impl From<RuleView> for AlertRuleView {
    fn from(r: RuleView) -> Self {
        Self {
            name: r.name,
            builtin: r.builtin,
            enabled: r.enabled,
            signal: r.signal,
            signal_description: r.signal_description,
            scope: r.scope,
            window: r.window,
            condition: r.condition,
            threshold: r.threshold,
            for_duration: r.for_duration,
            severity: r.severity.into(),
            labels: r.labels,
            annotations: r.annotations,
            override_applied: r.override_applied.map(Into::into),
        }
    }
}

/// The rules.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRuleList {
    /// Every rule.
    pub items: Vec<AlertRuleView>,
}

/// `PUT /api/v1/alert-rules/{name}/overrides/{user_id}`: fields left out keep
/// their value (or the rule's).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// On or off for this user.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Threshold, as a decimal string.
    #[serde(default)]
    pub threshold: Option<String>,
    /// `for` duration (`30s`).
    #[serde(default, rename = "for")]
    pub for_duration: Option<String>,
    /// Severity.
    #[serde(default)]
    pub severity: Option<SeverityDto>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema mirrors say exactly what the domain serializes.
    #[test]
    fn mirrors_match_the_domain() {
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(
                serde_json::to_value(SeverityDto::from(s)).unwrap(),
                serde_json::to_value(s).unwrap()
            );
        }
        for s in [
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Resolved,
        ] {
            assert_eq!(
                serde_json::to_value(AlertStateDto::from(s)).unwrap(),
                serde_json::to_value(s).unwrap()
            );
        }
    }

    #[test]
    fn matchers_parse_from_text_or_parts() {
        let m: MatcherInput = serde_json::from_str(r#""rule=~\"stuck_.*\"""#).unwrap();
        assert_eq!(m.parse().unwrap().op(), MatchOp::Regex);
        let m: MatcherInput =
            serde_json::from_str(r#"{"name":"user_id","op":"!=","value":"bob"}"#).unwrap();
        assert_eq!(m.parse().unwrap().op(), MatchOp::NotEq);
        let bad: MatcherInput =
            serde_json::from_str(r#"{"name":"user_id","op":"~~","value":"bob"}"#).unwrap();
        assert!(bad.parse().unwrap_err().contains("unknown operator"));
        let bad: MatcherInput = serde_json::from_str(r#""rule=~\"((\"""#).unwrap();
        assert!(bad.parse().unwrap_err().contains("regular expression"));
        // Neither an array of the parts, nor an object with more than them.
        for refused in [
            r#"["user_id", "=", "bob"]"#,
            r#"{"name":"user_id","op":"=","value":"bob","extra":1}"#,
            r#"{"name":"user_id","op":"="}"#,
            "7",
            "null",
        ] {
            assert!(
                serde_json::from_str::<MatcherInput>(refused).is_err(),
                "{refused}"
            );
        }
    }
}
