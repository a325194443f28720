//! The write contract: exact decimals, optimistic concurrency, atomic batches,
//! group commit, the event log and the outbox.

use std::collections::HashMap;
use std::sync::Arc;

use ordermon_domain::account::{Account, Hold, Reservation};
use ordermon_domain::event::{AggregateType, DomainEvent, EventPayload};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{OrderId, StrategyId};
use ordermon_domain::order::{Order, OrderEvent, TimedOrderEvent};
use ordermon_domain::ports::{
    ChangeSet, FillQuery, OutboxMessage, ReservationWrite, StateChange, StoreError,
};
use ordermon_domain::values::{Currency, Money};
use ordermon_tests::TestStore;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::Barrier;

use crate::fixtures::*;

fn is_conflict(r: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

pub(crate) async fn decimal_round_trip(t: &TestStore) {
    let s = &t.store;
    let tiny = order_with("alice", "tiny", "ACME.SIM", TINY, BIG, chrono::Utc::now());
    let big = order_with("alice", "big", "ACME.SIM", BIG, TINY, chrono::Utc::now());
    for o in [&tiny, &big] {
        s.commit(created(o)).await.unwrap();
        assert_eq!(s.get_order(o.id).await.unwrap().as_ref(), Some(o));
    }
    let back = s.get_order(tiny.id).await.unwrap().unwrap();
    assert_eq!(back.quantity.get().to_string(), "0.000000000000000001");
    assert_eq!(
        back.price.unwrap().get().to_string(),
        "123456789012.123456789"
    );

    let acct = account("alice", BIG, TINY);
    s.commit(only(StateChange::Account {
        account: Box::new(acct.clone()),
        expected: 0,
        reservations: ReservationWrite::All,
    }))
    .await
    .unwrap();
    let got = s.get_account(&uid("alice")).await.unwrap().unwrap();
    assert_eq!(got, acct);
    let b = got.balance(&usd());
    assert_eq!((b.total, b.reserved), (BIG, TINY));

    let pos = position("alice", "ACME.SIM", TINY, BIG);
    s.commit(only(StateChange::Position {
        position: Box::new(pos.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    assert_eq!(
        s.get_position(&uid("alice"), &iid("ACME.SIM"))
            .await
            .unwrap(),
        Some(pos)
    );

    let f = fill(&tiny, "t-1", TINY, BIG);
    s.commit(only(StateChange::Fill(Box::new(f.clone()))))
        .await
        .unwrap();
    let fills = s.list_fills(&FillQuery::default()).await.unwrap();
    assert_eq!(
        fills.iter().map(|(_, f)| f).collect::<Vec<&Fill>>(),
        vec![&f]
    );

    let inst = instrument("TINY.SIM");
    s.commit(only(StateChange::Instrument {
        instrument: Box::new(inst.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    assert_eq!(s.get_instrument(&inst.id).await.unwrap(), Some(inst));

    // Bars live in plain columns only: this is the columns' own exactness.
    let bars = vec![bar("ACME.SIM", 0, BIG), bar("ACME.SIM", 1, TINY)];
    assert_eq!(s.upsert_bars(&bars).await.unwrap(), 2);
    let (from, to) = (
        bars[0].open_time,
        bars[1].open_time + chrono::Duration::minutes(1),
    );
    let back = s
        .bars(&iid("ACME.SIM"), bars[0].interval, from, to, 10)
        .await
        .unwrap();
    assert_eq!(back, bars);

    // Balances are real columns an operator can correct; the store reads them back exactly.
    if let Some(n) = t
        .operator_sql(
            "UPDATE account_balances SET total = '98765432109.987654321', \
             reserved = '0.000000000000000002' WHERE user_id = 'alice'",
        )
        .await
    {
        assert_eq!(n, 1);
        let b = s
            .get_account(&uid("alice"))
            .await
            .unwrap()
            .unwrap()
            .balance(&usd());
        assert_eq!(
            (b.total, b.reserved),
            (dec!(98765432109.987654321), dec!(0.000000000000000002))
        );
    }
}

pub(crate) async fn two_writers_same_version(t: &TestStore) {
    for round in 0..5 {
        let o = order("alice", &format!("race-{round}"));
        t.store.commit(created(&o)).await.unwrap();
        let (_, a) = advance(&o, OrderEvent::Submitted);
        let (_, b) = advance(&o, OrderEvent::Submitted);
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [a, b]
            .into_iter()
            .map(|batch| {
                let (store, barrier) = (Arc::clone(&t.store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.commit(batch).await
                })
            })
            .collect();
        let results: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        let lost = results.iter().find(|r| r.is_err()).unwrap();
        assert!(
            matches!(
                lost,
                Err(StoreError::Conflict {
                    expected: 1,
                    actual: Some(2),
                    ..
                })
            ),
            "{lost:?}"
        );
        let events = t
            .store
            .aggregate_events(AggregateType::Order, &o.id.to_string())
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "only the winner's event is logged");
    }

    // State-only batches race the same way.
    let u = user("carol");
    t.store
        .commit(only(StateChange::User {
            user: Box::new(u.clone()),
            expected: 0,
        }))
        .await
        .unwrap();
    let mut next = u.clone();
    next.version = 2;
    let batches = [next.clone(), next].map(|u| {
        only(StateChange::User {
            user: Box::new(u),
            expected: 1,
        })
    });
    let results = futures::future::join_all(batches.map(|b| t.store.commit(b))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().any(is_conflict));
}

pub(crate) async fn failed_batch_leaves_nothing(t: &TestStore) {
    let s = &t.store;
    let a = order("alice", "a");
    let first = s.commit(created(&a)).await.unwrap();

    // A batch whose last state change fails.
    let b = order("alice", "b");
    let mut batch = created(&b);
    batch.changes.push(StateChange::Fill(Box::new(fill(
        &a,
        "t-1",
        dec!(1),
        dec!(10),
    ))));
    batch.changes.push(StateChange::User {
        user: Box::new(user("bob")),
        expected: 0,
    });
    let mut stale = account("alice", dec!(5), dec!(0));
    stale.version = 8;
    batch.changes.push(StateChange::Account {
        account: Box::new(stale),
        expected: 7,
        reservations: ReservationWrite::All,
    });
    assert!(is_conflict(&s.commit(batch).await));

    // A batch whose last event fails (it repeats a logged event id).
    let c = order("alice", "c");
    let mut batch = created(&c);
    let logged = created(&a).events.remove(0);
    let mut repeat = batch.events[0].clone();
    repeat.event_id = s.events_after(0, None, 10).await.unwrap()[0].event.event_id;
    repeat.aggregate_id = logged.aggregate_id.clone();
    repeat.sequence = 99;
    batch.events.push(repeat);
    let refused = s.commit(batch).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Duplicate {
                entity: "event",
                ..
            })
        ),
        "{refused:?}"
    );

    for o in [&b, &c] {
        assert_eq!(s.get_order(o.id).await.unwrap(), None);
        let cid = o.client_order_id.as_str();
        assert_eq!(
            s.get_order_by_client_id(&o.user_id, cid).await.unwrap(),
            None
        );
        let events = s
            .aggregate_events(AggregateType::Order, &o.id.to_string())
            .await;
        assert!(events.unwrap().is_empty());
    }
    assert!(
        s.list_fills(&FillQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get_user(&uid("bob")).await.unwrap(), None);
    assert_eq!(s.events_after(0, None, 100).await.unwrap().len(), 1);
    assert_eq!(s.pending_count().await.unwrap(), 1);

    // The log carries on strictly increasing after the failures.
    let d = order("alice", "d");
    let next = s.commit(created(&d)).await.unwrap();
    assert!(next.event_positions[0] > first.event_positions[0]);
}

pub(crate) async fn group_commit_isolates_batches(t: &TestStore) {
    let s = &t.store;
    let x = order("alice", "x");
    s.commit(created(&x)).await.unwrap();
    let (a, b) = (order("alice", "a"), order("alice", "b"));
    let twin = order("alice", "a"); // same client order id as `a`
    let mut stale_x = x.clone();
    stale_x.version = 6;
    let results = s
        .commit_group(vec![
            created(&a),
            created(&x),
            created(&b),
            only(StateChange::Order {
                order: Box::new(stale_x),
                expected: 5,
            }),
            created(&twin),
        ])
        .await;
    assert_eq!(results.len(), 5);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(
            results[1],
            Err(StoreError::Conflict {
                actual: Some(1),
                ..
            })
        ),
        "{results:?}"
    );
    assert!(matches!(
        results[3],
        Err(StoreError::Conflict {
            expected: 5,
            actual: Some(1),
            ..
        })
    ));
    assert!(
        matches!(
            results[4],
            Err(StoreError::Duplicate {
                entity: "order",
                ..
            })
        ),
        "{results:?}"
    );
    assert!(s.get_order(a.id).await.unwrap().is_some());
    assert!(s.get_order(b.id).await.unwrap().is_some());
    assert_eq!(s.get_order(twin.id).await.unwrap(), None);
    assert_eq!(s.get_order(x.id).await.unwrap(), Some(x));
    assert_eq!(s.pending_count().await.unwrap(), 3);
    let pa = results[0].as_ref().unwrap().event_positions[0];
    let pb = results[2].as_ref().unwrap().event_positions[0];
    assert!(pa < pb);

    // A clean group, with a batch that builds on an earlier one of the group.
    let orders: Vec<Order> = (0..10).map(|i| order("bob", &format!("g-{i}"))).collect();
    let mut batches: Vec<ChangeSet> = orders.iter().map(created).collect();
    let (submitted, step) = advance(&orders[0], OrderEvent::Submitted);
    batches.push(step);
    let results = s.commit_group(batches).await;
    let positions: Vec<i64> = results
        .iter()
        .map(|r| r.as_ref().unwrap().event_positions[0])
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(s.get_order(orders[0].id).await.unwrap(), Some(submitted));
    assert!(s.commit_group(Vec::new()).await.is_empty());
}

/// Text that SQL treats specially — quotes, backslashes, placeholders,
/// comment and statement separators, non-ASCII in an outbox payload — is
/// stored and read back exactly through a group commit; a batch the group
/// refuses fails alone.
pub(crate) async fn group_commit_stores_text_exactly(t: &TestStore) {
    let s = &t.store;
    let awkward = [
        "o'neil",
        r"back\slash\",
        "q?$1?;--",
        r"E'\x27'",
        r#""quoted"\'"#,
        "''''",
    ];
    let orders: Vec<Order> = awkward.iter().map(|cid| order("alice", cid)).collect();
    let mut batches: Vec<ChangeSet> = orders.iter().map(created).collect();
    let mut note = created(&order("alice", "unicode"));
    let payload = r#"{"note":"Zürich ✓ 'a' \\ \n $1 ?"}"#.to_owned();
    note.outbox[0].payload = payload.clone();
    batches.push(note);
    let results = s.commit_group(batches).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (o, cid) in orders.iter().zip(awkward) {
        let stored = s.get_order(o.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(o), "{cid}");
        let by_cid = s
            .get_order_by_client_id(&o.user_id, cid)
            .await
            .unwrap()
            .map(|o| o.id);
        assert_eq!(by_cid, Some(o.id), "{cid}");
    }
    let pending = s.pending(100).await.unwrap();
    assert!(
        pending.iter().any(|r| r.message.payload == payload),
        "{pending:?}"
    );
    // The first order again: refused alone, the rest of the group lands.
    let extra = order("alice", "after'quote");
    let results = s
        .commit_group(vec![created(&orders[0]), created(&extra)])
        .await;
    assert!(results[0].is_err(), "{results:?}");
    assert!(results[1].is_ok(), "{results:?}");
    assert_eq!(
        s.get_order(orders[0].id).await.unwrap().as_ref(),
        Some(&orders[0])
    );
    assert!(s.get_order(extra.id).await.unwrap().is_some());
}

pub(crate) async fn group_commit_updates_many_rows(t: &TestStore) {
    let s = &t.store;
    // Twelve users with an account and an accepted order each.
    let users: Vec<String> = (0..12).map(|i| format!("grp{i}")).collect();
    let mut accounts = Vec::new();
    let mut orders = Vec::new();
    for u in &users {
        let a = account(u, dec!(1000), dec!(0));
        s.commit(only(StateChange::Account {
            account: Box::new(a.clone()),
            expected: 0,
            reservations: ReservationWrite::All,
        }))
        .await
        .unwrap();
        let o = order(u, "grp-order");
        s.commit(created(&o)).await.unwrap();
        accounts.push(a);
        orders.push(o);
    }
    // One group: every account changes (balances too, in two currencies for
    // some) and every order advances; user 5's account is stale.
    let mut batches = Vec::new();
    let mut expected_accounts = Vec::new();
    for (i, (a, o)) in accounts.iter().zip(&orders).enumerate() {
        let mut next = a.clone();
        // The stale writer believes it is at version 9.
        let expected = if i == 5 { 9 } else { a.version };
        next.version = expected + 1;
        if let Some(b) = next.balances.get_mut(&usd()) {
            b.reserved = Decimal::from(i as u64);
        }
        if i % 3 == 0 {
            next.adjust_cash(&Money::new(dec!(7.5), Currency::new("EUR").unwrap()).unwrap())
                .unwrap();
        }
        let (advanced, mut batch) = advance(o, OrderEvent::Submitted);
        batch.changes.push(StateChange::Account {
            account: Box::new(next.clone()),
            expected,
            reservations: ReservationWrite::All,
        });
        batches.push(batch);
        expected_accounts.push((next, advanced));
    }
    let results = s.commit_group(batches).await;
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert!(
                matches!(
                    r,
                    Err(StoreError::Conflict {
                        expected: 9,
                        actual: Some(1),
                        ..
                    })
                ),
                "{r:?}"
            );
        } else {
            assert!(r.is_ok(), "batch {i}: {r:?}");
        }
    }
    for (i, (u, (next, advanced))) in users.iter().zip(&expected_accounts).enumerate() {
        let stored = s.get_account(&uid(u)).await.unwrap().unwrap();
        let order = s.get_order(advanced.id).await.unwrap().unwrap();
        if i == 5 {
            assert_eq!(stored, accounts[5], "the stale batch changed nothing");
            assert_eq!(order, orders[5]);
        } else {
            assert_eq!(&stored, next, "account {u}, balances included");
            assert_eq!(&order, advanced);
        }
    }
    // A clean group of the same shape takes the fast path.
    let mut batches = Vec::new();
    let mut wanted = Vec::new();
    for (u, (next, _)) in users
        .iter()
        .zip(&expected_accounts)
        .filter(|(u, _)| *u != "grp5")
    {
        let mut again = next.clone();
        again.version += 1;
        if let Some(b) = again.balances.get_mut(&usd()) {
            b.reserved = Decimal::ZERO;
        }
        batches.push(only(StateChange::Account {
            account: Box::new(again.clone()),
            expected: next.version,
            reservations: ReservationWrite::All,
        }));
        wanted.push((u.clone(), again));
    }
    assert!(s.commit_group(batches).await.iter().all(Result::is_ok));
    for (u, again) in wanted {
        assert_eq!(s.get_account(&uid(&u)).await.unwrap().unwrap(), again);
    }
}

pub(crate) async fn event_log_replays_order(t: &TestStore) {
    let s = &t.store;
    let mut o = order_with(
        "alice",
        "replay",
        "ACME.SIM",
        dec!(10),
        dec!(10.25),
        chrono::Utc::now(),
    );
    s.commit(created(&o)).await.unwrap();
    let steps = [
        OrderEvent::Submitted,
        OrderEvent::Accepted {
            venue_order_id: Some("V-1".to_owned()),
        },
        OrderEvent::Filled {
            fill: fill(&o, "t-1", dec!(4), dec!(10.25)),
        },
        OrderEvent::PendingCancel,
        OrderEvent::Filled {
            fill: fill(&o, "t-2", dec!(6), dec!(10.2)),
        },
    ];
    for e in steps {
        let (next, batch) = advance(&o, e);
        s.commit(batch).await.unwrap();
        o = next;
    }
    let stored = s.get_order(o.id).await.unwrap().unwrap();
    assert_eq!(stored, o);
    let events = s
        .aggregate_events(AggregateType::Order, &o.id.to_string())
        .await
        .unwrap();
    assert_eq!(events.len(), 6);
    let seqs: Vec<u64> = events.iter().map(|e| e.event.sequence).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    let timed: Vec<TimedOrderEvent> = events
        .iter()
        .map(|e| match &e.event.payload {
            EventPayload::Order(oe) => TimedOrderEvent {
                at: e.event.occurred_at,
                event: oe.clone(),
            },
            other => panic!("not an order event: {other:?}"),
        })
        .collect();
    let mut replayed = Order::replay(&timed).unwrap();
    replayed.version = stored.version; // versions count commits, not events
    assert_eq!(replayed, stored);
}

pub(crate) async fn outbox_commit_order_and_mark_once(t: &TestStore) {
    let s = &t.store;
    let mut expected = Vec::new();
    for i in 0..3 {
        let o = order("alice", &format!("o-{i}"));
        let mut batch = created(&o);
        let mut extra: OutboxMessage = batch.outbox[0].clone();
        extra.topic = format!("audit.{i}");
        // A trace context is stored with its row (none on the first).
        extra.traceparent = Some(format!("00-{:032x}-{:016x}-01", i + 1, i + 7));
        batch.outbox.push(extra);
        expected.extend(
            batch
                .outbox
                .iter()
                .map(|m| (m.event_id, m.topic.clone(), m.traceparent.clone())),
        );
        s.commit(batch).await.unwrap();
    }
    let pending = s.pending(100).await.unwrap();
    let got: Vec<_> = pending
        .iter()
        .map(|r| {
            (
                r.message.event_id,
                r.message.topic.clone(),
                r.message.traceparent.clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        pending[0].message.payload.len(),
        pending[1].message.payload.len()
    );
    assert_eq!(s.pending(2).await.unwrap().len(), 2);
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    assert_eq!(s.mark_sent(&ids[..4]).await.unwrap(), 4);
    assert_eq!(s.mark_sent(&ids).await.unwrap(), 2);
    assert_eq!(s.mark_sent(&ids).await.unwrap(), 0);
    assert_eq!(s.mark_sent(&[]).await.unwrap(), 0);
    assert_eq!(s.pending_count().await.unwrap(), 0);
    assert!(s.pending(10).await.unwrap().is_empty());

    // Concurrent committers: outbox id order is the event log's commit order.
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&t.store);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..5 {
                    let o = order("bob", &format!("w{w}-{i}"));
                    let batch = created(&o);
                    let id = batch.events[0].event_id;
                    let r = store.commit(batch).await.unwrap();
                    seen.push((id, r.event_positions[0]));
                }
                seen
            })
        })
        .collect();
    let positions: HashMap<_, _> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let pending = s.pending(1000).await.unwrap();
    assert_eq!(pending.len(), 40);
    let in_id_order: Vec<i64> = pending
        .iter()
        .map(|r| positions[&r.message.event_id])
        .collect();
    assert!(
        in_id_order.windows(2).all(|w| w[0] < w[1]),
        "{in_id_order:?}"
    );

    // Two relays marking the same rows: each row is marked exactly once.
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    let marks = futures::future::join_all((0..2).map(|_| s.mark_sent(&ids))).await;
    assert_eq!(marks.into_iter().map(Result::unwrap).sum::<u64>(), 40);
}

pub(crate) async fn outbox_purge_keeps_the_queue(t: &TestStore) {
    let s = &t.store;
    for i in 0..6 {
        let o = order("alice", &format!("p-{i}"));
        s.commit(created(&o)).await.unwrap();
    }
    let rows = s.pending(100).await.unwrap();
    assert_eq!(rows.len(), 6);
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    // Rows 1-2 and 4 sent; 3, 5 and 6 still queued.
    assert_eq!(s.mark_sent(&[ids[0], ids[1], ids[3]]).await.unwrap(), 3);
    // Nothing was sent before an hour ago: nothing goes.
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(s.purge_sent(an_hour_ago).await.unwrap(), 0);
    // Everything sent so far is older than "in a second": rows 1-2 go; row 4
    // stays, since it lies behind the oldest unsent row (3).
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.purge_sent(soon).await.unwrap(), 2);
    let left: Vec<i64> = s.pending(100).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(left, vec![ids[2], ids[4], ids[5]], "the queue is untouched");
    assert_eq!(s.pending_count().await.unwrap(), 3);
    assert_eq!(
        s.purge_sent(soon).await.unwrap(),
        0,
        "purging again removes nothing"
    );
    // Once everything is sent, everything old enough goes.
    assert_eq!(s.mark_sent(&ids).await.unwrap(), 3);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.purge_sent(later).await.unwrap(), 4);
    assert_eq!(s.pending_count().await.unwrap(), 0);
    // New rows after a purge queue as before, in order.
    let o = order("alice", "after-purge");
    s.commit(created(&o)).await.unwrap();
    let after = s.pending(10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].id > ids[5], "ids keep growing after a purge");
}

pub(crate) async fn concurrent_writers(t: &TestStore) {
    const WRITERS: usize = 16;
    const EACH: usize = 20;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (Arc::clone(&t.store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..EACH {
                    let o = order(&format!("user{w}"), &format!("c-{i}"));
                    store.commit(created(&o)).await?;
                    let (_, step) = advance(&o, OrderEvent::Submitted);
                    store.commit(step).await?;
                }
                Ok::<(), StoreError>(())
            })
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        r.unwrap().unwrap();
    }
    let open = t.store.open_orders(None).await.unwrap();
    assert_eq!(open.len(), WRITERS * EACH);
    let events = t.store.events_after(0, None, 10_000).await.unwrap();
    assert_eq!(events.len(), WRITERS * EACH * 2);
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
}

pub(crate) async fn typed_refusals(t: &TestStore) {
    let s = &t.store;
    let a = order("alice", "a");
    s.commit(created(&a)).await.unwrap();

    let twin = order("alice", "a");
    let dup = s.commit(created(&twin)).await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Duplicate {
                entity: "order",
                ..
            })
        ),
        "{dup:?}"
    );
    // The same client id for another user is fine.
    s.commit(created(&order("bob", "a"))).await.unwrap();

    let again = s.commit(created(&a)).await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict {
            expected: 0,
            actual: Some(1),
            ..
        })
    ));

    let ghost = order("alice", "ghost");
    let (_, step) = advance(&ghost, OrderEvent::Submitted);
    let missing = s.commit(step).await;
    assert!(
        matches!(missing, Err(StoreError::Conflict { actual: None, .. })),
        "{missing:?}"
    );

    let mut skip = a.clone();
    skip.version = 3;
    let skipping = s
        .commit(only(StateChange::Order {
            order: Box::new(skip),
            expected: 1,
        }))
        .await;
    assert!(is_conflict(&skipping));

    let f = fill(&a, "t-1", dec!(1), dec!(10));
    s.commit(only(StateChange::Fill(Box::new(f.clone()))))
        .await
        .unwrap();
    let dup_fill = s.commit(only(StateChange::Fill(Box::new(f)))).await;
    assert!(matches!(
        dup_fill,
        Err(StoreError::Duplicate { entity: "fill", .. })
    ));

    // An event id seen before, and an aggregate sequence taken before.
    let logged = s.events_after(0, None, 10).await.unwrap().remove(0).event;
    let mut same_id = created(&order("carol", "e1"));
    same_id.events[0].event_id = logged.event_id;
    let r = s.commit(same_id).await;
    assert!(
        matches!(
            r,
            Err(StoreError::Duplicate {
                entity: "event",
                ..
            })
        ),
        "{r:?}"
    );
    let mut same_seq = ChangeSet::default();
    let mut taken = logged.clone();
    taken.event_id = ordermon_domain::ids::EventId::generate();
    same_seq.events.push(taken);
    let r = s.commit(same_seq).await;
    assert!(
        matches!(
            r,
            Err(StoreError::Duplicate {
                entity: "event",
                ..
            })
        ),
        "{r:?}"
    );

    // Deleting a strategy checks its version and owner.
    let st = strategy("s1", "alice");
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(st.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    let delete = |user: &str, expected| {
        only(StateChange::DeleteStrategy {
            id: StrategyId::new("s1").unwrap(),
            user_id: uid(user),
            expected,
        })
    };
    assert!(is_conflict(&s.commit(delete("alice", 4)).await));
    assert!(matches!(
        s.commit(delete("bob", 1)).await,
        Err(StoreError::Conflict { actual: None, .. })
    ));
    // Strategy ids are unique per user: bob may hold an `s1` of his own,
    // written, read and deleted apart from alice's.
    let bobs = strategy("s1", "bob");
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(bobs.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    assert_eq!(
        s.get_strategy(&uid("bob"), &bobs.id).await.unwrap(),
        Some(bobs.clone())
    );
    assert_eq!(
        s.get_strategy(&uid("alice"), &st.id).await.unwrap(),
        Some(st.clone())
    );
    let again = s
        .commit(only(StateChange::Strategy {
            strategy: Box::new(bobs.clone()),
            expected: 0,
        }))
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict { .. } | StoreError::Duplicate { .. })
        ),
        "bob's s1 cannot be created twice: {again:?}"
    );
    s.commit(delete("alice", 1)).await.unwrap();
    assert_eq!(s.get_strategy(&uid("alice"), &st.id).await.unwrap(), None);
    assert_eq!(
        s.get_strategy(&uid("bob"), &bobs.id).await.unwrap(),
        Some(bobs)
    );
    s.health().await.unwrap();
}

pub(crate) async fn one_large_batch_in_bulk(t: &TestStore) {
    let s = &t.store;
    // One batch creating 150 orders (an import's): written in bulk.
    let orders: Vec<Order> = (0..150).map(|i| order("bulk", &format!("b-{i}"))).collect();
    let mut batch = ChangeSet::default();
    for o in &orders {
        let one = created(o);
        batch.changes.extend(one.changes);
        batch.events.extend(one.events);
        batch.outbox.extend(one.outbox);
    }
    let results = s.commit_group(vec![batch]).await;
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(results[0].as_ref().unwrap().event_positions.len(), 150);

    // One batch advancing every order, with a fill each.
    let mut batch = ChangeSet::default();
    let mut advanced = Vec::new();
    for o in &orders {
        let (next, one) = advance(o, OrderEvent::Submitted);
        batch.changes.extend(one.changes);
        batch.events.extend(one.events);
        batch.outbox.extend(one.outbox);
        batch.changes.push(StateChange::Fill(Box::new(fill(
            &next,
            "t-1",
            dec!(1),
            dec!(10.25),
        ))));
        advanced.push(next);
    }
    assert!(s.commit_group(vec![batch]).await[0].is_ok());
    for o in &advanced {
        let events = s
            .aggregate_events(AggregateType::Order, &o.id.to_string())
            .await
            .unwrap();
        assert_eq!(events.len(), 2);
    }

    // A large batch with one stale row is refused whole, with the typed error.
    let mut batch = ChangeSet::default();
    for (i, o) in advanced.iter().enumerate() {
        let (mut next, one) = advance(
            o,
            OrderEvent::Accepted {
                venue_order_id: None,
            },
        );
        let mut changes = one.changes;
        if i == 77 {
            next.version = 10;
            changes = vec![StateChange::Order {
                order: Box::new(next),
                expected: 9,
            }];
        }
        batch.changes.extend(changes);
        batch.events.extend(one.events);
        batch.outbox.extend(one.outbox);
    }
    let r = s.commit_group(vec![batch]).await.pop().unwrap();
    assert!(
        matches!(
            &r,
            Err(StoreError::Conflict {
                expected: 9,
                actual: Some(2),
                ..
            })
        ),
        "{r:?}"
    );
    let ids: Vec<_> = advanced.iter().map(|o| o.id).collect();
    let stored = s.get_orders(&ids).await.unwrap();
    assert_eq!(stored.len(), 150);
    assert!(
        stored
            .iter()
            .all(|o| o.version == 2 && o.status == advanced[0].status)
    );
    let fills = s
        .list_fills(&FillQuery {
            user_id: Some(uid("bulk")),
            limit: 1000,
            ..FillQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(fills.len(), 150);

    // Text needing escapes in the bulk path (PostgreSQL writes it with COPY):
    // the events' JSON carries backslashes, the reasons tabs and newlines.
    let reason = "venue said:\tno\nsecond line \\ back\r slash \\N".to_owned();
    let mut batch = ChangeSet::default();
    for o in &advanced {
        let (_, one) = advance(
            o,
            OrderEvent::Rejected {
                reason: reason.clone(),
            },
        );
        batch.changes.extend(one.changes);
        batch.events.extend(one.events);
        batch.outbox.extend(one.outbox);
    }
    // Every other row carries a trace context, through the bulk path too.
    for (i, m) in batch
        .outbox
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
    {
        m.traceparent = Some(format!("00-{:032x}-{:016x}-01", i + 1, i + 1));
    }
    let traces: Vec<_> = batch
        .outbox
        .iter()
        .map(|m| (m.event_id, m.traceparent.clone()))
        .collect();
    let written = batch.events.clone();
    assert!(s.commit_group(vec![batch]).await[0].is_ok());
    for e in &written {
        let stored = s
            .aggregate_events(AggregateType::Order, &e.aggregate_id)
            .await
            .unwrap();
        assert_eq!(stored.last().map(|s| &s.event), Some(e));
    }
    let pending = s.pending(10_000).await.unwrap();
    let payloads: Vec<_> = pending
        .iter()
        .filter(|r| written.iter().any(|e| e.event_id == r.message.event_id))
        .map(|r| serde_json::from_str::<DomainEvent>(&r.message.payload).unwrap())
        .collect();
    assert_eq!(payloads, written);
    let stored: Vec<_> = pending
        .iter()
        .filter(|r| traces.iter().any(|(id, _)| *id == r.message.event_id))
        .map(|r| (r.message.event_id, r.message.traceparent.clone()))
        .collect();
    assert_eq!(stored, traces);
}

pub(crate) async fn bulk_order_lookups(t: &TestStore) {
    let s = &t.store;
    let mut all = Vec::new();
    for (user, n) in [("look-a", 450), ("look-b", 3)] {
        for i in 0..n {
            let o = order(user, &format!("c-{i}"));
            all.push(o);
        }
    }
    let mut batch = ChangeSet::default();
    for o in &all {
        let one = created(o);
        batch.changes.extend(one.changes);
        batch.events.extend(one.events);
        batch.outbox.extend(one.outbox);
    }
    assert!(s.commit_group(vec![batch]).await[0].is_ok());

    // By id: more than one statement's worth, unknown ids ignored.
    let mut ids: Vec<_> = all.iter().map(|o| o.id).collect();
    ids.push(ordermon_domain::ids::OrderId::generate());
    let mut found = s.get_orders(&ids).await.unwrap();
    found.sort_by_key(|o| o.id);
    let mut want = all.clone();
    want.sort_by_key(|o| o.id);
    assert_eq!(found, want);
    assert!(s.get_orders(&[]).await.unwrap().is_empty());

    // By client id: per user (a client id of another user is not found).
    let cid = |c: &str| ordermon_domain::ids::ClientOrderId::new(c).unwrap();
    let mut keys: Vec<_> = all
        .iter()
        .map(|o| (o.user_id.clone(), o.client_order_id.clone()))
        .collect();
    keys.push((uid("look-b"), cid("c-400")));
    keys.push((uid("nobody"), cid("c-1")));
    let found = s.get_orders_by_client_ids(&keys).await.unwrap();
    assert_eq!(found.len(), all.len());
    let one = s
        .get_orders_by_client_ids(&[(uid("look-b"), cid("c-2"))])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].user_id, uid("look-b"));
}

fn held(id: OrderId, amount: Decimal) -> Reservation {
    Reservation {
        order_id: id,
        hold: Hold::Cash {
            currency: usd(),
            amount,
        },
        remaining_qty: Decimal::ONE,
    }
}

fn account_write(a: &Account, reservations: ReservationWrite) -> ChangeSet {
    only(StateChange::Account {
        account: Box::new(a.clone()),
        expected: a.version - 1,
        reservations,
    })
}

/// An account's reservations: `All` makes the stored set the account's;
/// `Orders` writes only the named orders' (changed, added or removed) and
/// leaves every other as stored, whether it commits alone, in a bulk group,
/// or batch by batch after a refusal in its group.
pub(crate) async fn reservations_write_per_order(t: &TestStore) {
    let s = &t.store;
    let ids: Vec<OrderId> = (0..4).map(|_| OrderId::generate()).collect();
    let mut acct = account("alice", dec!(1000), dec!(30));
    for (i, id) in ids.iter().take(3).enumerate() {
        acct.reservations
            .insert(*id, held(*id, Decimal::from(i + 1)));
    }
    s.commit(account_write(&acct, ReservationWrite::All))
        .await
        .unwrap();
    assert_eq!(
        s.get_account(&uid("alice")).await.unwrap(),
        Some(acct.clone())
    );

    // A slim account: it carries only what changed. ids[0] resized, ids[1]
    // released, ids[3] new; ids[2] is not named and must stay as stored.
    let mut slim = acct.clone();
    slim.version = 2;
    slim.reservations.clear();
    slim.reservations.insert(ids[0], held(ids[0], dec!(0.5)));
    slim.reservations.insert(ids[3], held(ids[3], dec!(4)));
    s.commit(account_write(
        &slim,
        ReservationWrite::Orders(vec![ids[0], ids[1], ids[3]]),
    ))
    .await
    .unwrap();
    let got = s.get_account(&uid("alice")).await.unwrap().unwrap();
    let want: Vec<(OrderId, Reservation)> = vec![
        (ids[0], held(ids[0], dec!(0.5))),
        (ids[2], held(ids[2], dec!(3))),
        (ids[3], held(ids[3], dec!(4))),
    ];
    let mut want_sorted = want.clone();
    want_sorted.sort_by_key(|(id, _)| *id);
    assert_eq!(
        got.reservations.into_iter().collect::<Vec<_>>(),
        want_sorted
    );
    assert_eq!(got.version, 2);

    // In a group: one refused batch sends the group down the batch-by-batch
    // path; the other batches' named reservations still land, and only they.
    let mut bob = account("bob", dec!(1000), dec!(0));
    let b_ids: Vec<OrderId> = (0..3).map(|_| OrderId::generate()).collect();
    for id in &b_ids {
        bob.reservations.insert(*id, held(*id, Decimal::ONE));
    }
    s.commit(account_write(&bob, ReservationWrite::All))
        .await
        .unwrap();
    let mut carol = account("carol", dec!(1000), dec!(0));
    let c_id = OrderId::generate();
    carol.reservations.insert(c_id, held(c_id, Decimal::TWO));
    s.commit(account_write(&carol, ReservationWrite::All))
        .await
        .unwrap();
    let mut bob2 = bob.clone();
    bob2.version = 2;
    bob2.reservations.remove(&b_ids[0]);
    let mut carol2 = carol.clone();
    carol2.version = 2;
    let c_new = OrderId::generate();
    carol2.reservations.insert(c_new, held(c_new, dec!(7)));
    let mut stale = acct.clone();
    stale.version = 9; // refused: alice is at version 2
    for refuse in [false, true] {
        let mut group = vec![
            account_write(&bob2, ReservationWrite::Orders(vec![b_ids[0]])),
            account_write(&carol2, ReservationWrite::Orders(vec![c_new])),
        ];
        if refuse {
            group.insert(1, account_write(&stale, ReservationWrite::All));
        }
        let results = s.commit_group(group).await;
        if refuse {
            assert!(is_conflict(&results[1]), "{results:?}");
            assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        } else {
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
        let b = s.get_account(&uid("bob")).await.unwrap().unwrap();
        assert_eq!(b.reservations.keys().copied().collect::<Vec<_>>(), {
            let mut k = vec![b_ids[1], b_ids[2]];
            k.sort();
            k
        });
        let c = s.get_account(&uid("carol")).await.unwrap().unwrap();
        assert_eq!(c.reservations.get(&c_new), Some(&held(c_new, dec!(7))));
        assert_eq!(c.reservations.get(&c_id), Some(&held(c_id, Decimal::TWO)));
        assert_eq!(c.reservations.len(), 2);
        // Next round: the same writes one version later.
        bob2.version += 1;
        carol2.version += 1;
    }

    // `All` with fewer reservations removes the rest.
    let mut only_last = got_account(t, "alice").await;
    only_last.version += 1;
    only_last.reservations.retain(|id, _| *id == ids[3]);
    s.commit(account_write(&only_last, ReservationWrite::All))
        .await
        .unwrap();
    let got = got_account(t, "alice").await;
    assert_eq!(
        got.reservations.keys().copied().collect::<Vec<_>>(),
        vec![ids[3]]
    );
    // Projection scans see the same reservations.
    let rows = s.scan_accounts(None, 10).await.unwrap();
    let alice = rows
        .iter()
        .find(|r| r.data.user_id == uid("alice"))
        .unwrap();
    assert_eq!(alice.data.reservations, got.reservations);
    assert_eq!(alice.columns.reservations, got.reservations);
    let bob_row = rows.iter().find(|r| r.data.user_id == uid("bob")).unwrap();
    assert_eq!(bob_row.data.reservations.len(), 2);

    // A submit's shape: the batch creates an order and reserves for it (no
    // row of it can exist yet), and releases an older order's reservation.
    for (round, group) in [(0, false), (1, true)] {
        let new_order = order("alice", &format!("with-reservation-{round}"));
        let mut acct = got_account(t, "alice").await;
        let older: Vec<OrderId> = acct.reservations.keys().copied().collect();
        acct.version += 1;
        acct.reservations.clear();
        acct.reservations
            .insert(new_order.id, held(new_order.id, dec!(9)));
        let mut named = older.clone();
        named.push(new_order.id);
        let mut batch = created(&new_order);
        batch.changes.push(StateChange::Account {
            account: Box::new(acct.with_reservations_of(&[new_order.id])),
            expected: acct.version - 1,
            reservations: ReservationWrite::Orders(named),
        });
        if group {
            let results = s
                .commit_group(vec![batch, created(&order("bob", "other"))])
                .await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        } else {
            s.commit(batch).await.unwrap();
        }
        let got = got_account(t, "alice").await;
        assert_eq!(
            got.reservations.into_iter().collect::<Vec<_>>(),
            vec![(new_order.id, held(new_order.id, dec!(9)))],
            "round {round}"
        );
    }
}

async fn got_account(t: &TestStore, user: &str) -> Account {
    t.store.get_account(&uid(user)).await.unwrap().unwrap()
}
