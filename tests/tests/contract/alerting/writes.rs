//! Alerting writes: whole round trips, version checks, the claim race,
//! override deletes and the undoing of failed batches.

use std::sync::Arc;

use chrono::Duration;
use ordermon_domain::alert::{DeliveryStatus, NotificationRecord, RuleOverride, Severity};
use ordermon_domain::ids::SilenceId;
use ordermon_domain::ports::{ChangeSet, StateChange, StoreError};
use ordermon_tests::TestStore;
use tokio::sync::Barrier;

use super::{assert_conflict, claimed};
use crate::fixtures::*;

pub(crate) async fn alerting_round_trips(t: &TestStore) {
    let s = &t.store;
    // Silences: a tenant's and an admin's, and an update of the window.
    let mut mine = silence(Some("alice"), 0, 3_600);
    // Sub-microsecond parts survive: entities come back from their JSON.
    mine.created_at += Duration::nanoseconds(123_456_789);
    let admin = silence(None, 60, 120);
    for x in [&mine, &admin] {
        s.commit(put_silence(x, 0)).await.unwrap();
        assert_eq!(s.get_silence(x.id).await.unwrap().as_ref(), Some(x));
    }
    let mut expired = mine.clone();
    assert!(expired.expire(at(30)));
    expired.version = 2;
    s.commit(put_silence(&expired, 1)).await.unwrap();
    assert_eq!(s.get_silence(mine.id).await.unwrap(), Some(expired));
    assert_eq!(s.get_silence(SilenceId::generate()).await.unwrap(), None);

    // A notification carries whole alerts, with every field set.
    let mut record = notification("ops-webhook", "9f3b2c1d00aa", 0);
    record.notification.truncated_alerts = 7;
    record.notification.alerts[0].acknowledged_by = Some("bob".to_owned());
    record.notification.alerts[0].silenced_by = vec![admin.id];
    record.notification.alerts[0].escalated_at = Some(at(5));
    s.commit(put_notification(&record, 0)).await.unwrap();
    assert_eq!(
        s.get_notification(record.id()).await.unwrap().as_ref(),
        Some(&record)
    );
    // Through a failed attempt, a claim and a delivery.
    let mut next = claimed(&record, "instance-a", 1);
    s.commit(put_notification(&next, 1)).await.unwrap();
    let mut failed = next.clone();
    failed.attempt_failed("HTTP 503 from receiver".to_owned(), Some(at(10)));
    s.commit(put_notification(&failed, 2)).await.unwrap();
    assert_eq!(
        s.get_notification(record.id()).await.unwrap().as_ref(),
        Some(&failed)
    );
    next = failed.clone();
    next.delivered(at(11));
    s.commit(put_notification(&next, 3)).await.unwrap();
    let back = s.get_notification(record.id()).await.unwrap().unwrap();
    assert_eq!(back, next);
    assert_eq!(
        (back.status, back.attempts, back.version),
        (DeliveryStatus::Delivered, 2, 4)
    );

    // Rule overrides, with a decimal threshold and a duration.
    let o = rule_override("runaway_order_rate", "alice");
    s.commit(put_override(&o, 0)).await.unwrap();
    assert_eq!(
        s.get_rule_override(&o.rule, &o.user_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&o)
    );
    let mut off = o.clone();
    off.enabled = Some(false);
    off.threshold = None;
    off.version = 2;
    s.commit(put_override(&off, 1)).await.unwrap();
    assert_eq!(
        s.get_rule_override(&o.rule, &o.user_id).await.unwrap(),
        Some(off)
    );
    assert_eq!(
        s.get_rule_override(&o.rule, &uid("bob")).await.unwrap(),
        None
    );

    // An alert with every field of the new model.
    let mut a = alert("stuck_order", Some("alice"));
    a.value = Some("0.000000000000000001".to_owned());
    a.acknowledged = true;
    a.acknowledged_by = Some("ops".to_owned());
    a.acknowledged_at = Some(at(1));
    a.inhibited = true;
    a.set_silences(vec![mine.id, admin.id], at(2));
    s.commit(put_alert(&a, 0)).await.unwrap();
    assert_eq!(s.get_alert(a.id).await.unwrap(), Some(a));
}

pub(crate) async fn alerting_version_conflicts(t: &TestStore) {
    let s = &t.store;
    let sil = silence(Some("alice"), 0, 60);
    let rec = notification("ops", "g1", 0);
    let o = rule_override("stuck_order", "alice");
    s.commit(put_silence(&sil, 0)).await.unwrap();
    s.commit(put_notification(&rec, 0)).await.unwrap();
    s.commit(put_override(&o, 0)).await.unwrap();

    // Inserting a row that exists.
    assert_conflict(&s.commit(put_silence(&sil, 0)).await, 0, Some(1));
    assert_conflict(&s.commit(put_notification(&rec, 0)).await, 0, Some(1));
    assert_conflict(&s.commit(put_override(&o, 0)).await, 0, Some(1));

    // Updating over a stale version.
    let mut stale_sil = sil.clone();
    stale_sil.version = 6;
    assert_conflict(&s.commit(put_silence(&stale_sil, 5)).await, 5, Some(1));
    let mut stale_rec = rec.clone();
    stale_rec.version = 6;
    assert_conflict(&s.commit(put_notification(&stale_rec, 5)).await, 5, Some(1));
    let mut stale_o = o.clone();
    stale_o.version = 6;
    assert_conflict(&s.commit(put_override(&stale_o, 5)).await, 5, Some(1));

    // Updating a row that does not exist.
    let mut ghost = silence(None, 0, 60);
    ghost.version = 2;
    assert_conflict(&s.commit(put_silence(&ghost, 1)).await, 1, None);
    let mut ghost = notification("ops", "g2", 0);
    ghost.version = 2;
    assert_conflict(&s.commit(put_notification(&ghost, 1)).await, 1, None);
    let mut ghost = rule_override("stuck_order", "bob");
    ghost.version = 2;
    assert_conflict(&s.commit(put_override(&ghost, 1)).await, 1, None);

    // A value whose version is not expected + 1.
    let mut skipped = rec.clone();
    skipped.version = 3;
    let r = s.commit(put_notification(&skipped, 1)).await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");

    // Deleting an override needs its current version.
    let delete = |user: &str, expected| {
        only(StateChange::DeleteRuleOverride {
            rule: rule("stuck_order"),
            user_id: uid(user),
            expected,
        })
    };
    assert_conflict(&s.commit(delete("alice", 2)).await, 2, Some(1));
    assert_conflict(&s.commit(delete("alice", 0)).await, 0, Some(1));
    assert_conflict(&s.commit(delete("bob", 1)).await, 1, None);

    // Nothing of the refusals was written.
    assert_eq!(s.get_silence(sil.id).await.unwrap(), Some(sil));
    assert_eq!(s.get_notification(rec.id()).await.unwrap(), Some(rec));
    assert_eq!(
        s.get_rule_override(&o.rule, &o.user_id).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(s.list_rule_overrides(None).await.unwrap(), vec![o]);
}

pub(crate) async fn notification_claim_race(t: &TestStore) {
    // Two instances claim the same due record with the same expected version.
    for round in 0..5 {
        let rec = notification("ops", &format!("race-{round}"), 0);
        t.store.commit(put_notification(&rec, 0)).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = ["instance-a", "instance-b"]
            .into_iter()
            .map(|who| {
                let (store, barrier) = (Arc::clone(&t.store), Arc::clone(&barrier));
                let batch = put_notification(&claimed(&rec, who, 1), 1);
                tokio::spawn(async move {
                    barrier.wait().await;
                    (who, store.commit(batch).await)
                })
            })
            .collect();
        let results: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&str> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(who, _)| *who)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let (_, lost) = results.iter().find(|(_, r)| r.is_err()).unwrap();
        assert_conflict(lost, 1, Some(2));
        let stored = t.store.get_notification(rec.id()).await.unwrap().unwrap();
        assert_eq!(stored.claimed_by.as_deref(), Some(winners[0]));
        assert_eq!(stored.version, 2);
        // A claimed record is no longer due, for anyone.
        assert!(
            !t.store
                .due_notifications(at(2), 10)
                .await
                .unwrap()
                .iter()
                .any(|r| r.id() == rec.id())
        );
    }

    // The same race inside one group commit: the first batch wins.
    let rec = notification("ops", "group-race", 0);
    t.store.commit(put_notification(&rec, 0)).await.unwrap();
    let results = t
        .store
        .commit_group(vec![
            put_notification(&claimed(&rec, "instance-a", 1), 1),
            put_notification(&claimed(&rec, "instance-b", 1), 1),
        ])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    assert_conflict(&results[1], 1, Some(2));
    let stored = t.store.get_notification(rec.id()).await.unwrap().unwrap();
    assert_eq!(stored.claimed_by.as_deref(), Some("instance-a"));

    // Many claims and deliveries in one group (multi-row updates mixing set
    // and empty claim columns), and an insert claimed by a later batch.
    let recs: Vec<NotificationRecord> = (0..6)
        .map(|i| notification("ops", &format!("bulk-{i}"), i))
        .collect();
    let inserts: Vec<ChangeSet> = recs.iter().map(|r| put_notification(r, 0)).collect();
    assert!(
        t.store
            .commit_group(inserts)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let next: Vec<NotificationRecord> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut n = claimed(r, "instance-a", 10);
            if i % 2 == 1 {
                // Delivered at once: one write over version 1 too.
                n.delivered(at(11));
                n.version = 2;
            }
            n
        })
        .collect();
    let fresh = notification("ops", "bulk-new", 20);
    let mut batches: Vec<ChangeSet> = next.iter().map(|n| put_notification(n, 1)).collect();
    batches.push(put_notification(&fresh, 0));
    batches.push(put_notification(&claimed(&fresh, "instance-b", 21), 1));
    let results = t.store.commit_group(batches).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for n in &next {
        assert_eq!(
            t.store.get_notification(n.id()).await.unwrap().as_ref(),
            Some(n)
        );
    }
    let fresh_claimed = t.store.get_notification(fresh.id()).await.unwrap().unwrap();
    assert_eq!(fresh_claimed.claimed_by.as_deref(), Some("instance-b"));
    assert_eq!(fresh_claimed.version, 2);
}
pub(crate) async fn rule_overrides_and_delete(t: &TestStore) {
    let s = &t.store;
    let o1 = rule_override("stuck_order", "alice");
    let o2 = rule_override("stuck_order", "bob");
    let o3 = rule_override("reject_spike", "alice");
    for o in [&o1, &o2, &o3] {
        s.commit(put_override(o, 0)).await.unwrap();
    }
    let all: Vec<RuleOverride> = s.list_rule_overrides(None).await.unwrap();
    assert_eq!(all, vec![o3.clone(), o1.clone(), o2.clone()]);
    let alices = s.list_rule_overrides(Some(&uid("alice"))).await.unwrap();
    assert_eq!(alices, vec![o3.clone(), o1.clone()]);
    assert!(
        s.list_rule_overrides(Some(&uid("carol")))
            .await
            .unwrap()
            .is_empty()
    );

    let mut v2 = o1.clone();
    v2.severity = Some(Severity::Info);
    v2.version = 2;
    s.commit(put_override(&v2, 1)).await.unwrap();
    let delete = |expected| {
        only(StateChange::DeleteRuleOverride {
            rule: o1.rule.clone(),
            user_id: o1.user_id.clone(),
            expected,
        })
    };
    assert_conflict(&s.commit(delete(1)).await, 1, Some(2));
    // A delete in a batch that fails later is undone.
    let mut batch = delete(2);
    let mut stale = o3.clone();
    stale.version = 9;
    batch.changes.push(StateChange::RuleOverride {
        rule_override: Box::new(stale),
        expected: 8,
    });
    assert_conflict(&s.commit(batch).await, 8, Some(1));
    assert_eq!(
        s.get_rule_override(&o1.rule, &o1.user_id).await.unwrap(),
        Some(v2)
    );
    s.commit(delete(2)).await.unwrap();
    assert_eq!(
        s.get_rule_override(&o1.rule, &o1.user_id).await.unwrap(),
        None
    );
    assert_eq!(
        s.list_rule_overrides(Some(&uid("alice"))).await.unwrap(),
        vec![o3.clone()]
    );
    assert_conflict(&s.commit(delete(2)).await, 2, None);
    // Deleted, it can be set again from scratch.
    s.commit(put_override(&o1, 0)).await.unwrap();
    assert_eq!(s.list_rule_overrides(None).await.unwrap(), vec![o3, o1, o2]);
}

pub(crate) async fn failed_alerting_batch_leaves_nothing(t: &TestStore) {
    let s = &t.store;
    let kept = rule_override("stuck_order", "alice");
    let claimed_rec = notification("ops", "g1", 0);
    s.commit(put_override(&kept, 0)).await.unwrap();
    s.commit(put_notification(&claimed_rec, 0)).await.unwrap();

    // Every kind of alerting write, then a conflict at the end.
    let sil = silence(Some("alice"), 0, 60);
    let rec = notification("ops", "g2", 0);
    let o = rule_override("reject_spike", "alice");
    let a = alert("stuck_order", Some("alice"));
    let mut batch = put_silence(&sil, 0);
    batch.changes.extend([
        StateChange::Notification {
            record: Box::new(rec.clone()),
            expected: 0,
        },
        StateChange::Notification {
            record: Box::new(claimed(&claimed_rec, "instance-a", 1)),
            expected: 1,
        },
        StateChange::RuleOverride {
            rule_override: Box::new(o.clone()),
            expected: 0,
        },
        StateChange::DeleteRuleOverride {
            rule: kept.rule.clone(),
            user_id: kept.user_id.clone(),
            expected: 1,
        },
        StateChange::Alert {
            alert: Box::new(a.clone()),
            expected: 0,
        },
        StateChange::Silence {
            silence: Box::new(sil.clone()),
            expected: 0,
        },
    ]);
    assert_conflict(&s.commit(batch.clone()).await, 0, Some(1));
    let nothing_written = || async {
        assert_eq!(s.get_silence(sil.id).await.unwrap(), None);
        assert_eq!(s.get_notification(rec.id()).await.unwrap(), None);
        assert_eq!(
            s.get_notification(claimed_rec.id()).await.unwrap().as_ref(),
            Some(&claimed_rec)
        );
        assert_eq!(
            s.get_rule_override(&o.rule, &o.user_id).await.unwrap(),
            None
        );
        assert_eq!(
            s.get_rule_override(&kept.rule, &kept.user_id)
                .await
                .unwrap()
                .as_ref(),
            Some(&kept)
        );
        assert_eq!(s.get_alert(a.id).await.unwrap(), None);
    };
    nothing_written().await;

    // In a group, the failing batch goes alone; the others commit.
    let other = silence(None, 0, 60);
    let results = s.commit_group(vec![put_silence(&other, 0), batch]).await;
    assert!(results[0].is_ok(), "{results:?}");
    assert_conflict(&results[1], 0, Some(1));
    nothing_written().await;
    assert_eq!(s.get_silence(other.id).await.unwrap(), Some(other));
}
