//! Reading what a webhook receiver got: Alertmanager payloads, which of them
//! were accepted, and the exactly-once check every fault test ends with.

use std::collections::BTreeMap;

use ordermon_domain::alert::{DeliveryStatus, NotificationRecord};
use ordermon_domain::ids::NotificationId;
use ordermon_tests::TestStore;
use ordermon_tests::receivers::{HttpReceiver, Recorded};

/// Alertmanager's "no end yet".
pub(crate) const NO_END: &str = "0001-01-01T00:00:00Z";
/// The header carrying the notification id.
pub(crate) const ID_HEADER: &str = "x-ordermon-notification-id";

/// The rule of a webhook payload (of its first alert).
pub(crate) fn rule_of(r: &Recorded) -> &str {
    r.json["alerts"][0]["labels"]["rule"]
        .as_str()
        .unwrap_or_default()
}

/// `update`, `repeat` or `escalation`.
pub(crate) fn kind_of(r: &Recorded) -> &str {
    r.json["kind"].as_str().unwrap_or_default()
}

/// The payload's `notificationId`.
pub(crate) fn id_of(r: &Recorded) -> &str {
    r.json["notificationId"].as_str().unwrap_or_default()
}

/// Requests the receiver answered with a 2xx: the notifications it took.
pub(crate) fn accepted(hook: &HttpReceiver) -> Vec<Recorded> {
    hook.received()
        .into_iter()
        .filter(|r| (200..300).contains(&r.answered))
        .collect()
}

/// The accepted payloads about `rule`.
pub(crate) fn accepted_of(hook: &HttpReceiver, rule: &str) -> Vec<Recorded> {
    accepted(hook)
        .into_iter()
        .filter(|r| rule_of(r) == rule)
        .collect()
}

/// The first accepted payload about `rule` whose `status` is `status`.
pub(crate) fn find(hook: &HttpReceiver, rule: &str, status: &str) -> Option<Recorded> {
    accepted_of(hook, rule)
        .into_iter()
        .find(|r| r.json["status"] == status)
}

/// Every accepted payload is a distinct notification (by `notificationId`,
/// which the header repeats), and no alert was reported twice in the same
/// state by update notifications (by fingerprint and status): nothing the
/// receiver took was sent again.
pub(crate) fn assert_delivered_once(records: &[Recorded]) {
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut states: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records.iter().filter(|r| (200..300).contains(&r.answered)) {
        let id = id_of(r);
        assert!(
            id.parse::<NotificationId>().is_ok(),
            "no notification id: {}",
            r.json
        );
        assert_eq!(
            r.header(ID_HEADER),
            Some(id),
            "the header names the payload's notification"
        );
        *ids.entry(id).or_default() += 1;
        if kind_of(r) != "update" {
            continue;
        }
        for a in r.json["alerts"].as_array().into_iter().flatten() {
            let key = (
                a["fingerprint"].as_str().unwrap_or_default().to_owned(),
                a["status"].as_str().unwrap_or_default().to_owned(),
            );
            *states.entry(key).or_default() += 1;
        }
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "notifications delivered more than once: {twice:?}"
    );
    let twice: Vec<_> = states.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "alert states reported more than once: {twice:?}"
    );
}

/// The stored delivery records of `receiver`, oldest first (`None` in
/// memory, where the app has a store of its own).
pub(crate) async fn records(store: &TestStore, receiver: &str) -> Option<Vec<NotificationRecord>> {
    store.url.as_ref()?;
    let mut list = store
        .store
        .list_notifications(Some(receiver), 500)
        .await
        .expect("notification records");
    list.reverse();
    Some(list)
}

/// Every stored record of `receiver` is delivered (none pending or failed).
pub(crate) async fn assert_all_delivered(store: &TestStore, receiver: &str, expected: usize) {
    let Some(list) = records(store, receiver).await else {
        return;
    };
    assert_eq!(list.len(), expected, "records of {receiver}: {list:#?}");
    for r in &list {
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:#?}");
        assert!(r.delivered_at.is_some() && r.last_error.is_none(), "{r:#?}");
    }
}
