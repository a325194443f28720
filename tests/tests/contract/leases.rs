//! The lease contract: one holder at a time, judged on the store's clock; a
//! renewal keeps the epoch, a change of holder raises it; a lapsed or released
//! lease can be taken; of instances racing for one lease exactly one wins.

use std::time::Duration;

use ordermon_domain::ports::{ChangeSet, Fence, StoreError};
use ordermon_tests::TestStore;

use crate::fixtures::{created, order};

const LONG: Duration = Duration::from_secs(30);

pub(crate) async fn leases_change_hands_with_a_rising_epoch(t: &TestStore) {
    let s = &t.store;
    let a = s.acquire("outbox-relay", "inst-a", LONG).await.unwrap();
    assert!(a.held_by("inst-a"), "{a:?}");
    assert_eq!(a.epoch, 1);
    assert_eq!(a.name, "outbox-relay");

    // Live and someone else's: b gets the lease as it stands, a's.
    let b = s.acquire("outbox-relay", "inst-b", LONG).await.unwrap();
    assert!(b.held_by("inst-a") && !b.held_by("inst-b"), "{b:?}");
    assert_eq!(b.epoch, 1);

    // A renewal keeps the epoch and pushes the expiry.
    let renewed = s.acquire("outbox-relay", "inst-a", LONG).await.unwrap();
    assert!(renewed.held_by("inst-a"));
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.expires_at >= a.expires_at);

    // Only the holder can release it; then b takes it with a higher epoch.
    assert!(!s.release("outbox-relay", "inst-b").await.unwrap());
    assert!(s.release("outbox-relay", "inst-a").await.unwrap());
    assert!(
        !s.release("outbox-relay", "inst-a").await.unwrap(),
        "already released"
    );
    let b = s.acquire("outbox-relay", "inst-b", LONG).await.unwrap();
    assert!(b.held_by("inst-b"), "{b:?}");
    assert_eq!(b.epoch, 2);

    // A lapsed lease goes to the next asker, epoch raised; the old holder
    // coming back finds it taken.
    let short = s
        .acquire("user:al_%ce", "inst-a", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(short.held_by("inst-a"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let listed = s.leases("user:").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(!listed[0].live, "lapsed: {listed:?}");
    let taken = s.acquire("user:al_%ce", "inst-b", LONG).await.unwrap();
    assert!(taken.held_by("inst-b"));
    assert_eq!(taken.epoch, short.epoch + 1);
    let back = s.acquire("user:al_%ce", "inst-a", LONG).await.unwrap();
    assert!(back.held_by("inst-b") && !back.held_by("inst-a"));
    // Taken again by its own holder after a release: a new epoch all the
    // same (writes under the old one may have been fenced off meanwhile).
    assert!(s.release("user:al_%ce", "inst-b").await.unwrap());
    let again = s.acquire("user:al_%ce", "inst-b", LONG).await.unwrap();
    assert!(again.held_by("inst-b"));
    assert_eq!(again.epoch, taken.epoch + 1);

    // The listing filters by prefix literally (`_` and `%` are not patterns).
    s.acquire("user:bob", "inst-a", LONG).await.unwrap();
    s.acquire("userXbob", "inst-a", LONG).await.unwrap();
    let names: Vec<String> = s
        .leases("user:")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["user:al_%ce", "user:bob"]);
    assert_eq!(s.leases("").await.unwrap().len(), 4);
}

pub(crate) async fn bad_lease_names_change_nothing(t: &TestStore) {
    let s = &t.store;
    for (name, holder) in [("", "a"), ("x", ""), ("x\n", "a"), ("x", &*"h".repeat(201))] {
        let r = s.acquire(name, holder, LONG).await;
        assert!(r.is_err(), "{name:?}/{holder:?} accepted: {r:?}");
    }
    assert!(s.leases("").await.unwrap().is_empty());
    let max = "n".repeat(200);
    assert!(s.acquire(&max, &max, LONG).await.unwrap().held_by(&max));
}

pub(crate) async fn one_winner_among_racing_instances(t: &TestStore) {
    for round in 0..3 {
        let name = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = t.store.clone();
                let name = name.clone();
                tokio::spawn(
                    async move { s.acquire(&name, &format!("inst-{i}"), LONG).await.unwrap() },
                )
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let winners: Vec<_> = (0..8)
            .filter(|i| results[*i].held_by(&format!("inst-{i}")))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let holder = format!("inst-{}", winners[0]);
        assert!(
            results.iter().all(|l| l.holder == holder && l.epoch == 1),
            "{results:?}"
        );
    }
}

fn fenced(batch: ChangeSet, lease: &str, holder: &str, epoch: u64) -> ChangeSet {
    ChangeSet {
        fence: Some(Fence {
            lease: lease.to_owned(),
            holder: holder.to_owned(),
            epoch,
        }),
        ..batch
    }
}

fn is_fenced(r: &Result<ordermon_domain::ports::CommitReceipt, StoreError>) -> bool {
    matches!(
        r,
        Err(StoreError::Conflict {
            entity: "lease",
            ..
        })
    )
}

/// A write carrying a fence lands only while its writer holds the lease at
/// that epoch; in a group, a stale writer's batch fails alone.
pub(crate) async fn fenced_writes_follow_the_lease(t: &TestStore) {
    let s = &t.store;
    let a = s.acquire("user:alice", "inst-a", LONG).await.unwrap();
    let order_a = order("alice", "f-1");
    s.commit(fenced(created(&order_a), "user:alice", "inst-a", a.epoch))
        .await
        .unwrap();
    // Wrong epoch, wrong holder, unknown lease: refused, nothing written.
    for (holder, epoch, lease) in [
        ("inst-a", a.epoch + 1, "user:alice"),
        ("inst-b", a.epoch, "user:alice"),
        ("inst-a", 1, "user:nobody"),
    ] {
        let o = order("alice", &format!("f-x-{holder}-{epoch}-{lease}"));
        let r = s.commit(fenced(created(&o), lease, holder, epoch)).await;
        assert!(is_fenced(&r), "{holder}/{epoch}/{lease}: {r:?}");
        assert!(s.get_order(o.id).await.unwrap().is_none());
    }
    // b takes over: a's writes under epoch 1 are refused from now on, b's
    // under epoch 2 land; in one group each batch gets its own answer.
    assert!(s.release("user:alice", "inst-a").await.unwrap());
    let b = s.acquire("user:alice", "inst-b", LONG).await.unwrap();
    assert_eq!(b.epoch, a.epoch + 1);
    let (stale, fresh) = (order("alice", "f-stale"), order("alice", "f-fresh"));
    let results = s
        .commit_group(vec![
            fenced(created(&stale), "user:alice", "inst-a", a.epoch),
            fenced(created(&fresh), "user:alice", "inst-b", b.epoch),
            created(&order("alice", "f-unfenced")),
        ])
        .await;
    assert!(is_fenced(&results[0]), "{results:?}");
    assert!(results[1].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(s.get_order(stale.id).await.unwrap().is_none());
    assert!(s.get_order(fresh.id).await.unwrap().is_some());
    // A group whose batches all hold their fences (two under one lease)
    // lands whole.
    let (one, two) = (order("alice", "f-g-1"), order("alice", "f-g-2"));
    let results = s
        .commit_group(vec![
            fenced(created(&one), "user:alice", "inst-b", b.epoch),
            fenced(created(&two), "user:alice", "inst-b", b.epoch),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(s.get_order(one.id).await.unwrap().is_some());
    assert!(s.get_order(two.id).await.unwrap().is_some());
}

/// One statement renews every live lease of a holder under a prefix, and
/// none of anyone else's.
pub(crate) async fn renew_all_extends_only_the_holders_live_leases(t: &TestStore) {
    let s = &t.store;
    let short = Duration::from_millis(600);
    for name in ["user:a", "user:b", "member:inst-a"] {
        s.acquire(name, "inst-a", short).await.unwrap();
    }
    s.acquire("user:c", "inst-b", short).await.unwrap();
    s.acquire("user:gone", "inst-a", Duration::from_millis(300))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.renew_all("user:", "inst-a", LONG).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let live: Vec<(String, bool)> = s
        .leases("")
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.live))
        .collect();
    assert_eq!(
        live,
        [
            ("member:inst-a".to_owned(), false),
            ("user:a".to_owned(), true),
            ("user:b".to_owned(), true),
            ("user:c".to_owned(), false),
            ("user:gone".to_owned(), false),
        ]
    );
}
