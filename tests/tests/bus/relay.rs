//! The outbox relay over each bus: committed rows are published once per event
//! id, in commit order per user, and a relay restarted mid-way sends only the
//! rows still unsent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ordermon_application::relay::{OutboxRelay, RelayConfig};
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{ChangeSet, Outbox, Store, SystemClock};
use ordermon_memory::MemoryStore;
use ordermon_tests::bus::TestBus;
use tokio_util::sync::CancellationToken;

use crate::support::{collect, event, expect_quiet, spec};

pub(crate) async fn relay_publishes_each_event_once_in_commit_order(t: &TestBus) {
    let g = t.group("relay");
    let mut sub = t.bus.subscribe(spec(&g, &["#"], 5)).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let users = ["alice", "bob", "carol"];
    let mut committed: Vec<DomainEvent> = Vec::new();
    let mut seq: HashMap<&str, u64> = HashMap::new();
    for i in 0..30 {
        let mut events = Vec::new();
        for j in 0..=(i % 5) {
            let user = users[(i + j) % users.len()];
            let n = seq.entry(user).or_default();
            *n += 1;
            events.push(event(user, *n));
        }
        committed.extend(events.iter().cloned());
        let mut batch = ChangeSet::default();
        batch.push_events(events).unwrap();
        store.commit(batch).await.unwrap();
    }
    let config = RelayConfig {
        batch: 7,
        poll_interval: Duration::from_millis(20),
        ..RelayConfig::default()
    };

    // A first relay sends two batches, then "crashes".
    let first = OutboxRelay::new(store.clone(), t.bus.clone(), Arc::new(SystemClock), config);
    assert_eq!(first.relay_once().await.unwrap(), 7);
    assert_eq!(first.relay_once().await.unwrap(), 7);
    drop(first);
    let total = committed.len();
    assert_eq!(store.pending_count().await.unwrap(), (total - 14) as u64);

    // A second one sends only the rest.
    let cancel = CancellationToken::new();
    let second = OutboxRelay::new(store.clone(), t.bus.clone(), Arc::new(SystemClock), config);
    let task = tokio::spawn(second.run(cancel.clone()));
    let got = collect(t, &mut sub, total).await;
    expect_quiet(t, &mut sub, Duration::from_millis(800)).await;
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(store.pending_count().await.unwrap(), 0);

    let mut times: HashMap<EventId, u32> = HashMap::new();
    for m in &got {
        *times.entry(m.id).or_default() += 1;
    }
    assert_eq!(times.len(), total, "{}", t.kind.name());
    assert!(
        times.values().all(|n| *n == 1),
        "{}: a row was sent twice",
        t.kind.name()
    );
    for user in users {
        let want: Vec<EventId> = committed
            .iter()
            .filter(|e| e.user_id.as_ref().is_some_and(|u| u.as_str() == user))
            .map(|e| e.event_id)
            .collect();
        let have: Vec<EventId> = got.iter().filter(|m| m.key == user).map(|m| m.id).collect();
        assert_eq!(
            have,
            want,
            "{}: {user}'s events out of commit order",
            t.kind.name()
        );
    }
}
