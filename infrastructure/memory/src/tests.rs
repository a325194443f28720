//! Unit tests of the in-memory store's commit semantics (the full contract suite
//! runs in the integration harness against every backend).

use chrono::Utc;
use ordermon_domain::event::{AggregateType, DomainEvent, EventPayload};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{
    ChangeSet, EventLog, FillQuery, FillRepository, OrderRepository, Outbox, StateChange, Store,
    StoreError,
};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use rust_decimal_macros::dec;

use super::*;
use crate::tables::OutboxRow;

fn user() -> UserId {
    UserId::new("alice").unwrap()
}

fn new_order(cid: &str) -> Order {
    let new = NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: user(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Quantity::new(dec!(10)).unwrap(),
        price: Some(Price::new(dec!(10.5)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let (mut order, _) = Order::create(OrderId::generate(), new, Utc::now()).unwrap();
    order.version = 1;
    order
}

/// A batch inserting a new order with its `Initialized` event and outbox row.
fn create_batch(order: &Order) -> ChangeSet {
    let event = DomainEvent::new(
        order.id.to_string(),
        1,
        Some(order.user_id.clone()),
        order.created_at,
        None,
        EventPayload::Order(OrderEvent::Initialized {
            order: Box::new(order.clone()),
        }),
    );
    let mut batch = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(order.clone()),
            expected: 0,
        }],
        ..ChangeSet::default()
    };
    batch.push_events([event]).unwrap();
    batch
}

fn fill(order: &Order, trade: &str) -> Fill {
    Fill {
        trade_id: TradeId::new(trade).unwrap(),
        order_id: order.id,
        user_id: order.user_id.clone(),
        instrument_id: order.instrument_id.clone(),
        side: order.side,
        quantity: Quantity::new(dec!(1)).unwrap(),
        price: Price::new(dec!(10.5)).unwrap(),
        commission: Money::new(dec!(0.01), Currency::new("USD").unwrap()).unwrap(),
        liquidity_side: LiquiditySide::Maker,
        ts_event: Utc::now(),
    }
}

#[tokio::test]
async fn commit_then_read_back() {
    let store = MemoryStore::new();
    let order = new_order("c-1");
    let receipt = store.commit(create_batch(&order)).await.unwrap();
    assert_eq!(receipt.event_positions, vec![1]);
    assert_eq!(
        store.get_order(order.id).await.unwrap(),
        Some(order.clone())
    );
    let by_cid = store.get_order_by_client_id(&user(), "c-1").await.unwrap();
    assert_eq!(by_cid.map(|o| o.id), Some(order.id));
    let events = store
        .aggregate_events(AggregateType::Order, &order.id.to_string())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(store.pending_count().await.unwrap(), 1);
}

#[tokio::test]
async fn stale_version_conflicts_and_duplicates_are_typed() {
    let store = MemoryStore::new();
    let order = new_order("c-1");
    store.commit(create_batch(&order)).await.unwrap();

    // Inserting the same order again: it exists now.
    let again = store.commit(create_batch(&order)).await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict {
            actual: Some(1),
            ..
        })
    ));

    // Another order with the same client order id.
    let twin = new_order("c-1");
    let dup = store.commit(create_batch(&twin)).await;
    assert!(matches!(
        dup,
        Err(StoreError::Duplicate {
            entity: "order",
            ..
        })
    ));

    // An update with a stale expected version.
    let mut next = order.clone();
    next.version = 3;
    let stale = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(next),
            expected: 2,
        }],
        ..ChangeSet::default()
    };
    assert!(matches!(
        store.commit(stale).await,
        Err(StoreError::Conflict {
            expected: 2,
            actual: Some(1),
            ..
        })
    ));

    // A value whose version is not expected + 1.
    let mut skip = order.clone();
    skip.version = 5;
    let skipping = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(skip),
            expected: 1,
        }],
        ..ChangeSet::default()
    };
    assert!(matches!(
        store.commit(skipping).await,
        Err(StoreError::Conflict { .. })
    ));
}

#[tokio::test]
async fn failed_batch_leaves_nothing_behind() {
    let store = MemoryStore::new();
    let first = new_order("c-1");
    store.commit(create_batch(&first)).await.unwrap();
    let f = fill(&first, "t-1");
    store
        .commit(ChangeSet {
            changes: vec![StateChange::Fill(Box::new(f.clone()))],
            ..ChangeSet::default()
        })
        .await
        .unwrap();

    // A new order, its event and outbox row, then a duplicate fill: all undone.
    let second = new_order("c-2");
    let mut batch = create_batch(&second);
    batch.changes.push(StateChange::Fill(Box::new(f)));
    let err = store.commit(batch).await;
    assert!(matches!(
        err,
        Err(StoreError::Duplicate { entity: "fill", .. })
    ));
    assert_eq!(store.get_order(second.id).await.unwrap(), None);
    assert!(
        store
            .get_order_by_client_id(&user(), "c-2")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.pending_count().await.unwrap(), 1);
    assert_eq!(store.events_after(0, None, 100).await.unwrap().len(), 1);
    let fills = store.list_fills(&FillQuery::default()).await.unwrap();
    assert_eq!(fills.len(), 1);

    // Positions handed out afterwards stay strictly increasing.
    let third = new_order("c-3");
    let receipt = store.commit(create_batch(&third)).await.unwrap();
    assert_eq!(receipt.event_positions, vec![2]);
}

#[tokio::test]
async fn group_commit_isolates_each_batch() {
    let store = MemoryStore::new();
    let a = new_order("a");
    let b = new_order("b");
    let c = new_order("c");
    store.commit(create_batch(&b)).await.unwrap();
    let results = store
        .commit_group(vec![create_batch(&a), create_batch(&b), create_batch(&c)])
        .await;
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(StoreError::Conflict { .. })));
    assert!(results[2].is_ok());
    assert!(store.get_order(a.id).await.unwrap().is_some());
    assert!(store.get_order(c.id).await.unwrap().is_some());
    assert_eq!(store.pending_count().await.unwrap(), 3);
}

#[tokio::test]
async fn outbox_marks_each_row_once() {
    let store = MemoryStore::new();
    for cid in ["a", "b", "c"] {
        store.commit(create_batch(&new_order(cid))).await.unwrap();
    }
    let pending = store.pending(10).await.unwrap();
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(store.mark_sent(&ids[..2]).await.unwrap(), 2);
    // The next poll starts after the sent rows, in commit order.
    store.commit(create_batch(&new_order("d"))).await.unwrap();
    let ids_now: Vec<i64> = store
        .pending(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids_now, vec![3, 4]);
    assert_eq!(store.mark_sent(&[4]).await.unwrap(), 1);
    assert_eq!(store.mark_sent(&ids).await.unwrap(), 1);
    assert_eq!(store.mark_sent(&ids).await.unwrap(), 0);
    assert_eq!(store.pending_count().await.unwrap(), 0);
}

#[test]
fn page_size_rule() {
    assert_eq!(page_size(0), DEFAULT_LIMIT as usize);
    assert_eq!(page_size(7), 7);
    assert_eq!(page_size(u32::MAX), MAX_LIMIT as usize);
}

#[tokio::test]
async fn the_relay_reads_each_outbox_message_as_it_was_written() {
    let store = MemoryStore::new();
    // A message rendering its event, with the commit's trace.
    let mut traced = create_batch(&new_order("a"));
    traced.outbox[0].traceparent =
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
    // A message about an event of its batch that is not its rendering.
    let mut custom = create_batch(&new_order("b"));
    custom.outbox[0].payload = "{\"custom\":true}".to_owned();
    custom.outbox[0].topic = "custom.topic".to_owned();
    // A message of no event of its batch.
    let mut lone = create_batch(&new_order("c"));
    let foreign = create_batch(&new_order("d"));
    lone.outbox = foreign.outbox.clone();
    let written: Vec<_> = [&traced, &custom, &lone]
        .iter()
        .map(|b| b.outbox[0].clone())
        .collect();
    for batch in [traced, custom, lone] {
        store.commit(batch).await.unwrap();
    }
    let read: Vec<_> = store
        .pending(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert_eq!(read, written);
    // Held by reference: the rendering of the stored event, not a copy.
    assert!(store.with(|t| matches!(t.outbox.get(&1), Some((OutboxRow::Event { .. }, None)))));
    assert!(store.with(|t| matches!(t.outbox.get(&2), Some((OutboxRow::Message(_), None)))));
}
