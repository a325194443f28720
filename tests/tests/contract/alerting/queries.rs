//! Alerting reads: the notification queue (due, latest per group, listing,
//! purge) and the filters and cursors of the alert and silence listings.

use chrono::Duration;
use ordermon_domain::alert::{AlertState, NotificationRecord, Severity};
use ordermon_domain::ids::{AlertId, SilenceId};
use ordermon_domain::ports::{AlertQuery, SilenceQuery};
use ordermon_tests::TestStore;

use super::claimed;
use crate::fixtures::*;

pub(crate) async fn notification_queue(t: &TestStore) {
    let s = &t.store;
    let mut write = Vec::new();
    // ops/g1: three finished records; pager/g1: the same group id elsewhere.
    let mut n1 = notification("ops", "g1", 0);
    n1.delivered(at(1));
    let mut n2 = notification("ops", "g1", 10);
    n2.attempt_failed("refused".to_owned(), None);
    let mut n3 = notification("ops", "g1", 20);
    n3.delivered(at(21));
    let mut n4 = notification("pager", "g1", 1);
    n4.delivered(at(2));
    // Pending: due now; claimed until 60; retried 1 µs after 40; a claim that
    // ran out at 25.
    let due = notification("ops", "g2", 5);
    let mut claim = claimed(&notification("ops", "g3", 6), "instance-a", 30);
    let mut retry = notification("ops", "g4", 7);
    retry.attempt_failed(
        "timeout".to_owned(),
        Some(at(40) + Duration::microseconds(1)),
    );
    let mut lapsed = claimed(&notification("ops", "g5", 3), "instance-b", -5);
    // A failed record alone in its group.
    let mut lonely = notification("ops", "g6", 2);
    lonely.attempt_failed("refused".to_owned(), None);
    // Each is inserted as it stands (version 1).
    for r in [
        &mut n1,
        &mut n2,
        &mut n3,
        &mut n4,
        &mut claim,
        &mut retry,
        &mut lapsed,
        &mut lonely,
    ] {
        r.version = 1;
    }
    for r in [&n1, &n2, &n3, &n4, &due, &claim, &retry, &lapsed, &lonely] {
        write.push(put_notification(r, 0));
    }
    for b in write {
        s.commit(b).await.unwrap();
    }
    let ids =
        |rs: Vec<NotificationRecord>| rs.iter().map(NotificationRecord::id).collect::<Vec<_>>();

    // Due: pending, reached, unclaimed or claim over; oldest first.
    assert_eq!(
        ids(s.due_notifications(at(30), 10).await.unwrap()),
        [due.id(), lapsed.id()]
    );
    assert_eq!(
        ids(s.due_notifications(at(30), 1).await.unwrap()),
        [due.id()]
    );
    assert_eq!(
        ids(s.due_notifications(at(40), 10).await.unwrap()),
        [due.id(), lapsed.id()]
    );
    let retry_at = at(40) + Duration::microseconds(1);
    assert_eq!(
        ids(s.due_notifications(retry_at, 10).await.unwrap()),
        [due.id(), retry.id(), lapsed.id()]
    );
    // A claim ending exactly now has ended.
    assert_eq!(
        ids(s.due_notifications(at(60), 10).await.unwrap()),
        [due.id(), claim.id(), retry.id(), lapsed.id()]
    );
    assert!(s.due_notifications(at(4), 10).await.unwrap().is_empty());
    assert_eq!(s.due_notifications(at(30), 10).await.unwrap()[0], due);

    // The newest record of each (receiver, group), whatever its status.
    let latest = s.latest_per_group().await.unwrap();
    assert_eq!(
        ids(latest.clone()),
        [
            n3.id(),
            due.id(),
            claim.id(),
            retry.id(),
            lapsed.id(),
            lonely.id(),
            n4.id()
        ]
    );
    assert_eq!(latest[0], n3);

    // Listings, newest first.
    assert_eq!(
        ids(s.list_notifications(Some("pager"), 10).await.unwrap()),
        [n4.id()]
    );
    assert_eq!(
        ids(s.list_notifications(None, 3).await.unwrap()),
        [lonely.id(), lapsed.id(), retry.id()]
    );
    assert_eq!(s.list_notifications(Some("ops"), 0).await.unwrap().len(), 8);

    // Purge: finished records created before the cutoff, but never a group's
    // newest (pager/g1 and ops/g6 are old and finished, yet stay).
    assert_eq!(s.purge_notifications(at(15)).await.unwrap(), 2);
    assert_eq!(s.get_notification(n1.id()).await.unwrap(), None);
    assert_eq!(s.get_notification(n2.id()).await.unwrap(), None);
    for kept in [&n3, &n4, &lonely, &due] {
        assert_eq!(
            s.get_notification(kept.id()).await.unwrap().as_ref(),
            Some(kept)
        );
    }
    assert_eq!(s.purge_notifications(at(15)).await.unwrap(), 0);
    // A newer record, even pending, makes the finished one purgeable; pending
    // records are never purged, whatever their age.
    let newer = notification("ops", "g1", 25);
    s.commit(put_notification(&newer, 0)).await.unwrap();
    assert_eq!(s.purge_notifications(at(1_000)).await.unwrap(), 1);
    assert_eq!(s.get_notification(n3.id()).await.unwrap(), None);
    let left = ids(s.list_notifications(None, 0).await.unwrap());
    assert_eq!(
        left,
        [
            newer.id(),
            lonely.id(),
            lapsed.id(),
            retry.id(),
            claim.id(),
            due.id(),
            n4.id()
        ]
    );
    assert_eq!(ids(s.latest_per_group().await.unwrap())[0], newer.id());

    // A record waits behind an older pending record of its own group (a
    // resolve never overtakes the firing notification still being retried);
    // the same group id at another receiver does not wait.
    let mut first = notification("ops", "g7", 30);
    first.attempt_failed("down".to_owned(), Some(at(500)));
    first.version = 1;
    let second = notification("ops", "g7", 31);
    let elsewhere = notification("pager", "g7", 32);
    for r in [&first, &second, &elsewhere] {
        s.commit(put_notification(r, 0)).await.unwrap();
    }
    let now = ids(s.due_notifications(at(100), 50).await.unwrap());
    assert!(now.contains(&elsewhere.id()), "{now:?}");
    assert!(!now.contains(&second.id()), "behind the retried one");
    let later = ids(s.due_notifications(at(500), 50).await.unwrap());
    assert!(later.contains(&first.id()) && !later.contains(&second.id()));
    let mut sent = first.clone();
    sent.delivered(at(501));
    s.commit(put_notification(&sent, 1)).await.unwrap();
    let after = ids(s.due_notifications(at(501), 50).await.unwrap());
    assert!(after.contains(&second.id()), "{after:?}");
}

pub(crate) async fn silence_listing(t: &TestStore) {
    let s = &t.store;
    let s1 = silence(None, 0, 100);
    let s2 = silence(Some("alice"), 0, 50);
    let s3 = silence(Some("bob"), 0, 200);
    let s4 = silence(Some("alice"), 0, 300);
    let s5 = silence(Some("alice"), 0, 10);
    for x in [&s1, &s2, &s3, &s4, &s5] {
        s.commit(put_silence(x, 0)).await.unwrap();
    }
    let list = |q: SilenceQuery| async move {
        s.list_silences(&q)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<SilenceId>>()
    };
    let alice = || Some(uid("alice"));
    assert_eq!(
        list(SilenceQuery::default()).await,
        [s5.id, s4.id, s3.id, s2.id, s1.id]
    );
    // A tenant's silences only: not another's, not an admin's.
    let q = SilenceQuery {
        user_id: alice(),
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s5.id, s4.id, s2.id]);
    // Windows still open after a time (one ending exactly then is over).
    let q = SilenceQuery {
        ending_after: Some(at(50)),
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s4.id, s3.id, s1.id]);
    let q = SilenceQuery {
        user_id: alice(),
        ending_after: Some(at(20)),
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s4.id, s2.id]);
    // Pages through the cursor.
    let q = SilenceQuery {
        limit: 2,
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s5.id, s4.id]);
    let q = SilenceQuery {
        before: Some(s4.id),
        limit: 2,
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s3.id, s2.id]);
    let q = SilenceQuery {
        before: Some(s2.id),
        limit: 2,
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s1.id]);
    let q = SilenceQuery {
        user_id: alice(),
        before: Some(s4.id),
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s2.id]);
    // Expiring a silence moves it out of the open windows.
    let mut over = s4.clone();
    assert!(over.expire(at(30)));
    over.version = 2;
    s.commit(put_silence(&over, 1)).await.unwrap();
    let q = SilenceQuery {
        user_id: alice(),
        ending_after: Some(at(40)),
        ..SilenceQuery::default()
    };
    assert_eq!(list(q).await, [s2.id]);
    let whole = s
        .list_silences(&SilenceQuery {
            user_id: alice(),
            limit: 1,
            ..SilenceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(whole, vec![s5]);
}

pub(crate) async fn alert_listing_filters(t: &TestStore) {
    use AlertState::{Firing, Pending, Resolved};
    use Severity::{Critical, Info, Warning};
    let s = &t.store;
    let a1 = alert_of("stuck_order", Warning, Some("alice"), Firing);
    let a2 = alert_of("stuck_order", Critical, Some("bob"), Firing);
    let a3 = alert_of("reject_spike", Critical, Some("alice"), Pending);
    let a4 = alert_of("reject_spike", Info, None, Resolved);
    let a5 = alert_of("stuck_order", Critical, Some("alice"), Resolved);
    for a in [&a1, &a2, &a3, &a4, &a5] {
        s.commit(put_alert(a, 0)).await.unwrap();
    }
    let list = |q: AlertQuery| async move {
        s.list_alerts(&q)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<AlertId>>()
    };
    let q = AlertQuery::default;
    assert_eq!(list(q()).await, [a5.id, a4.id, a3.id, a2.id, a1.id]);
    assert_eq!(
        list(AlertQuery {
            states: vec![Firing],
            ..q()
        })
        .await,
        [a2.id, a1.id]
    );
    assert_eq!(
        list(AlertQuery {
            states: vec![Pending, Resolved],
            ..q()
        })
        .await,
        [a5.id, a4.id, a3.id]
    );
    assert_eq!(
        list(AlertQuery {
            severities: vec![Critical],
            ..q()
        })
        .await,
        [a5.id, a3.id, a2.id]
    );
    assert_eq!(
        list(AlertQuery {
            severities: vec![Info, Warning],
            ..q()
        })
        .await,
        [a4.id, a1.id]
    );
    assert_eq!(
        list(AlertQuery {
            rule: Some(rule("stuck_order")),
            ..q()
        })
        .await,
        [a5.id, a2.id, a1.id]
    );
    assert_eq!(
        list(AlertQuery {
            user_id: Some(uid("alice")),
            ..q()
        })
        .await,
        [a5.id, a3.id, a1.id]
    );
    let alice_critical = || AlertQuery {
        user_id: Some(uid("alice")),
        severities: vec![Critical],
        ..q()
    };
    assert_eq!(
        list(AlertQuery {
            rule: Some(rule("stuck_order")),
            ..alice_critical()
        })
        .await,
        [a5.id]
    );
    assert!(
        list(AlertQuery {
            states: vec![Firing],
            ..alice_critical()
        })
        .await
        .is_empty()
    );
    // Pages through the cursor, alone and with a filter.
    assert_eq!(list(AlertQuery { limit: 2, ..q() }).await, [a5.id, a4.id]);
    assert_eq!(
        list(AlertQuery {
            before: Some(a4.id),
            limit: 2,
            ..q()
        })
        .await,
        [a3.id, a2.id]
    );
    assert_eq!(
        list(AlertQuery {
            before: Some(a2.id),
            ..q()
        })
        .await,
        [a1.id]
    );
    assert_eq!(
        list(AlertQuery {
            rule: Some(rule("stuck_order")),
            before: Some(a5.id),
            ..q()
        })
        .await,
        [a2.id, a1.id]
    );
    // A state change moves the alert between state listings.
    let mut done = a1.clone();
    assert!(done.resolve(at(5), Some("ops".to_owned())));
    done.version = 2;
    s.commit(put_alert(&done, 1)).await.unwrap();
    assert_eq!(
        list(AlertQuery {
            states: vec![Firing],
            ..q()
        })
        .await,
        [a2.id]
    );
    let whole = s
        .list_alerts(&AlertQuery {
            states: vec![Resolved],
            user_id: Some(uid("alice")),
            ..q()
        })
        .await
        .unwrap();
    assert_eq!(whole, vec![a5, done]);
}
