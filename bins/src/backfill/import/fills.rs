//! Importing one fill row: the checks of `POST /api/v1/executions`, then the
//! fill applied as the owner applies a live one — `order.filled`, then the
//! position (`position.fill_applied`), then the account (`account.fill_settled`:
//! cash moves, the order's reservation is consumed, and released once the order
//! has nothing left).
//!
//! One refusal the live path does not make: a fill that would take the order
//! beyond its quantity is rejected (live, it is recorded as an overfill and
//! alerted; in a backfill it is a data error to fix, not a fact to keep).

use ordermon_domain::event::{AccountEvent, PositionEvent};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{ClientOrderId, OrderId, UserId};
use ordermon_domain::order::{OrderEvent, OrderEventKind};
use ordermon_domain::values::Money;
use uuid::Uuid;

use super::Outcome;
use super::ledger::Ledger;
use super::rows::{FillRow, OrderRef};

/// The orders a batch of fill rows names.
pub(crate) fn lookups(rows: &[FillRow]) -> (Vec<OrderId>, Vec<(UserId, ClientOrderId)>) {
    let mut ids = Vec::new();
    let mut keys = Vec::new();
    for r in rows {
        match &r.order {
            OrderRef::Id(id, _) => ids.push(*id),
            OrderRef::Client(user, cid) => keys.push((user.clone(), cid.clone())),
        }
    }
    (ids, keys)
}

/// The users whose state the batch needs: the owners of the orders it names.
pub(crate) fn users(ledger: &Ledger, rows: &[FillRow]) -> Vec<UserId> {
    rows.iter()
        .filter_map(|r| match &r.order {
            OrderRef::Id(id, _) => ledger.order(id).map(|o| o.user_id.clone()),
            OrderRef::Client(user, _) => Some(user.clone()),
        })
        .collect()
}

/// Imports one fill row into the ledger's batch.
pub(crate) fn import(ledger: &mut Ledger, row: FillRow) -> Outcome {
    let order = match &row.order {
        OrderRef::Id(id, user) => ledger
            .order(id)
            .filter(|o| user.as_ref().is_none_or(|u| *u == o.user_id)),
        OrderRef::Client(user, cid) => ledger.order_by_client(user, cid),
    };
    // Another user's order is unknown, as the API answers 404.
    let Some(order) = order else {
        return Outcome::Rejected("order: unknown order".to_owned());
    };
    if order.trade_ids.contains(&row.trade_id) {
        return Outcome::Skipped;
    }
    let Some(instrument) = ledger.instrument(&order.instrument_id) else {
        return Outcome::Rejected("instrument_id: unknown instrument".to_owned());
    };
    if ledger.user(&order.user_id).is_none() {
        return Outcome::Rejected("user_id: unknown user".to_owned());
    }
    let after = order.filled_qty.get() + row.quantity.get();
    if after > order.quantity.get() {
        return Outcome::Rejected(format!(
            "quantity: overfill: {} already filled + {} is beyond the order's quantity {}",
            order.filled_qty, row.quantity, order.quantity
        ));
    }
    if let Err(e) = order.can_apply(OrderEventKind::Filled) {
        return Outcome::Rejected(format!("order: {e}"));
    }
    let currency = row
        .commission_currency
        .clone()
        .unwrap_or_else(|| instrument.quote_currency.clone());
    let commission = match Money::new(row.commission, currency) {
        Ok(m) => m,
        Err(e) => return Outcome::Rejected(format!("commission: {e}")),
    };
    let fill = Fill {
        trade_id: row.trade_id,
        order_id: order.id,
        user_id: order.user_id.clone(),
        instrument_id: order.instrument_id.clone(),
        side: order.side,
        quantity: row.quantity,
        price: row.price,
        commission,
        liquidity_side: row.liquidity_side,
        ts_event: row.ts_event,
    };

    let (at, correlation, user) = (row.ts_event, Uuid::now_v7(), fill.user_id.clone());
    let filled = OrderEvent::Filled { fill: fill.clone() };
    if let Err(e) = ledger.order_event(fill.order_id, filled, at, correlation) {
        return Outcome::Rejected(format!("order: {e}"));
    }
    let applied = ledger.position_event(&user, &instrument, at, correlation, |position| {
        let change =
            position.apply_fill(fill.side, fill.quantity, fill.price, &fill.commission, at);
        PositionEvent::fill_applied(&fill, change)
    });
    let settled = applied.and_then(|()| {
        ledger.account_event(&user, at, correlation, |account| {
            let settlement = account.settle_fill(
                fill.order_id,
                fill.side,
                fill.quantity,
                fill.price,
                instrument.multiplier,
                &instrument.quote_currency,
                &fill.commission,
            );
            AccountEvent::fill_settled(&fill, &instrument, settlement)
        })
    });
    if let Err(e) = settled {
        return Outcome::Rejected(e);
    }
    ledger.add_fill(fill);
    Outcome::Written
}
