//! SQL-only behaviour: unreachable databases, busy SQLite files, corrupt rows,
//! secrets kept out of errors, and pool shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use ordermon_domain::event::{DomainEvent, EventPayload};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ChangeSet, StateChange, Store as _, StoreError};
use ordermon_domain::values::Quantity;
use ordermon_sql::{Dialect, PoolConfig, SqlStore};
use ordermon_tests::{Backend, TestStore, provision};
use rust_decimal_macros::dec;
use sqlx::Connection as _;

fn created(cid: &str) -> (Order, ChangeSet) {
    let new = NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: UserId::new("alice").unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side: Side::Sell,
        order_type: OrderType::Market,
        quantity: Quantity::new(dec!(3)).unwrap(),
        price: None,
        trigger_price: None,
        time_in_force: TimeInForce::Ioc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let (mut order, event) = Order::create(OrderId::generate(), new, Utc::now()).unwrap();
    order.version = 1;
    assert!(matches!(event, OrderEvent::Initialized { .. }));
    let event = DomainEvent::new(
        order.id.to_string(),
        1,
        Some(order.user_id.clone()),
        order.created_at,
        None,
        EventPayload::Order(event),
    );
    let mut batch = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(order.clone()),
            expected: 0,
        }],
        ..ChangeSet::default()
    };
    batch.push_events([event]).unwrap();
    (order, batch)
}

fn quick() -> PoolConfig {
    PoolConfig {
        connect_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        acquire_timeout: Duration::from_secs(2),
        ..PoolConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_unavailable_and_keeps_the_password_out() {
    for url in [
        "postgres://app:s3cretpw@127.0.0.1:1/ordermon",
        "mysql://app:s3cretpw@127.0.0.1:1/ordermon",
    ] {
        let err = SqlStore::connect(url, quick()).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(!text.contains("s3cretpw"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }
    let bad = SqlStore::connect("oracle://u:pw@h/db", quick())
        .await
        .unwrap_err();
    assert!(!bad.to_string().contains(":pw@"), "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dialect_follows_the_scheme() {
    let Some(t) = provision(Backend::Sqlite).await else {
        return;
    };
    let sql = t.sql.as_ref().unwrap();
    assert_eq!(sql.dialect(), Dialect::Sqlite);
    assert!(sql.redacted_url().starts_with("sqlite://"));
    sql.migrate().await.unwrap(); // re-running migrations is a no-op
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_waits_out_another_process_holding_the_write_lock() {
    let Some(t) = provision(Backend::Sqlite).await else {
        return;
    };
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(t.url.as_deref().unwrap()).unwrap();
    let mut other = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let store = std::sync::Arc::clone(&t.store);
    let writer = tokio::spawn(async move { store.commit(created("c-1").1).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !writer.is_finished(),
        "the commit should be waiting for the lock"
    );
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    writer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_in_memory_serves_concurrent_callers() {
    use ordermon_domain::ports::OrderRepository as _;
    let store = std::sync::Arc::new(SqlStore::connect("sqlite::memory:", quick()).await.unwrap());
    store.migrate().await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let (order, batch) = created(&format!("m-{i}"));
                store.commit(batch).await.unwrap();
                store.get_order(order.id).await.unwrap().unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.open_orders(None).await.unwrap().len(), 0);
    assert_eq!(
        store.list_orders(&Default::default()).await.unwrap().len(),
        8
    );
}

async fn corrupt_rows_are_errors_not_panics(t: &TestStore) {
    let (order, batch) = created("c-1");
    t.store.commit(batch).await.unwrap();
    t.operator_sql("UPDATE orders SET data = '{\"id\": \"not an order\"}'")
        .await;
    let err = t.store.get_order(order.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    t.operator_sql("UPDATE orders SET data = 'garbage'").await;
    assert!(matches!(
        t.store.list_orders(&Default::default()).await,
        Err(StoreError::Corrupt(_))
    ));
    t.operator_sql("DELETE FROM log_clock").await;
    let err = t.store.commit(created("c-2").1).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    t.store.health().await.unwrap();
}

async fn closed_store_is_unavailable(t: &TestStore) {
    let sql = t.sql.as_ref().unwrap();
    sql.health().await.unwrap();
    sql.close().await;
    assert!(matches!(
        sql.health().await,
        Err(StoreError::Unavailable(_))
    ));
    let err = t.store.commit(created("c-1").1).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

macro_rules! per_backend {
    ($($test:ident),*) => {
        $(
            mod $test {
                use super::*;

                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    if let Some(t) = provision(Backend::Sqlite).await {
                        super::$test(&t).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    if let Some(t) = provision(Backend::Postgres).await {
                        super::$test(&t).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn mysql() {
                    if let Some(t) = provision(Backend::MySql).await {
                        super::$test(&t).await;
                    }
                }
            }
        )*
    };
}

per_backend!(
    corrupt_rows_are_errors_not_panics,
    closed_store_is_unavailable
);

/// Lease renewals have connections of their own: with the store's one
/// connection held by a long statement, the store's own work waits, and a
/// keeper's renewal (`keep`) and `renew_all` do not (a busy instance keeps
/// its leases).
async fn leases_do_not_wait_for_a_busy_pool(t: &TestStore, sleep: &'static str) {
    use ordermon_domain::ports::{LeaseStore as _, Outbox as _};
    let url = t.url.as_ref().unwrap();
    let one = PoolConfig {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        ..quick()
    };
    let store = SqlStore::connect(url, one).await.unwrap();
    let busy = store.clone();
    let held = tokio::spawn(async move { busy.execute_unprepared(sleep).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waited = tokio::time::timeout(Duration::from_millis(500), store.pending_count()).await;
    assert!(waited.is_err(), "the pool was not busy: {waited:?}");
    let ttl = Duration::from_secs(10);
    let lease = tokio::time::timeout(Duration::from_secs(2), store.keep("relay", "inst-a", ttl))
        .await
        .expect("keeping a lease waited for the busy pool")
        .unwrap();
    assert_eq!((lease.holder.as_str(), lease.live), ("inst-a", true));
    let renewed = tokio::time::timeout(
        Duration::from_secs(2),
        store.renew_all("relay", "inst-a", ttl),
    )
    .await
    .expect("renewing waited for the busy pool")
    .unwrap();
    assert_eq!(renewed, 1);
    held.await.unwrap().unwrap();
    assert_eq!(store.pending_count().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_leases_do_not_wait_for_a_busy_pool() {
    if let Some(t) = provision(Backend::Postgres).await {
        leases_do_not_wait_for_a_busy_pool(&t, "SELECT pg_sleep(3)").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_leases_do_not_wait_for_a_busy_pool() {
    if let Some(t) = provision(Backend::MySql).await {
        leases_do_not_wait_for_a_busy_pool(&t, "SELECT SLEEP(3)").await;
    }
}
