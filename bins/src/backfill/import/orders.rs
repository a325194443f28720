//! Importing one order row: the API's checks, then the order's lifecycle up
//! to its imported status as the engine would have recorded it.
//!
//! Events, in the owner's order: `order.initialized`; for an order still
//! working, `account.reserved` (sized as pre-trade risk sizes it, from free
//! funds); `order.submitted`; then `order.accepted` (and `order.triggered`,
//! `order.canceled`, `order.expired`) — or `order.rejected` after submission,
//! or `order.denied` instead of it. A finished order never holds a
//! reservation, so none is made and none is left behind.

use ordermon_application::AppError;
use ordermon_application::validate::{check_new_order, same_request};
use ordermon_domain::event::AccountEvent;
use ordermon_domain::ids::OrderId;
use ordermon_domain::order::{Order, OrderEvent};
use ordermon_domain::risk::{reservation_for, reservation_price};
use uuid::Uuid;

use super::Outcome;
use super::ledger::Ledger;
use super::rows::{ImportStatus, OrderRow};

/// The ids and client ids a batch of order rows may already have in the store.
pub(crate) fn lookups(
    rows: &[OrderRow],
) -> (
    Vec<OrderId>,
    Vec<(
        ordermon_domain::ids::UserId,
        ordermon_domain::ids::ClientOrderId,
    )>,
) {
    let ids = rows.iter().filter_map(|r| r.order_id).collect();
    let keys = rows
        .iter()
        .map(|r| (r.new.user_id.clone(), r.new.client_order_id.clone()))
        .collect();
    (ids, keys)
}

fn validation(e: AppError) -> String {
    match e {
        AppError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Imports one order row into the ledger's batch.
pub(crate) fn import(ledger: &mut Ledger, row: OrderRow) -> Outcome {
    let new = &row.new;
    if let Some(existing) = ledger.order_by_client(&new.user_id, &new.client_order_id) {
        return if same_request(existing, new) {
            Outcome::Skipped
        } else {
            Outcome::Rejected(format!(
                "client_order_id: {} was already used with a different order",
                new.client_order_id
            ))
        };
    }
    let Some(instrument) = ledger.instrument(&new.instrument_id) else {
        return Outcome::Rejected("instrument_id: unknown instrument".to_owned());
    };
    let Some(book) = ledger.user(&new.user_id) else {
        return Outcome::Rejected("user_id: unknown user".to_owned());
    };
    if let Some(id) = row.order_id
        && ledger.order(&id).is_some()
    {
        return Outcome::Rejected(format!("order_id: {id} is another order's id"));
    }
    if let Err(e) = check_new_order(new, &instrument) {
        return Outcome::Rejected(validation(e));
    }
    let id = row.order_id.unwrap_or_else(OrderId::generate);
    // Validated as of its own creation time (a GTD expiry after it, …).
    let (order, init) = match Order::create(id, row.new.clone(), row.created_at) {
        Ok(created) => created,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };

    // Everything that can refuse the row is checked before anything changes.
    let reservation = if row.status.reserves() {
        let px = match reservation_price(&order, &ledger.risk, None) {
            Ok(px) => px,
            Err(_) => {
                return Outcome::Rejected(
                    "status: a working market order cannot be imported (no price to size its reservation)"
                        .to_owned(),
                );
            }
        };
        let pos_qty = book
            .positions
            .get(&instrument.id)
            .map_or(ordermon_domain::Decimal::ZERO, |p| p.quantity);
        let request = reservation_for(
            &order,
            &instrument,
            book.account.account_type,
            pos_qty,
            &ledger.risk,
            px,
        );
        if let Err(e) = book.account.can_reserve(id, &request, pos_qty) {
            let code = ordermon_domain::risk::DeniedReason::from(&e);
            return Outcome::Rejected(format!("{code}: {e}"));
        }
        Some((request, pos_qty))
    } else {
        None
    };
    let (created, updated) = (row.created_at, row.updated_at);
    let mut steps: Vec<(OrderEvent, chrono::DateTime<chrono::Utc>)> = Vec::new();
    match row.status {
        ImportStatus::Denied => {
            if let Some(reason) = row.denied {
                steps.push((OrderEvent::Denied { reason }, created));
            }
        }
        ImportStatus::Rejected => {
            steps.push((OrderEvent::Submitted, created));
            let reason = row.reason.clone().unwrap_or_else(|| "rejected".to_owned());
            steps.push((OrderEvent::Rejected { reason }, updated));
        }
        status => {
            steps.push((OrderEvent::Submitted, created));
            steps.push((
                OrderEvent::Accepted {
                    venue_order_id: row.venue_order_id.clone(),
                },
                created,
            ));
            match status {
                ImportStatus::Triggered => steps.push((OrderEvent::Triggered, updated)),
                ImportStatus::Canceled => steps.push((OrderEvent::Canceled, updated)),
                ImportStatus::Expired => steps.push((OrderEvent::Expired, updated)),
                _ => {}
            }
        }
    }
    // A dry run of the transitions on a copy: the table may refuse one
    // (a trigger on a limit order).
    let mut probe = order.clone();
    for (event, at) in &steps {
        if let Err(e) = probe.apply(event, *at) {
            return Outcome::Rejected(format!("status: {e}"));
        }
    }

    let correlation = Uuid::now_v7();
    let user = order.user_id.clone();
    ledger.add_order(order, init, correlation);
    if let Some((request, position_qty)) = reservation {
        let reserved = ledger.account_event(&user, created, correlation, |account| {
            // Checked above with nothing in between: it cannot fail here.
            let _ = account.reserve(id, &request, position_qty);
            AccountEvent::Reserved {
                order_id: id,
                request,
                position_qty,
            }
        });
        if let Err(e) = reserved {
            return Outcome::Rejected(e);
        }
    }
    for (event, at) in steps {
        if let Err(e) = ledger.order_event(id, event, at, correlation) {
            return Outcome::Rejected(e);
        }
    }
    Outcome::Written
}
