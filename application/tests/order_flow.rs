//! The order lifecycle through the engine, in external venue mode so every venue
//! report is scripted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ordermon_application::{AppError, Scope, UserPatch, VenueMode};
use ordermon_domain::order::{OrderStatus, Side};
use ordermon_domain::ports::{ExecutionReportKind, OrderChange};
use ordermon_domain::risk::TradingState;
use ordermon_domain::values::Price;

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_submit_accept_partial_fill_fill() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "10000").await;

    let out = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap();
    assert!(out.created);
    let id = out.order.id;
    assert_eq!(out.order.status, OrderStatus::Submitted);
    // 10 × 10.00 plus the 10 bp fee estimate.
    let snap = h.engine.accounts.snapshot(&alice).await.unwrap();
    let b = snap.account.balance(&usd());
    assert_eq!(b.reserved, d("100.10"));
    assert_eq!(b.free(), d("9899.90"));

    let o = h
        .engine
        .orders
        .execution_report(report(
            &alice,
            id,
            ExecutionReportKind::Accepted {
                venue_order_id: Some("V1".into()),
            },
        ))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);

    let o = h
        .engine
        .orders
        .execution_report(report(&alice, id, fill("t1", "4", "9.99", "0.04")))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::PartiallyFilled);
    assert_eq!(o.filled_qty.get(), d("4"));
    assert_eq!(o.leaves_qty().get(), d("6"));

    // A repeated trade id changes nothing.
    let again = h
        .engine
        .orders
        .execution_report(report(&alice, id, fill("t1", "4", "9.99", "0.04")))
        .await
        .unwrap();
    assert_eq!(again.filled_qty.get(), d("4"));

    let o = h
        .engine
        .orders
        .execution_report(report(&alice, id, fill("t2", "6", "10.00", "0.06")))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.avg_px, Some(d("9.996")));

    let snap = h.engine.accounts.snapshot(&alice).await.unwrap();
    let b = snap.account.balance(&usd());
    // 10000 − 39.96 − 60.00 − 0.10 commission.
    assert_eq!(b.total, d("9899.94"));
    assert_eq!(b.reserved, d("0"));
    let pos = &snap.positions[0];
    assert_eq!(pos.quantity, d("10"));
    assert_eq!(pos.avg_open_price(), Some(d("9.996")));
    assert_eq!(pos.realized_pnl, d("-0.10"));

    // Everything is durable: the store holds the same order and account.
    let stored = h
        .engine
        .orders
        .get(&Scope::User(alice.clone()), id)
        .await
        .unwrap();
    assert_eq!(stored, o);
    let events = h.engine.orders.events(&Scope::All, id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event.event_type.clone()).collect();
    assert_eq!(
        kinds,
        [
            "order.initialized",
            "order.submitted",
            "order.accepted",
            "order.filled",
            "order.filled"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_releases_the_reservation() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "1000").await;
    let id = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap()
        .order
        .id;
    h.engine
        .orders
        .execution_report(report(
            &alice,
            id,
            ExecutionReportKind::Accepted {
                venue_order_id: None,
            },
        ))
        .await
        .unwrap();
    let o = h.engine.orders.cancel(&alice, id).await.unwrap();
    assert_eq!(o.status, OrderStatus::PendingCancel);
    let o = h
        .engine
        .orders
        .execution_report(report(&alice, id, ExecutionReportKind::Canceled))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Canceled);
    let b = h
        .engine
        .accounts
        .snapshot(&alice)
        .await
        .unwrap()
        .account
        .balance(&usd());
    assert_eq!(b.reserved, d("0"));
    assert_eq!(b.total, d("1000"));
    // Canceling again is an illegal transition (409), not a crash.
    let err = h.engine.orders.cancel(&alice, id).await.unwrap_err();
    assert_eq!(err.code(), "invalid_transition");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_concurrent_buys_never_overcommit() {
    let h = engine(VenueMode::External).await;
    // Each order reserves 1 × 10.00 × 1.001 = 10.01; 1001.00 covers exactly 100.
    let alice = funded_user(&h, "alice", "1001.00").await;
    let mut tasks = Vec::new();
    for i in 0..500 {
        let engine = h.engine.clone();
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .orders
                .submit(limit(&alice, &format!("c-{i}"), Side::Buy, "1", "10.00"))
                .await
        }));
    }
    let mut accepted = 0;
    let mut denied = 0;
    for t in tasks {
        let out = t
            .await
            .unwrap()
            .expect("every request is answered successfully");
        match out.order.status {
            OrderStatus::Submitted => accepted += 1,
            OrderStatus::Denied => {
                assert_eq!(out.order.reason.as_deref(), Some("insufficient_funds"));
                denied += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!((accepted, denied), (100, 400));
    let account = h.engine.accounts.snapshot(&alice).await.unwrap().account;
    let b = account.balance(&usd());
    assert_eq!(b.reserved, d("1001.00"));
    assert_eq!(b.free(), d("0"));
    assert!(account.invariants_hold());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_resubmission() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "1000").await;
    let first = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "1", "10.00"))
        .await
        .unwrap();
    let again = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "1", "10.00"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.order.id, first.order.id);
    let err = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "2", "10.00"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_mismatch");
    // Only one reservation was made.
    let b = h
        .engine
        .accounts
        .snapshot(&alice)
        .await
        .unwrap()
        .account
        .balance(&usd());
    assert_eq!(b.reserved, d("10.01"));
}

#[tokio::test(flavor = "multi_thread")]
async fn modify_resizes_the_reservation() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "1000").await;
    let id = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap()
        .order
        .id;
    h.engine
        .orders
        .execution_report(report(
            &alice,
            id,
            ExecutionReportKind::Accepted {
                venue_order_id: None,
            },
        ))
        .await
        .unwrap();
    let change = OrderChange {
        quantity: None,
        price: Some(Price::new(d("20.00")).unwrap()),
        trigger_price: None,
    };
    let o = h
        .engine
        .orders
        .modify(&alice, id, change.clone())
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::PendingUpdate);
    let o = h
        .engine
        .orders
        .execution_report(report(&alice, id, ExecutionReportKind::Updated { change }))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);
    assert_eq!(o.price.map(|p| p.get()), Some(d("20.00")));
    let b = h
        .engine
        .accounts
        .snapshot(&alice)
        .await
        .unwrap()
        .account
        .balance(&usd());
    assert_eq!(b.reserved, d("200.20"));
    // A modify the funds cannot cover is refused and changes nothing.
    let too_big = OrderChange {
        quantity: Some(ordermon_domain::values::Quantity::new(d("1000")).unwrap()),
        price: None,
        trigger_price: None,
    };
    let err = h
        .engine
        .orders
        .modify(&alice, id, too_big)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_funds");
}

fn change(quantity: Option<&str>, price: Option<&str>) -> OrderChange {
    OrderChange {
        quantity: quantity.map(|q| ordermon_domain::values::Quantity::new(d(q)).unwrap()),
        price: price.map(|p| Price::new(d(p)).unwrap()),
        trigger_price: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn modify_runs_pre_trade_risk() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "100000").await;
    h.engine
        .users
        .update(
            &alice,
            UserPatch {
                limits: Some(ordermon_domain::risk::RiskLimits {
                    max_order_notional: Some(d("500")),
                    max_position: Some(d("40")),
                    ..Default::default()
                }),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let id = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap()
        .order
        .id;
    h.engine
        .orders
        .execution_report(report(
            &alice,
            id,
            ExecutionReportKind::Accepted {
                venue_order_id: None,
            },
        ))
        .await
        .unwrap();
    let reserved = |h: &Harness| {
        let h = h.engine.clone();
        let alice = alice.clone();
        async move {
            h.accounts
                .snapshot(&alice)
                .await
                .unwrap()
                .account
                .balance(&usd())
                .reserved
        }
    };
    let before = reserved(&h).await;
    // Enlarged or re-priced past a limit: refused, nothing changes.
    for (c, code) in [
        (change(Some("60"), None), "max_order_notional"),
        (change(None, Some("60.00")), "max_order_notional"),
        (change(Some("45"), Some("1.00")), "max_position"),
    ] {
        let err = h.engine.orders.modify(&alice, id, c).await.unwrap_err();
        assert_eq!(err.code(), code);
    }
    let o = h
        .engine
        .orders
        .get(&Scope::User(alice.clone()), id)
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);
    assert_eq!(o.quantity.get(), d("10"));
    assert_eq!(reserved(&h).await, before);

    // Halted: only a smaller quantity at the same price goes through.
    h.engine
        .admin
        .kill_switch(None, TradingState::Halted, "test".into(), "admin".into())
        .await
        .unwrap();
    for c in [change(Some("11"), None), change(None, Some("9.00"))] {
        let err = h.engine.orders.modify(&alice, id, c).await.unwrap_err();
        assert_eq!(err.code(), "trading_halted");
    }
    let smaller = change(Some("5"), None);
    let o = h
        .engine
        .orders
        .modify(&alice, id, smaller.clone())
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::PendingUpdate);
    h.engine
        .orders
        .execution_report(report(
            &alice,
            id,
            ExecutionReportKind::Updated { change: smaller },
        ))
        .await
        .unwrap();
    h.engine
        .admin
        .kill_switch(None, TradingState::Active, "test".into(), "admin".into())
        .await
        .unwrap();

    // Reducing: a buy with no short to cover cannot grow.
    h.engine
        .users
        .update(
            &alice,
            UserPatch {
                trading_state: Some(TradingState::Reducing),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let err = h
        .engine
        .orders
        .modify(&alice, id, change(Some("6"), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reduce_only");

    // Disabled: the same.
    h.engine
        .users
        .update(
            &alice,
            UserPatch {
                trading_state: Some(TradingState::Active),
                status: Some(ordermon_domain::user::UserStatus::Disabled),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let err = h
        .engine
        .orders
        .modify(&alice, id, change(Some("6"), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "user_disabled");
    let o = h
        .engine
        .orders
        .get(&Scope::User(alice.clone()), id)
        .await
        .unwrap();
    assert_eq!(
        (o.status, o.quantity.get()),
        (OrderStatus::Accepted, d("5"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_all_and_kill_switch() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "1000").await;
    for i in 0..3 {
        h.engine
            .orders
            .submit(limit(&alice, &format!("c-{i}"), Side::Buy, "1", "10.00"))
            .await
            .unwrap();
    }
    let canceled = h.engine.orders.cancel_all(&alice, None).await.unwrap();
    assert_eq!(canceled.len(), 3);
    assert!(
        canceled
            .iter()
            .all(|o| o.status == OrderStatus::PendingCancel)
    );

    h.engine
        .admin
        .kill_switch(None, TradingState::Halted, "test".into(), "admin".into())
        .await
        .unwrap();
    let out = h
        .engine
        .orders
        .submit(limit(&alice, "c-x", Side::Buy, "1", "10.00"))
        .await
        .unwrap();
    assert_eq!(out.order.status, OrderStatus::Denied);
    assert_eq!(out.order.reason.as_deref(), Some("trading_halted"));
    h.engine
        .admin
        .kill_switch(None, TradingState::Active, "test".into(), "admin".into())
        .await
        .unwrap();

    // A disabled user's orders are denied.
    h.engine
        .users
        .update(
            &alice,
            UserPatch {
                status: Some(ordermon_domain::user::UserStatus::Disabled),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let out = h
        .engine
        .orders
        .submit(limit(&alice, "c-y", Side::Buy, "1", "10.00"))
        .await
        .unwrap();
    assert_eq!(out.order.reason.as_deref(), Some("user_disabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sells_need_a_position_and_tenants_are_isolated() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "1000").await;
    let bob = funded_user(&h, "bob", "1000").await;
    let out = h
        .engine
        .orders
        .submit(limit(&alice, "s-1", Side::Sell, "1", "10.00"))
        .await
        .unwrap();
    assert_eq!(out.order.reason.as_deref(), Some("insufficient_position"));
    let err = h
        .engine
        .orders
        .get(&Scope::User(bob.clone()), out.order.id)
        .await
        .unwrap_err();
    assert_eq!(err, AppError::NotFound("order"));
    // Bob cannot cancel Alice's order either.
    let err = h
        .engine
        .orders
        .cancel(&bob, out.order.id)
        .await
        .unwrap_err();
    assert_eq!(err, AppError::NotFound("order"));
    // Validation: off-tick price is 422 before anything is written.
    let err = h
        .engine
        .orders
        .submit(limit(&alice, "s-2", Side::Buy, "1", "10.001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "validation_failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_batch_is_all_or_nothing() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "25").await;
    let orders = vec![
        limit(&alice, "b-1", Side::Buy, "1", "10.00"),
        limit(&alice, "b-2", Side::Buy, "1", "10.00"),
        limit(&alice, "b-3", Side::Buy, "1", "10.00"),
    ];
    let err = h
        .engine
        .orders
        .submit_batch(&alice, orders.clone(), true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "validation_failed");
    let b = h
        .engine
        .accounts
        .snapshot(&alice)
        .await
        .unwrap()
        .account
        .balance(&usd());
    assert_eq!(b.reserved, d("0"));
    assert!(
        h.engine
            .orders
            .get_by_client_id(&alice, "b-1")
            .await
            .is_err()
    );
    // Non-atomic: two pass, the third is denied.
    let results = h
        .engine
        .orders
        .submit_batch(&alice, orders, false)
        .await
        .unwrap();
    let statuses: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().unwrap().order.status)
        .collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Submitted,
            OrderStatus::Submitted,
            OrderStatus::Denied
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn balances_equal_a_replay_of_the_event_log() {
    use ordermon_domain::account::Account;
    use ordermon_domain::event::{AggregateType, EventPayload};

    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "5000").await;
    let a = h
        .engine
        .orders
        .submit(limit(&alice, "r-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap()
        .order
        .id;
    let b = h
        .engine
        .orders
        .submit(limit(&alice, "r-2", Side::Buy, "5", "12.00"))
        .await
        .unwrap()
        .order
        .id;
    h.engine
        .orders
        .execution_report(report(
            &alice,
            a,
            ExecutionReportKind::Accepted {
                venue_order_id: None,
            },
        ))
        .await
        .unwrap();
    h.engine
        .orders
        .execution_report(report(&alice, a, fill("t1", "3", "9.95", "0.03")))
        .await
        .unwrap();
    h.engine
        .orders
        .execution_report(report(&alice, a, fill("t2", "7", "9.90", "0.07")))
        .await
        .unwrap();
    h.engine
        .orders
        .execution_report(report(
            &alice,
            b,
            ExecutionReportKind::Rejected {
                reason: "venue closed".into(),
            },
        ))
        .await
        .unwrap();
    let s = h
        .engine
        .orders
        .submit(limit(&alice, "r-3", Side::Sell, "4", "11.00"))
        .await
        .unwrap()
        .order
        .id;
    h.engine
        .orders
        .execution_report(report(&alice, s, fill("t3", "4", "11.00", "0.04")))
        .await
        .unwrap();

    let live = h.engine.accounts.snapshot(&alice).await.unwrap().account;
    let log = h
        .engine
        .persistence()
        .events
        .aggregate_events(AggregateType::Account, alice.as_str())
        .await
        .unwrap();
    let events: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.event.payload {
            EventPayload::Account(a) => Some(a),
            _ => None,
        })
        .collect();
    let replayed = Account::replay(&alice, events).unwrap();
    assert_eq!(replayed.balances, live.balances);
    assert_eq!(replayed.reservations, live.reservations);
    assert_eq!(replayed.position_holds, live.position_holds);
    assert_eq!(replayed.sequence, live.sequence);
    // And the store's projection matches the live state too.
    let stored = h
        .engine
        .persistence()
        .accounts
        .get_account(&alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.balances, live.balances);
}

#[tokio::test(flavor = "multi_thread")]
async fn fills_too_large_to_account_for_are_refused_and_change_nothing() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "10000").await;
    let id = h
        .engine
        .orders
        .submit(limit(&alice, "c-1", Side::Buy, "10", "10.00"))
        .await
        .unwrap()
        .order
        .id;
    let huge = "99999999999999999999";
    for (qty, px) in [(huge, huge), ("10", huge), (huge, "10")] {
        let err = h
            .engine
            .orders
            .execution_report(report(&alice, id, fill("t-huge", qty, px, "0")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation_failed", "{err}");
    }
    let o = h
        .engine
        .orders
        .get(&Scope::User(alice.clone()), id)
        .await
        .unwrap();
    assert!(o.filled_qty.is_zero());
    // The owner is alive and the order fills as usual.
    let o = h
        .engine
        .orders
        .execution_report(report(&alice, id, fill("t1", "10", "10.00", "0")))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_part_of_a_very_large_position_does_not_overflow() {
    let h = engine(VenueMode::External).await;
    let bob = funded_user(&h, "bob", "20000000000000000000").await;
    let buy = h
        .engine
        .orders
        .submit(limit(
            &bob,
            "b-1",
            Side::Buy,
            "10000000000000000000",
            "1.00",
        ))
        .await
        .unwrap()
        .order;
    assert_eq!(buy.status, OrderStatus::Submitted, "{buy:?}");
    h.engine
        .orders
        .execution_report(report(
            &bob,
            buy.id,
            fill("t1", "10000000000000000000", "1.00", "0"),
        ))
        .await
        .unwrap();
    let sell = h
        .engine
        .orders
        .submit(limit(
            &bob,
            "b-2",
            Side::Sell,
            "3000000000000000000",
            "1.00",
        ))
        .await
        .unwrap()
        .order;
    assert_eq!(sell.status, OrderStatus::Submitted, "{sell:?}");
    let o = h
        .engine
        .orders
        .execution_report(report(
            &bob,
            sell.id,
            fill("t2", "3000000000000000000", "1.00", "0"),
        ))
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    let snap = h.engine.accounts.snapshot(&bob).await.unwrap();
    let pos = &snap.positions[0];
    assert_eq!(pos.quantity, d("7000000000000000000"));
    assert_eq!(pos.cost, d("7000000000000000000"));
    assert_eq!(pos.realized_pnl, d("0"));
}
