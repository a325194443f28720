//! The read contract: listings, filters, cursors, operator SQL and every
//! repository's round trip.

use chrono::{Duration, Utc};
use ordermon_domain::alert::AlertState;
use ordermon_domain::ids::{OrderId, StrategyId};
use ordermon_domain::order::{Order, OrderEvent, OrderStatus};
use ordermon_domain::ports::{
    AlertQuery, ChangeSet, FillQuery, OrderQuery, ReservationWrite, StateChange,
};
use ordermon_domain::strategy::StrategyStatus;
use ordermon_domain::user::UserStatus;
use ordermon_domain::values::{Currency, Money};
use ordermon_tests::{Backend, TestStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::fixtures::*;

fn ids(orders: &[Order]) -> Vec<OrderId> {
    orders.iter().map(|o| o.id).collect()
}

pub(crate) async fn list_orders_filters_and_pages(t: &TestStore) {
    let s = &t.store;
    let base = Utc::now() - Duration::hours(1);
    let mut alice = Vec::new();
    for i in 0..12 {
        let instrument = if i % 2 == 0 { "ACME.SIM" } else { "BETA.SIM" };
        let at = base + Duration::seconds(i);
        let mut o = order_with("alice", &format!("a-{i}"), instrument, dec!(1), dec!(2), at);
        if i % 3 == 0 {
            o.strategy_id = Some(StrategyId::new("s1").unwrap());
        }
        s.commit(created(&o)).await.unwrap();
        if i % 4 == 0 {
            let (next, step) = advance(&o, OrderEvent::Submitted);
            s.commit(step).await.unwrap();
            o = next;
        }
        alice.push(o);
    }
    for i in 0..3 {
        let o = order_with("bob", &format!("b-{i}"), "ACME.SIM", dec!(1), dec!(2), base);
        let (_, step) = advance(&o, OrderEvent::Submitted);
        s.commit(created(&o)).await.unwrap();
        s.commit(step).await.unwrap();
    }
    let newest_first: Vec<OrderId> = alice.iter().rev().map(|o| o.id).collect();
    let query = |f: &dyn Fn(&mut OrderQuery)| {
        let mut q = OrderQuery {
            user_id: Some(uid("alice")),
            limit: 100,
            ..OrderQuery::default()
        };
        f(&mut q);
        q
    };

    let all = s.list_orders(&query(&|_| {})).await.unwrap();
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all[0], alice[11]);
    assert_eq!(
        s.list_orders(&OrderQuery::default()).await.unwrap().len(),
        15
    );

    // Cursor pagination: pages of 5, newest first.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .list_orders(&query(&|q| {
                q.limit = 5;
                q.before = before;
            }))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|o| o.id);
        pages.push(ids(&page));
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 5, 2]
    );
    assert_eq!(pages.concat(), newest_first);

    let submitted = s
        .list_orders(&query(&|q| q.statuses = vec![OrderStatus::Submitted]))
        .await;
    assert_eq!(
        ids(&submitted.unwrap()),
        vec![alice[8].id, alice[4].id, alice[0].id]
    );
    let either = query(&|q| q.statuses = vec![OrderStatus::Submitted, OrderStatus::Initialized]);
    assert_eq!(s.list_orders(&either).await.unwrap().len(), 12);
    // A filter list of any length (repeats included) is a filter, not an error:
    // more values than a database takes as parameters.
    let long = query(&|q| {
        q.statuses = [OrderStatus::Submitted, OrderStatus::Initialized]
            .into_iter()
            .cycle()
            .take(70_000)
            .collect();
    });
    assert_eq!(s.list_orders(&long).await.unwrap().len(), 12);
    let beta = s
        .list_orders(&query(&|q| q.instrument_id = Some(iid("BETA.SIM"))))
        .await;
    assert_eq!(beta.unwrap().len(), 6);
    let by_strategy = query(&|q| q.strategy_id = Some(StrategyId::new("s1").unwrap()));
    assert_eq!(ids(&s.list_orders(&by_strategy).await.unwrap()), {
        vec![alice[9].id, alice[6].id, alice[3].id, alice[0].id]
    });
    let window = query(&|q| {
        q.from = Some(base + Duration::seconds(3));
        q.to = Some(base + Duration::seconds(6));
    });
    let got = s.list_orders(&window).await.unwrap();
    assert_eq!(ids(&got), vec![alice[5].id, alice[4].id, alice[3].id]);

    let open = s.open_orders(Some(&uid("alice"))).await.unwrap();
    let mut open_ids = ids(&open);
    open_ids.sort();
    assert_eq!(open_ids, vec![alice[0].id, alice[4].id, alice[8].id]);
    assert_eq!(s.open_orders(None).await.unwrap().len(), 6);
    assert!(
        s.open_orders(Some(&uid("nobody")))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn operator_sql_flips_statuses(t: &TestStore) {
    let s = &t.store;
    let u = user("alice");
    let st = strategy("s1", "alice");
    s.commit(only(StateChange::User {
        user: Box::new(u.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(st.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    assert_eq!(
        s.user_statuses().await.unwrap(),
        vec![(uid("alice"), UserStatus::Active)]
    );

    let flipped = t
        .operator_sql("UPDATE users SET status = 'disabled' WHERE id = 'alice'")
        .await;
    let Some(n) = flipped else {
        eprintln!("memory backend: no SQL; statuses are only changed through the store");
        return;
    };
    assert_eq!(n, 1);
    assert_eq!(
        s.user_statuses().await.unwrap(),
        vec![(uid("alice"), UserStatus::Disabled)]
    );
    assert_eq!(
        s.get_user(&u.id).await.unwrap().unwrap().status,
        UserStatus::Disabled
    );

    t.operator_sql("UPDATE strategies SET status = 'disabled' WHERE id = 's1'")
        .await;
    let statuses = s.strategy_statuses().await.unwrap();
    assert_eq!(
        statuses,
        vec![(st.id.clone(), uid("alice"), StrategyStatus::Disabled, 1)]
    );
    let listed = s.list_strategies(&uid("alice")).await.unwrap();
    assert_eq!(listed[0].status, StrategyStatus::Disabled);

    // The schema refuses statuses the application would not understand.
    let sql = t.sql.as_ref().unwrap();
    assert!(
        sql.execute_unprepared("UPDATE users SET status = 'paused'")
            .await
            .is_err()
    );
    assert!(
        sql.execute_unprepared("UPDATE strategies SET status = 'on'")
            .await
            .is_err()
    );

    t.operator_sql("UPDATE users SET status = 'active' WHERE id = 'alice'")
        .await;
    assert_eq!(
        s.user_statuses().await.unwrap(),
        vec![(uid("alice"), UserStatus::Active)]
    );
}

/// The monitoring scan's stamps: the same while nothing the scan reads
/// changed, another after any such change, through the store or with plain
/// SQL; none on SQLite (the scan reads the rows there).
pub(crate) async fn scan_stamps_move_with_what_the_scan_reads(t: &TestStore) {
    let s = &t.store;
    let stamps = || async {
        (
            s.user_status_stamp().await.unwrap(),
            s.strategy_stamp().await.unwrap(),
        )
    };
    let empty = stamps().await;
    if t.backend == Backend::Sqlite {
        assert_eq!(empty, (None, None));
        return;
    }
    assert!(empty.0.is_some() && empty.1.is_some(), "{empty:?}");
    assert_eq!(stamps().await, empty, "nothing changed");

    let u = user("alice");
    s.commit(only(StateChange::User {
        user: Box::new(u.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    let with_user = stamps().await;
    assert_ne!(with_user.0, empty.0, "a user added");
    assert_eq!(with_user.1, empty.1, "no strategy changed");

    let st = strategy("s1", "alice");
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(st.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    let with_strategy = stamps().await;
    assert_eq!(with_strategy.0, with_user.0, "no user's status changed");
    assert_ne!(with_strategy.1, with_user.1, "a strategy added");
    assert_eq!(stamps().await, with_strategy);

    // A write through the store that changes a strategy's version.
    let mut again = st.clone();
    again.version = st.version + 1;
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(again),
        expected: st.version,
    }))
    .await
    .unwrap();
    let bumped = stamps().await;
    assert_ne!(bumped.1, with_strategy.1, "a strategy's version moved");

    if t.sql.is_none() {
        return;
    }
    // Plain SQL, as an operator would: each change moves its stamp, and
    // changing it back brings the earlier stamp back (it is of the rows).
    t.operator_sql("UPDATE users SET status = 'disabled' WHERE id = 'alice'")
        .await;
    let disabled = stamps().await;
    assert_ne!(disabled.0, bumped.0, "a user disabled with SQL");
    assert_eq!(disabled.1, bumped.1);
    t.operator_sql("UPDATE strategies SET status = 'disabled' WHERE id = 's1'")
        .await;
    let off = stamps().await;
    assert_ne!(off.1, disabled.1, "a strategy disabled with SQL");
    t.operator_sql("UPDATE users SET status = 'active' WHERE id = 'alice'")
        .await;
    t.operator_sql("UPDATE strategies SET status = 'enabled' WHERE id = 's1'")
        .await;
    assert_eq!(stamps().await, bumped, "back as it was");
    t.operator_sql("DELETE FROM strategies WHERE id = 's1'")
        .await;
    assert_eq!(stamps().await.1, with_user.1, "a strategy removed");
}

pub(crate) async fn reference_data_round_trip(t: &TestStore) {
    let s = &t.store;
    // Ids compare byte-wise and case-sensitively on every backend.
    for id in ["bob", "Zed", "alice", "Alice"] {
        let u = user(id);
        s.commit(only(StateChange::User {
            user: Box::new(u.clone()),
            expected: 0,
        }))
        .await
        .unwrap();
        assert_eq!(s.get_user(&u.id).await.unwrap(), Some(u));
    }
    let order: Vec<String> = s
        .list_users(None, 0)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id.to_string())
        .collect();
    assert_eq!(order, ["Alice", "Zed", "alice", "bob"]);
    let after = s.list_users(Some(&uid("Zed")), 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, uid("alice"));
    assert_eq!(s.get_user(&uid("nobody")).await.unwrap(), None);

    for id in ["BETA.SIM", "ACME.SIM"] {
        s.commit(only(StateChange::Instrument {
            instrument: Box::new(instrument(id)),
            expected: 0,
        }))
        .await
        .unwrap();
    }
    let listed = s.list_instruments().await.unwrap();
    assert_eq!(listed, vec![instrument("ACME.SIM"), instrument("BETA.SIM")]);

    // Strategy update.
    let st = strategy("s1", "alice");
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(st.clone()),
        expected: 0,
    }))
    .await
    .unwrap();
    let mut next = st.clone();
    next.params = serde_json::json!({"slices": 8});
    next.version = 2;
    s.commit(only(StateChange::Strategy {
        strategy: Box::new(next.clone()),
        expected: 1,
    }))
    .await
    .unwrap();
    assert_eq!(
        s.get_strategy(&uid("alice"), &st.id).await.unwrap(),
        Some(next.clone())
    );
    assert_eq!(s.get_strategy(&uid("bob"), &st.id).await.unwrap(), None);
    assert_eq!(s.list_strategies(&uid("alice")).await.unwrap(), vec![next]);
    assert!(s.list_strategies(&uid("bob")).await.unwrap().is_empty());

    // Account update: a second currency appears, balances move.
    let acct = account("alice", dec!(1000), dec!(10));
    s.commit(only(StateChange::Account {
        account: Box::new(acct.clone()),
        expected: 0,
        reservations: ReservationWrite::All,
    }))
    .await
    .unwrap();
    let mut next = acct.clone();
    let hkd = Currency::new("HKD").unwrap();
    next.adjust_cash(&Money::new(dec!(7.80), hkd.clone()).unwrap())
        .unwrap();
    next.adjust_cash(&Money::new(dec!(-0.5), usd()).unwrap())
        .unwrap();
    next.version = 2;
    s.commit(only(StateChange::Account {
        account: Box::new(next.clone()),
        expected: 1,
        reservations: ReservationWrite::All,
    }))
    .await
    .unwrap();
    let got = s.get_account(&uid("alice")).await.unwrap().unwrap();
    assert_eq!(got, next);
    assert_eq!(got.balance(&hkd).total.to_string(), "7.80");
    assert_eq!(s.get_account(&uid("bob")).await.unwrap(), None);

    // Positions per user, by instrument.
    for id in ["BETA.SIM", "ACME.SIM"] {
        s.commit(only(StateChange::Position {
            position: Box::new(position("alice", id, dec!(3), dec!(30))),
            expected: 0,
        }))
        .await
        .unwrap();
    }
    let listed: Vec<String> = s
        .list_positions(&uid("alice"))
        .await
        .unwrap()
        .iter()
        .map(|p| p.instrument_id.to_string())
        .collect();
    assert_eq!(listed, ["ACME.SIM", "BETA.SIM"]);
    assert!(
        s.get_position(&uid("bob"), &iid("ACME.SIM"))
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn alerts_bars_fills_and_feed(t: &TestStore) {
    let s = &t.store;
    // Alerts: the latest unresolved occurrence of a fingerprint.
    let first = alert("stuck_order", Some("alice"));
    let mut resolved = first.clone();
    resolved.resolve(Utc::now(), None);
    resolved.version = 2;
    let second = alert("stuck_order", Some("alice"));
    let other = alert("reject_spike", Some("bob"));
    for a in [&first, &second, &other] {
        s.commit(only(StateChange::Alert {
            alert: Box::new(a.clone()),
            expected: 0,
        }))
        .await
        .unwrap();
    }
    assert_eq!(first.fingerprint, second.fingerprint);
    assert_eq!(
        s.active_by_fingerprint(first.fingerprint).await.unwrap(),
        Some(second.clone())
    );
    s.commit(only(StateChange::Alert {
        alert: Box::new(resolved.clone()),
        expected: 1,
    }))
    .await
    .unwrap();
    assert_eq!(s.get_alert(first.id).await.unwrap(), Some(resolved.clone()));
    let mine = AlertQuery {
        user_id: Some(uid("alice")),
        ..AlertQuery::default()
    };
    assert_eq!(
        s.list_alerts(&mine).await.unwrap(),
        vec![second.clone(), resolved.clone()]
    );
    let firing = AlertQuery {
        states: vec![AlertState::Firing],
        ..AlertQuery::default()
    };
    assert_eq!(
        s.list_alerts(&firing).await.unwrap(),
        vec![other.clone(), second.clone()]
    );
    let many = AlertQuery {
        states: vec![AlertState::Firing; 70_000],
        ..AlertQuery::default()
    };
    assert_eq!(s.list_alerts(&many).await.unwrap(), vec![other, second]);

    // Bars: upsert replaces, ranges are [from, to) oldest first.
    let bars: Vec<_> = (0..5)
        .map(|m| bar("ACME.SIM", m, dec!(10) + rust_decimal::Decimal::from(m)))
        .collect();
    assert_eq!(s.upsert_bars(&bars).await.unwrap(), 5);
    let replaced = bar("ACME.SIM", 2, dec!(99.5));
    assert_eq!(
        s.upsert_bars(std::slice::from_ref(&replaced))
            .await
            .unwrap(),
        1
    );
    let got = s
        .bars(
            &iid("ACME.SIM"),
            replaced.interval,
            bars[1].open_time,
            bars[4].open_time,
            10,
        )
        .await
        .unwrap();
    assert_eq!(got, vec![bars[1].clone(), replaced, bars[3].clone()]);
    let (acme, beta) = (iid("ACME.SIM"), iid("BETA.SIM"));
    let (from, to, interval) = (bars[0].open_time, bars[4].open_time, bars[0].interval);
    assert_eq!(s.bars(&acme, interval, from, to, 2).await.unwrap().len(), 2);
    assert!(
        s.bars(&beta, interval, from, to, 2)
            .await
            .unwrap()
            .is_empty()
    );

    // Fills: newest first, with a cursor.
    let o = order("alice", "f");
    let bob = order("bob", "f");
    for (i, owner) in [&o, &o, &bob, &o].into_iter().enumerate() {
        let f = fill(owner, &format!("t-{i}"), dec!(1), dec!(10));
        s.commit(only(StateChange::Fill(Box::new(f))))
            .await
            .unwrap();
    }
    let page = s
        .list_fills(&FillQuery {
            user_id: Some(uid("alice")),
            limit: 2,
            ..FillQuery::default()
        })
        .await
        .unwrap();
    let trades: Vec<String> = page.iter().map(|(_, f)| f.trade_id.to_string()).collect();
    assert_eq!(trades, ["t-3", "t-1"]);
    let rest = s
        .list_fills(&FillQuery {
            user_id: Some(uid("alice")),
            before: page.last().map(|(c, _)| *c),
            limit: 10,
            ..FillQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|(_, f)| f.trade_id.to_string())
            .collect::<Vec<_>>(),
        ["t-0"]
    );
    let by_order = FillQuery {
        order_id: Some(bob.id),
        ..FillQuery::default()
    };
    assert_eq!(s.list_fills(&by_order).await.unwrap().len(), 1);

    // The event feed: after a position, optionally one user's, limited.
    for (user, cid) in [("alice", "e1"), ("bob", "e2"), ("alice", "e3")] {
        s.commit(created(&order(user, cid))).await.unwrap();
    }
    let all = s.events_after(0, None, 0).await.unwrap();
    assert_eq!(all.len(), 3);
    let alices = s.events_after(0, Some(&uid("alice")), 10).await.unwrap();
    assert_eq!(alices.len(), 2);
    let later = s.events_after(all[0].position, None, 1).await.unwrap();
    assert_eq!(later, vec![all[1].clone()]);
}

/// `UPDATE orders SET status = 'cancelled'` (either spelling, any case) on a
/// working order asks for a cancel; a canceled order the system wrote, or a
/// row marked after it stopped working, does not.
pub(crate) async fn operator_cancels_are_found(t: &TestStore) {
    let s = &t.store;
    let working: Vec<Order> = (0..3).map(|i| order("alice", &format!("w-{i}"))).collect();
    for o in &working {
        s.commit(created(o)).await.unwrap();
    }
    let done = order("alice", "done");
    s.commit(created(&done)).await.unwrap();
    let (submitted, step) = advance(&done, OrderEvent::Submitted);
    s.commit(step).await.unwrap();
    let (accepted, step) = advance(
        &submitted,
        OrderEvent::Accepted {
            venue_order_id: None,
        },
    );
    s.commit(step).await.unwrap();
    let (_, step) = advance(&accepted, OrderEvent::Canceled);
    s.commit(step).await.unwrap();
    assert!(s.cancels_requested(100).await.unwrap().is_empty());

    let marked = t
        .operator_sql(&format!(
            "UPDATE orders SET status = 'cancelled' WHERE id = '{}'",
            working[0].id
        ))
        .await;
    let Some(n) = marked else {
        eprintln!("memory backend: no SQL; nothing can be marked");
        return;
    };
    assert_eq!(n, 1);
    t.operator_sql(&format!(
        "UPDATE orders SET status = 'CANCELED' WHERE id = '{}'",
        working[2].id
    ))
    .await;
    // Already canceled by the system: marking it again asks for nothing.
    t.operator_sql(&format!(
        "UPDATE orders SET status = 'cancelled' WHERE id = '{}'",
        done.id
    ))
    .await;
    let mut want = vec![(working[0].id, uid("alice")), (working[2].id, uid("alice"))];
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(s.cancels_requested(100).await.unwrap(), want);
    assert_eq!(s.cancels_requested(1).await.unwrap(), want[..1]);
}

/// Bulk reads for owners starting together: for many users at once, each
/// bulk read answers exactly what the one-user read answers for each user,
/// over more users than one statement carries, with ids that differ only in
/// case, unknown users ignored, and nothing for none.
pub(crate) async fn bulk_state_loads_match_one_user_reads(t: &TestStore) {
    use std::collections::BTreeMap;

    use ordermon_domain::ids::UserId;

    let s = &t.store;
    // 450 users (more than one statement's worth), plus two that differ only
    // in case.
    let mut names: Vec<String> = (0..450).map(|i| format!("bulk-{i:03}")).collect();
    names.push("Bulk-001".to_owned());
    names.push("BULK-001".to_owned());
    let mut batch = ChangeSet::default();
    for (i, name) in names.iter().enumerate() {
        batch.changes.push(StateChange::User {
            user: Box::new(user(name)),
            expected: 0,
        });
        // Every third user has no account row; every other has a second
        // currency; every fifth holds reservations.
        if i % 3 != 0 {
            let mut a = account(name, Decimal::from(1000 + i), dec!(5));
            if i % 2 == 0 {
                a.adjust_cash(&Money::new(dec!(7.80), Currency::new("HKD").unwrap()).unwrap())
                    .unwrap();
            }
            if i % 5 == 0 {
                for n in 1..=2 {
                    let id = OrderId::generate();
                    a.reservations.insert(
                        id,
                        ordermon_domain::account::Reservation {
                            order_id: id,
                            hold: ordermon_domain::account::Hold::Cash {
                                currency: usd(),
                                amount: Decimal::from(n),
                            },
                            remaining_qty: Decimal::ONE,
                        },
                    );
                }
            }
            batch.changes.push(StateChange::Account {
                account: Box::new(a),
                expected: 0,
                reservations: ReservationWrite::All,
            });
        }
        if i % 4 == 0 {
            for instrument in ["ACME.SIM", "BETA.SIM"] {
                batch.changes.push(StateChange::Position {
                    position: Box::new(position(name, instrument, dec!(3), dec!(30))),
                    expected: 0,
                });
            }
        }
        if i % 2 == 1 {
            for n in 0..2 {
                batch.changes.push(StateChange::Strategy {
                    strategy: Box::new(strategy(&format!("st-{i}-{n}"), name)),
                    expected: 0,
                });
            }
        }
    }
    s.commit(batch).await.unwrap();
    // Orders: every seventh user has two open ones and a closed one.
    for name in names.iter().step_by(7) {
        for cid in ["open-1", "open-2", "gone"] {
            let o = order(name, cid);
            s.commit(created(&o)).await.unwrap();
            let (o, step) = advance(&o, OrderEvent::Submitted);
            s.commit(step).await.unwrap();
            if cid == "gone" {
                let (_, step) = advance(&o, OrderEvent::Canceled);
                s.commit(step).await.unwrap();
            }
        }
    }

    let mut asked: Vec<UserId> = names.iter().map(|n| uid(n)).collect();
    asked.push(uid("nobody"));

    // Users.
    let mut got = s.get_users(&asked).await.unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = Vec::new();
    for u in &asked {
        want.extend(s.get_user(u).await.unwrap());
    }
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got.len(), names.len());
    assert_eq!(got, want);

    // Accounts: balances and reservations as one user's read has them.
    let got: BTreeMap<UserId, _> = s
        .get_accounts(&asked)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.user_id.clone(), a))
        .collect();
    let mut want = BTreeMap::new();
    for u in &asked {
        if let Some(a) = s.get_account(u).await.unwrap() {
            want.insert(u.clone(), a);
        }
    }
    assert_eq!(got.len(), names.len() - names.len().div_ceil(3));
    assert_eq!(got, want);
    let held = &got[&uid("bulk-005")];
    assert_eq!(held.reservations.len(), 2);
    assert_eq!(got[&uid("bulk-002")].balances.len(), 2);

    // Open orders: the closed ones are not among them.
    let mut got = s.open_orders_of(&asked).await.unwrap();
    got.sort_by_key(|o| o.id);
    let mut want = Vec::new();
    for u in &asked {
        want.extend(s.open_orders(Some(u)).await.unwrap());
    }
    want.sort_by_key(|o| o.id);
    assert_eq!(got.len(), 2 * names.len().div_ceil(7));
    assert_eq!(got, want);

    // Positions and strategies.
    let mut got = s.positions_of(&asked).await.unwrap();
    got.sort_by(|a, b| (&a.user_id, &a.instrument_id).cmp(&(&b.user_id, &b.instrument_id)));
    let mut want = Vec::new();
    for u in &asked {
        want.extend(s.list_positions(u).await.unwrap());
    }
    want.sort_by(|a, b| (&a.user_id, &a.instrument_id).cmp(&(&b.user_id, &b.instrument_id)));
    assert_eq!(got.len(), 2 * names.len().div_ceil(4));
    assert_eq!(got, want);
    let mut got = s.strategies_of(&asked).await.unwrap();
    got.sort_by(|a, b| (&a.user_id, &a.id).cmp(&(&b.user_id, &b.id)));
    let mut want = Vec::new();
    for u in &asked {
        want.extend(s.list_strategies(u).await.unwrap());
    }
    want.sort_by(|a, b| (&a.user_id, &a.id).cmp(&(&b.user_id, &b.id)));
    assert_eq!(got.len(), 2 * (names.len() / 2));
    assert_eq!(got, want);

    // One user, and none.
    let one = s.get_accounts(&[uid("BULK-001")]).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].user_id, uid("BULK-001"));
    assert!(s.get_users(&[]).await.unwrap().is_empty());
    assert!(s.get_accounts(&[]).await.unwrap().is_empty());
    assert!(s.open_orders_of(&[]).await.unwrap().is_empty());
    assert!(s.positions_of(&[]).await.unwrap().is_empty());
    assert!(s.strategies_of(&[]).await.unwrap().is_empty());
    assert!(s.get_users(&[uid("nobody")]).await.unwrap().is_empty());
}
