//! The maintenance contract: high-water marks (exact, version-checked, only
//! through the store), key-ordered projection scans that see operator SQL,
//! and retention counts that match what the purges delete.

use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ports::{ReservationWrite, StateChange, StoreError};
use ordermon_tests::TestStore;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::fixtures::*;

fn mark(user: &str, value: Decimal, version: u64) -> HighWaterMark {
    HighWaterMark {
        user_id: uid(user),
        currency: usd(),
        value,
        updated_at: t0(),
        version,
    }
}

fn write(m: &HighWaterMark, expected: u64) -> ordermon_domain::ports::ChangeSet {
    only(StateChange::HighWater {
        mark: Box::new(m.clone()),
        expected,
    })
}

pub(crate) async fn high_water_marks_round_trip(t: &TestStore) {
    let s = &t.store;
    assert_eq!(s.get_high_water(&uid("alice")).await.unwrap(), None);
    let first = mark("alice", BIG, 1);
    s.commit(write(&first, 0)).await.unwrap();
    assert_eq!(
        s.get_high_water(&uid("alice")).await.unwrap(),
        Some(first.clone())
    );
    // Two instances raise it from the same version: one wins, one conflicts.
    let a = mark("alice", BIG + dec!(1), 2);
    let b = mark("alice", BIG + TINY, 2);
    s.commit(write(&a, 1)).await.unwrap();
    let lost = s.commit(write(&b, 1)).await;
    assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{lost:?}");
    assert_eq!(s.get_high_water(&uid("alice")).await.unwrap(), Some(a));
    // A second first write is refused too.
    let again = s.commit(write(&mark("alice", TINY, 1), 0)).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    for user in ["carol", "bob"] {
        s.commit(write(&mark(user, TINY, 1), 0)).await.unwrap();
    }
    let page = s.list_high_water(None, 2).await.unwrap();
    let users: Vec<&str> = page.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(users, ["alice", "bob"]);
    let rest = s.list_high_water(Some(&uid("bob")), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].value, TINY);
}

pub(crate) async fn projection_scans_page_and_see_operator_sql(t: &TestStore) {
    let s = &t.store;
    for user in ["carol", "alice", "bob"] {
        s.commit(only(StateChange::Account {
            account: Box::new(account(user, BIG, TINY)),
            expected: 0,
            reservations: ReservationWrite::All,
        }))
        .await
        .unwrap();
        for inst in ["ZED.SIM", "ACME.SIM"] {
            s.commit(only(StateChange::Position {
                position: Box::new(position(user, inst, dec!(10), dec!(100))),
                expected: 0,
            }))
            .await
            .unwrap();
        }
        s.commit(created(&order(user, "c-1"))).await.unwrap();
    }
    let first = s.scan_accounts(None, 2).await.unwrap();
    let rest = s
        .scan_accounts(Some(&first[1].data.user_id), 2)
        .await
        .unwrap();
    let users: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|r| r.data.user_id.to_string())
        .collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
    assert_eq!(first[0].columns.balance(&usd()).total, BIG);

    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .scan_positions(after.as_ref().map(|(u, i)| (u, i)), 4)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.data.user_id.clone(), last.data.instrument_id.clone()));
        keys.extend(
            page.iter()
                .map(|r| format!("{}/{}", r.data.user_id, r.data.instrument_id)),
        );
    }
    assert_eq!(keys.len(), 6);
    assert_eq!(keys[0], "alice/ACME.SIM");
    assert_eq!(keys[1], "alice/ZED.SIM");
    assert_eq!(keys[5], "carol/ZED.SIM");

    let orders = s.scan_orders(None, 10).await.unwrap();
    assert_eq!(orders.len(), 3);
    let again = s.scan_orders(Some(orders[0].data.id), 10).await.unwrap();
    assert_eq!(again.len(), 2);

    // A column changed with plain SQL shows in `columns`, not in `data`.
    if t.operator_sql(
        "UPDATE positions SET quantity = 7 WHERE user_id = 'bob' AND instrument_id = 'ZED.SIM'",
    )
    .await
    .is_some()
    {
        let page = s
            .scan_positions(Some((&uid("bob"), &iid("ACME.SIM"))), 1)
            .await
            .unwrap();
        assert_eq!(page[0].columns.quantity, dec!(7));
        assert_eq!(page[0].data.quantity, dec!(10));
    }
}

pub(crate) async fn retention_counts_what_purges_delete(t: &TestStore) {
    let s = &t.store;
    s.upsert_bars(&[
        bar("ACME.SIM", 0, BIG),
        bar("ACME.SIM", 1, BIG),
        bar("ACME.SIM", 90, BIG),
    ])
    .await
    .unwrap();
    let cutoff = bar("ACME.SIM", 60, BIG).open_time;
    for i in 0..3 {
        s.commit(created(&order("alice", &format!("r-{i}"))))
            .await
            .unwrap();
    }
    let ids: Vec<i64> = s.pending(10).await.unwrap().iter().map(|r| r.id).collect();
    s.mark_sent(&ids[..2]).await.unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    let counts = s.purgeable(cutoff).await.unwrap();
    assert_eq!((counts.bars, counts.outbox), (2, 0));
    let counts = s.purgeable(soon).await.unwrap();
    assert_eq!(counts.outbox, 2);
    assert_eq!(s.purge_sent(soon).await.unwrap(), counts.outbox);
    assert_eq!(s.purge_bars(cutoff).await.unwrap(), 2);
    assert_eq!(s.purgeable(cutoff).await.unwrap().bars, 0);
    assert_eq!(
        s.pending_count().await.unwrap(),
        1,
        "the queue is untouched"
    );
}

/// A database written before reservations had their own rows (each account's
/// `data` JSON held them all) is upgraded by the migration: every reservation
/// becomes a row, the JSON sheds them, and the account reads back whole.
pub(crate) async fn legacy_reservations_move_to_rows(t: &TestStore) {
    use ordermon_domain::account::{Hold, Reservation};
    use ordermon_domain::ids::OrderId;
    let Some(sql) = t.sql.as_ref() else {
        eprintln!("memory backend: no migrations");
        return;
    };
    let s = &t.store;
    let mut alice = account("alice", dec!(1000), dec!(3));
    for amount in [dec!(1), dec!(2)] {
        let id = OrderId::generate();
        alice.reservations.insert(
            id,
            Reservation {
                order_id: id,
                hold: Hold::Cash {
                    currency: usd(),
                    amount,
                },
                remaining_qty: dec!(1.5),
            },
        );
    }
    let bob = account("bob", dec!(5), dec!(0));
    for a in [&alice, &bob] {
        s.commit(only(StateChange::Account {
            account: Box::new(a.clone()),
            expected: 0,
            reservations: ReservationWrite::All,
        }))
        .await
        .unwrap();
    }
    // Back to the old layout: no reservation table, reservations in the JSON.
    t.operator_sql("DROP TABLE account_reservations").await;
    t.operator_sql("DELETE FROM _sqlx_migrations WHERE version = 20261230000001")
        .await;
    for a in [&alice, &bob] {
        let legacy = serde_json::to_string(a).unwrap();
        assert!(legacy.contains("\"reservations\":{"), "{legacy}");
        let n = t
            .operator_sql(&format!(
                "UPDATE accounts SET data = '{legacy}' WHERE user_id = '{}'",
                a.user_id
            ))
            .await;
        assert_eq!(n, Some(1));
    }

    sql.migrate().await.unwrap();
    assert_eq!(
        s.get_account(&uid("alice")).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(s.get_account(&uid("bob")).await.unwrap(), Some(bob));
    // The JSON no longer carries them (an UPDATE matching it changes nothing)…
    let n = t
        .operator_sql("UPDATE accounts SET version = version + 1 WHERE data LIKE '%reservations%'")
        .await;
    assert_eq!(n, Some(0));
    // …and the rows are where they are read from.
    assert_eq!(
        t.operator_sql("DELETE FROM account_reservations").await,
        Some(2)
    );
    let got = s.get_account(&uid("alice")).await.unwrap().unwrap();
    assert!(got.reservations.is_empty());
    assert_eq!(got.balances, alice.balances);
}
