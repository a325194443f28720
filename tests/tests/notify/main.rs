//! Every notifier against a real receiver on loopback: the exact payload each
//! channel puts on the wire, how each receiver's failures are classified
//! (transient or permanent, with the receiver's retry hint), DingTalk's
//! signature, merging and rate limits, and that no error text ever carries a
//! URL's token or a secret.
//!
//! `cargo test -p ordermon-tests --test notify`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dingtalk;
mod email;
mod slack;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ordermon_domain::alert::{Alert, AlertState, Notification, NotificationKind, Severity};
use ordermon_domain::ids::{NotificationId, RuleName};
use ordermon_domain::ports::{Notifier, NotifyError};
use serde_json::Value;

/// How long a receiver is waited for.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A `stuck_order` alert of `user` in `state`, with a summary, a description
/// and `venue=SIM`.
pub(crate) fn alert(user: &str, state: AlertState) -> Alert {
    let labels: BTreeMap<String, String> = [("user_id", user), ("venue", "SIM")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let annotations: BTreeMap<String, String> = [
        ("summary", format!("order stuck for {user}")),
        ("description", "no ack from the venue after 30s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut a = Alert::new(
        RuleName::new("stuck_order").unwrap(),
        Severity::Critical,
        labels,
        annotations,
        None,
        chrono::Duration::zero(),
        start,
    );
    if state == AlertState::Resolved {
        a.resolve(start + chrono::Duration::minutes(5), None);
    }
    a
}

/// A notification to receiver `ops` of alerts for `users`, grouped by rule
/// and `alice`.
pub(crate) fn notification(users: &[(&str, AlertState)]) -> Notification {
    let group_labels: BTreeMap<String, String> = [("rule", "stuck_order"), ("user_id", "alice")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Notification {
        id: NotificationId::generate(),
        receiver: "ops".to_owned(),
        group_key: "{}/{rule=\"stuck_order\"}:{user_id=\"alice\"}".to_owned(),
        group_labels,
        kind: NotificationKind::Update,
        alerts: users.iter().map(|(u, s)| alert(u, *s)).collect(),
        truncated_alerts: 0,
        created_at: Utc::now(),
    }
}

/// One firing alert for alice.
pub(crate) fn firing() -> Notification {
    notification(&[("alice", AlertState::Firing)])
}

/// Builds receiver `name` from a JSON configuration, through the public
/// entry point.
pub(crate) fn build(name: &str, config: Value) -> Arc<dyn Notifier> {
    let config: ordermon_notify::ReceiverConfig = serde_json::from_value(config).unwrap();
    ordermon_notify::build(name, &config).unwrap()
}

/// The error of a delivery that must fail.
pub(crate) async fn fails(n: &dyn Notifier, batch: &[Notification]) -> NotifyError {
    match n.notify(batch).await {
        Ok(()) => panic!("{} delivered, a failure was expected", n.name()),
        Err(e) => e,
    }
}

/// Asserts `e` is transient, returns its retry hint.
pub(crate) fn transient(e: &NotifyError) -> Option<Duration> {
    match e {
        NotifyError::Transient { retry_after, .. } => *retry_after,
        NotifyError::Permanent(m) => panic!("expected a transient error, got permanent: {m}"),
    }
}

/// Asserts `e` is permanent, returns its text.
pub(crate) fn permanent(e: &NotifyError) -> String {
    match e {
        NotifyError::Permanent(m) => m.clone(),
        NotifyError::Transient { message, .. } => {
            panic!("expected a permanent error, got transient: {message}")
        }
    }
}

/// Asserts neither the text nor the `Debug` of `e` holds any of `secrets`
/// or a URL.
pub(crate) fn assert_clean(e: &NotifyError, secrets: &[&str]) {
    let texts = [e.to_string(), format!("{e:?}")];
    for text in &texts {
        for s in secrets {
            assert!(!text.contains(s), "`{s}` leaked into the error: {text}");
        }
        assert!(
            !text.contains("http://"),
            "a URL leaked into the error: {text}"
        );
    }
}

/// A port nothing listens on (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
