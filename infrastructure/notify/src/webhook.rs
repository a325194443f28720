//! The generic webhook: Alertmanager's webhook JSON (version 4), so anything
//! that takes Alertmanager's webhooks takes ordermon's, plus `notificationId`
//! and `kind`, and the `X-Ordermon-Notification-Id` header receivers can
//! deduplicate on.
//!
//! As Alertmanager does: with `send_resolved = false` resolved alerts are left
//! out and an all-resolved notification is not sent at all; `commonLabels` and
//! `commonAnnotations` are computed over the alerts that are sent, before
//! `max_alerts` cuts the list; an unset `endsAt` is `0001-01-01T00:00:00Z`.
//! Each alert's labels also carry `alertname` (the rule) and `severity` when
//! they do not already, the two labels Alertmanager tooling keys on.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use ordermon_domain::alert::{Alert, AlertState, NotificationKind};
use ordermon_domain::ports::{Notification, Notifier, NotifyError};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::WebhookConfig;
use crate::error::{Field, NotifyConfigError};
use crate::http::{self, Answer};
use crate::redact::Scrubber;
use crate::render::rfc3339;

/// The header carrying the notification id (webhook and email).
pub(crate) const ID_HEADER: &str = "X-Ordermon-Notification-Id";

/// Alertmanager's "no end yet".
const NO_END: &str = "0001-01-01T00:00:00Z";

/// Delivers to a generic webhook.
pub struct WebhookNotifier {
    name: String,
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    send_resolved: bool,
    max_alerts: usize,
    scrubber: Scrubber,
}

impl WebhookNotifier {
    /// Checks `config` and sets up the client of receiver `name`.
    ///
    /// # Errors
    /// [`NotifyConfigError`] naming the field: a URL that is not http(s), a
    /// header that is not a valid HTTP header, a zero timeout.
    pub fn new(name: &str, config: &WebhookConfig) -> Result<Self, NotifyConfigError> {
        let f = Field { receiver: name };
        let url = http::check_url(f, "url", config.url.expose_secret())?;
        http::check_timeout(f, config.timeout)?;
        let mut scrubber = Scrubber::default();
        scrubber.add(config.url.expose_secret());
        for (_, v) in url.query_pairs() {
            scrubber.add(&v);
        }
        if let Some(p) = url.password() {
            scrubber.add(p);
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let field = format!("headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| f.invalid(&field, "is not a valid header name"))?;
            if name == reqwest::header::CONTENT_TYPE || name == reqwest::header::CONTENT_LENGTH {
                return Err(f.invalid(&field, "is set by the notifier"));
            }
            let mut value = HeaderValue::from_str(v.expose_secret())
                .map_err(|_| f.invalid(&field, "has characters a header value cannot hold"))?;
            // Keeps the value out of hyper's and reqwest's own debug output.
            value.set_sensitive(true);
            scrubber.add(v.expose_secret());
            headers.insert(name, value);
        }
        Ok(Self {
            name: name.to_owned(),
            client: http::client(f, "webhook", config.timeout)?,
            url,
            headers,
            send_resolved: config.send_resolved,
            max_alerts: config.max_alerts,
            scrubber,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let Some(payload) = payload(n, self.send_resolved, self.max_alerts) else {
            tracing::debug!(receiver = %self.name, notification = %n.id, "only resolved alerts and send_resolved is off: nothing sent");
            return Ok(());
        };
        let body = serde_json::to_vec(&payload)
            .map_err(|e| NotifyError::Permanent(format!("cannot encode the payload: {e}")))?;
        let mut headers = self.headers.clone();
        if let Ok(id) = HeaderValue::from_str(&n.id.to_string()) {
            headers.insert(ID_HEADER, id);
        }
        let answer: Answer =
            http::post_json(&self.client, &self.url, headers, body, &self.scrubber).await?;
        tracing::debug!(receiver = %self.name, notification = %n.id, status = answer.status.as_u16(), "webhook answered");
        // A webhook's error body is free text that may quote the request
        // (URL, headers): it is never put into the error.
        answer.check_status(None)
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("name", &self.name)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("send_resolved", &self.send_resolved)
            .field("max_alerts", &self.max_alerts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        // One notification per call (max_batch is 1); a longer batch is sent
        // in order and stops at the first failure.
        for n in batch {
            self.send(n).await?;
        }
        Ok(())
    }
}

/// Alertmanager's webhook message, version 4, with ordermon's extras.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payload<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'static str,
    alerts: Vec<AlertPayload<'a>>,
    notification_id: String,
    kind: NotificationKind,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertPayload<'a> {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'static str,
    fingerprint: String,
}

/// The message for `n`, or `None` when nothing is left to send.
pub(crate) fn payload(
    n: &Notification,
    send_resolved: bool,
    max_alerts: usize,
) -> Option<Payload<'_>> {
    let sent: Vec<&Alert> = n
        .alerts
        .iter()
        .filter(|a| send_resolved || a.state != AlertState::Resolved)
        .collect();
    if sent.is_empty() {
        return None;
    }
    let firing = sent.iter().any(|a| a.state == AlertState::Firing);
    let common_labels = common(sent.iter().map(|a| labels(a)));
    let common_annotations = common(sent.iter().map(|a| a.annotations.clone()));
    let keep = if max_alerts == 0 {
        sent.len()
    } else {
        max_alerts.min(sent.len())
    };
    let cut = u64::try_from(sent.len() - keep).unwrap_or(u64::MAX);
    Some(Payload {
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: u64::from(n.truncated_alerts).saturating_add(cut),
        status: if firing { "firing" } else { "resolved" },
        receiver: &n.receiver,
        group_labels: &n.group_labels,
        common_labels,
        common_annotations,
        external_url: "",
        alerts: sent
            .into_iter()
            .take(keep)
            .map(|a| AlertPayload {
                status: a.state.as_str(),
                labels: labels(a),
                annotations: &a.annotations,
                starts_at: rfc3339(a.starts_at),
                ends_at: a.ends_at.map_or_else(|| NO_END.to_owned(), rfc3339),
                generator_url: "",
                fingerprint: a.fingerprint.to_string(),
            })
            .collect(),
        notification_id: n.id.to_string(),
        kind: n.kind,
    })
}

/// An alert's labels with `alertname` and `severity` filled in.
fn labels(a: &Alert) -> BTreeMap<String, String> {
    let mut labels = a.labels.clone();
    labels
        .entry("alertname".to_owned())
        .or_insert_with(|| a.rule.as_str().to_owned());
    labels
        .entry("severity".to_owned())
        .or_insert_with(|| a.severity.as_str().to_owned());
    labels
}

fn common(mut sets: impl Iterator<Item = BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(mut out) = sets.next() else {
        return BTreeMap::new();
    };
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::render::fixtures::{alert, notification};

    fn to_json(p: &Payload<'_>) -> Value {
        serde_json::to_value(p).unwrap()
    }

    #[test]
    fn payload_is_alertmanager_v4() {
        let n = notification(vec![
            alert("alice", AlertState::Firing),
            alert("bob", AlertState::Resolved),
        ]);
        let v = to_json(&payload(&n, true, 0).unwrap());
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "ops");
        assert_eq!(v["groupKey"], n.group_key.as_str());
        assert_eq!(
            v["groupLabels"],
            json!({"rule": "stuck_order", "user_id": "alice"})
        );
        assert_eq!(
            v["commonLabels"],
            json!({"alertname": "stuck_order", "rule": "stuck_order", "severity": "critical", "venue": "SIM"})
        );
        assert_eq!(
            v["commonAnnotations"],
            json!({"description": "no ack after 30s"})
        );
        assert_eq!(v["externalURL"], "");
        assert_eq!(v["truncatedAlerts"], 0);
        assert_eq!(v["notificationId"], n.id.to_string());
        assert_eq!(v["kind"], "update");
        let a = &v["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(a["endsAt"], NO_END);
        assert_eq!(a["generatorURL"], "");
        assert_eq!(a["fingerprint"], n.alerts[0].fingerprint.to_string());
        assert_eq!(a["labels"]["user_id"], "alice");
        assert_eq!(a["annotations"]["summary"], "order stuck for alice");
        assert_eq!(v["alerts"][1]["status"], "resolved");
        assert_eq!(v["alerts"][1]["endsAt"], "2024-05-01T12:05:00Z");
    }

    #[test]
    fn send_resolved_off_drops_resolved_alerts_and_all_resolved_groups() {
        let mixed = notification(vec![
            alert("alice", AlertState::Firing),
            alert("bob", AlertState::Resolved),
        ]);
        let v = to_json(&payload(&mixed, false, 0).unwrap());
        assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
        // Common labels are over what is sent: alice's user_id is common now.
        assert_eq!(v["commonLabels"]["user_id"], "alice");
        let resolved = notification(vec![alert("bob", AlertState::Resolved)]);
        assert!(payload(&resolved, false, 0).is_none());
        let v = to_json(&payload(&resolved, true, 0).unwrap());
        assert_eq!(v["status"], "resolved");
    }

    #[test]
    fn max_alerts_truncates_and_counts() {
        let mut n = notification(vec![
            alert("a", AlertState::Firing),
            alert("b", AlertState::Firing),
            alert("c", AlertState::Firing),
        ]);
        n.truncated_alerts = 4;
        let v = to_json(&payload(&n, true, 2).unwrap());
        assert_eq!(v["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(v["truncatedAlerts"], 5);
        // Common labels were taken before the cut: user_id differs across all three.
        assert!(v["commonLabels"].get("user_id").is_none());
    }

    #[test]
    fn debug_shows_no_url_or_header_value() {
        let config: WebhookConfig = toml::from_str(
            "url = \"https://hooks.example/x?token=tok-1234\"\nheaders = { Authorization = \"Bearer hdr-5678\" }\n",
        )
        .unwrap();
        let n = WebhookNotifier::new("ops", &config).unwrap();
        let debug = format!("{n:?}");
        assert!(debug.contains("authorization"), "{debug}");
        assert!(
            !debug.contains("tok-1234") && !debug.contains("hdr-5678"),
            "{debug}"
        );
        assert!(!debug.contains("hooks.example"), "{debug}");
    }

    #[test]
    fn bad_headers_are_refused_by_name() {
        let config: WebhookConfig =
            toml::from_str("url = \"https://x.example\"\nheaders = { \"Bad Name\" = \"v\" }\n")
                .unwrap();
        let e = WebhookNotifier::new("ops", &config).unwrap_err();
        assert!(
            e.to_string()
                .contains("`headers.Bad Name` is not a valid header name"),
            "{e}"
        );
        let config: WebhookConfig = toml::from_str(
            "url = \"https://x.example\"\nheaders = { X-Token = \"a\\nb-secret\" }\n",
        )
        .unwrap();
        let e = WebhookNotifier::new("ops", &config).unwrap_err();
        assert!(!e.to_string().contains("b-secret"), "{e}");
    }
}
