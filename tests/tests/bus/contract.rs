//! The bus contract: what every implementation of the bus port guarantees.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ordermon_application::consume::{Consumer, ConsumerConfig};
use ordermon_domain::ids::EventId;
use ordermon_tests::bus::{BusKind, TestBus};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::{
    Effects, collect, eventually, expect_next, expect_quiet, message, seq_of, spec,
};

/// Groups get every matching message, with its id, topic, key, payload and
/// headers intact; patterns filter (`order.#` does not see `account.*`).
pub(crate) async fn publish_and_consume(t: &TestBus) {
    let orders = t.group("orders");
    let all = t.group("all");
    let mut a = t
        .bus
        .subscribe(spec(&orders, &["order.#"], 5))
        .await
        .unwrap();
    let mut b = t.bus.subscribe(spec(&all, &["#"], 5)).await.unwrap();

    let mut m1 = message("order.filled.alice", "alice", 1);
    m1.headers.insert("trace".to_owned(), "t-1".to_owned());
    let m2 = message("account.reserved.alice", "alice", 2);
    let m3 = message("order.canceled.bob", "bob", 1);
    t.bus
        .publish(&[m1.clone(), m2.clone(), m3.clone()])
        .await
        .unwrap();

    let first = expect_next(t, &mut a).await;
    assert_eq!(first.attempt, 1);
    a.ack(&first).await.unwrap();
    let second = collect(t, &mut a, 1).await.remove(0);
    let got: HashMap<EventId, _> = [first.message, second]
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    assert_eq!(got.get(&m1.id), Some(&m1), "{}", t.kind.name());
    assert_eq!(got.get(&m3.id), Some(&m3), "{}", t.kind.name());
    expect_quiet(t, &mut a, Duration::from_millis(800)).await;

    let everything: HashSet<EventId> = collect(t, &mut b, 3).await.iter().map(|m| m.id).collect();
    assert_eq!(everything, HashSet::from([m1.id, m2.id, m3.id]));
    expect_quiet(t, &mut b, Duration::from_millis(300)).await;
}

/// Messages with one key arrive in publish order, across batches.
pub(crate) async fn order_per_key(t: &TestBus) {
    let g = t.group("order");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 5)).await.unwrap();
    let keys = ["alice", "bob", "carol", "dave", "erin"];
    let mut seq: HashMap<&str, u64> = HashMap::new();
    for _batch in 0..3 {
        let batch: Vec<_> = (0..100)
            .map(|i| {
                let key = keys[i % keys.len()];
                let n = seq.entry(key).or_default();
                *n += 1;
                message(&format!("order.updated.{key}"), key, *n)
            })
            .collect();
        t.bus.publish(&batch).await.unwrap();
    }
    let got = collect(t, &mut sub, 300).await;
    let mut last: HashMap<String, u64> = HashMap::new();
    for m in &got {
        let s = seq_of(m);
        let prev = last.insert(m.key.clone(), s).unwrap_or(0);
        assert_eq!(s, prev + 1, "{}: key {} out of order", t.kind.name(), m.key);
    }
    assert!(last.values().all(|n| *n == 60));
}

/// A nacked delivery comes again, as the next attempt.
pub(crate) async fn redelivery_after_failure(t: &TestBus) {
    let g = t.group("redeliver");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 5)).await.unwrap();
    let m = message("order.filled.alice", "alice", 1);
    t.bus.publish(std::slice::from_ref(&m)).await.unwrap();
    let d = expect_next(t, &mut sub).await;
    assert_eq!((d.message.id, d.attempt), (m.id, 1));
    sub.nack(&d, "handler failed").await.unwrap();
    let again = expect_next(t, &mut sub).await;
    assert_eq!(
        (again.message.id, again.attempt),
        (m.id, 2),
        "{}",
        t.kind.name()
    );
    assert_eq!(again.message, m);
    sub.ack(&again).await.unwrap();
    expect_quiet(t, &mut sub, Duration::from_millis(800)).await;
}

/// Fails a message `max_attempts` times; returns its id.
async fn fail_until_dead(
    t: &TestBus,
    sub: &mut Box<dyn ordermon_domain::ports::Subscription>,
    max: u32,
) -> EventId {
    let mut id = None;
    for attempt in 1..=max {
        let d = expect_next(t, sub).await;
        assert_eq!(d.attempt, attempt, "{}", t.kind.name());
        id = Some(d.message.id);
        sub.nack(&d, &format!("boom {attempt}")).await.unwrap();
    }
    id.unwrap()
}

/// After `max_attempts` failures a message is a dead letter and is not
/// delivered again.
pub(crate) async fn dead_letter_after_max_attempts(t: &TestBus) {
    let g = t.group("dead");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 3)).await.unwrap();
    let m = message("order.rejected.alice", "alice", 1);
    t.bus.publish(std::slice::from_ref(&m)).await.unwrap();
    assert_eq!(fail_until_dead(t, &mut sub, 3).await, m.id);
    expect_quiet(t, &mut sub, Duration::from_millis(1000)).await;
    let dead = t.bus.dead_letters(&g, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{}", t.kind.name());
    assert_eq!(dead[0].message, m);
    assert_eq!((dead[0].group.as_str(), dead[0].attempts), (g.as_str(), 3));
    assert_eq!(dead[0].error, "boom 3");
    assert!(
        t.bus
            .dead_letters(&t.group("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Replay sends chosen dead letters back to their group only, as a first
/// attempt, and removes them from the dead letters.
pub(crate) async fn replay_from_dead_letters(t: &TestBus) {
    let g = t.group("replay");
    let bystander = t.group("bystander");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 2)).await.unwrap();
    let mut other = t.bus.subscribe(spec(&bystander, &["#"], 2)).await.unwrap();
    let m1 = message("order.filled.alice", "alice", 1);
    let m2 = message("order.filled.bob", "bob", 1);
    t.bus.publish(&[m1.clone(), m2.clone()]).await.unwrap();
    collect(t, &mut other, 2).await;

    // Both fail twice and die.
    let mut attempts: HashMap<EventId, u32> = HashMap::new();
    while attempts.values().filter(|n| **n == 2).count() < 2 {
        let d = expect_next(t, &mut sub).await;
        *attempts.entry(d.message.id).or_default() += 1;
        sub.nack(&d, "boom").await.unwrap();
    }
    expect_quiet(t, &mut sub, Duration::from_millis(800)).await;
    assert_eq!(t.bus.dead_letters(&g, 10).await.unwrap().len(), 2);

    let unknown = EventId::generate();
    assert_eq!(
        t.bus
            .replay_dead_letters(&g, Some(&[unknown]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        t.bus.replay_dead_letters(&g, Some(&[m1.id])).await.unwrap(),
        1,
        "{}",
        t.kind.name()
    );
    let d = expect_next(t, &mut sub).await;
    assert_eq!((d.message.id, d.attempt), (m1.id, 1), "{}", t.kind.name());
    assert_eq!(d.message, m1);
    sub.ack(&d).await.unwrap();
    let left = t.bus.dead_letters(&g, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message.id, m2.id);

    // The rest, then nothing is left; the other group saw no replay.
    assert_eq!(t.bus.replay_dead_letters(&g, None).await.unwrap(), 1);
    let d = expect_next(t, &mut sub).await;
    assert_eq!(d.message.id, m2.id);
    sub.ack(&d).await.unwrap();
    assert!(t.bus.dead_letters(&g, 10).await.unwrap().is_empty());
    expect_quiet(t, &mut other, Duration::from_millis(500)).await;
    expect_quiet(t, &mut sub, Duration::from_millis(300)).await;
}

/// Through the consumer framework, a message delivered twice (a republish by
/// the relay, a redelivery after a lost ack) has one effect.
pub(crate) async fn duplicates_have_no_double_effect(t: &TestBus) {
    let g = t.group("dedupe");
    let effects = Effects::new();
    let mut config = ConsumerConfig::new(g, ["#"]);
    config.max_attempts = 3;
    let consumer = Consumer::new(t.bus.clone(), effects.clone(), config);
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let handle = consumer.spawn(&tracker, cancel.clone());
    eventually("the consumer to start", Duration::from_secs(20), || {
        handle.status().running
    })
    .await;

    let m = message("order.filled.alice", "alice", 1);
    let other = message("order.filled.alice", "alice", 2);
    t.bus.publish(std::slice::from_ref(&m)).await.unwrap();
    t.bus.publish(&[m.clone(), other.clone()]).await.unwrap();
    eventually("three deliveries", crate::support::patience(t), || {
        let s = handle.status();
        s.handled + s.duplicates >= 3
    })
    .await;
    let s = handle.status();
    assert_eq!((s.handled, s.duplicates), (2, 1), "{}", t.kind.name());
    assert_eq!(effects.applied.lock().get(&m.id), Some(&1));
    assert!(effects.doubled().is_empty());
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

/// Waits until the bus reads `expected` as `group`'s backlog; panics with the
/// last reading when it does not in time.
async fn expect_backlog(t: &TestBus, group: &str, expected: u64, when: &str) {
    let deadline = tokio::time::Instant::now() + crate::support::patience(t);
    loop {
        let read = t.bus.backlog(group).await;
        if matches!(read, Ok(Some(n)) if n == expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: backlog {when}: expected {expected}, read {read:?}",
            t.kind.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The backlog counts what the group has yet to receive or acknowledge: all
/// of it before anything is received; after three acks and a nack, the rest
/// (the nacked one included) once the member is gone; nothing once every
/// message is acknowledged.
pub(crate) async fn backlog_counts_what_the_group_has_left(t: &TestBus) {
    let g = t.group("backlog");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 5)).await.unwrap();
    let keys = ["alice", "bob", "carol"];
    // One publish per message: tansu, the Kafka-compatible broker of the
    // tests, answers a ListOffsets for the latest offset with the last record
    // batch's base offset + 1 instead of the log end offset, so a batch of
    // several records would read as one (Kafka itself counts them all).
    for i in 0..7_u64 {
        let key = keys[usize::try_from(i).unwrap() % keys.len()];
        let m = message(&format!("order.updated.{key}"), key, i + 1);
        t.bus.publish(&[m]).await.unwrap();
    }
    expect_backlog(t, &g, 7, "before anything is received").await;
    // A group the broker does not know: no reading, except on Kafka, which
    // keeps no list of a topic's groups and reads what such a group would
    // start with (everything retained).
    let unknown = t.bus.backlog(&format!("unknown-{}", t.suffix)).await;
    let expected = if t.kind == BusKind::Kafka {
        Some(7)
    } else {
        None
    };
    assert_eq!(unknown, Ok(expected), "{}", t.kind.name());

    collect(t, &mut sub, 3).await;
    let failed = expect_next(t, &mut sub).await;
    sub.nack(&failed, "later").await.unwrap();
    // Dropping the member sends its acks (RabbitMQ batches them; Kafka
    // commits) and hands back what it held unacknowledged.
    drop(sub);
    expect_backlog(t, &g, 4, "after 3 acks and a nack").await;

    let mut sub = t.bus.subscribe(spec(&g, &["#"], 5)).await.unwrap();
    let rest: HashSet<EventId> = collect(t, &mut sub, 4).await.iter().map(|m| m.id).collect();
    assert!(rest.contains(&failed.message.id), "{}", t.kind.name());
    drop(sub);
    expect_backlog(t, &g, 0, "after every ack").await;
}
