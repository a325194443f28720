//! Reconciliation with the venue when an owner starts (SPEC §3.8): after a
//! restart, or when the user moved from another instance, the venue is handed
//! the orders the store holds open, so that a venue that forgot them (the
//! in-process paper venue) works them again and answers what was left pending.
//! Its reports arrive through the report sink, as any later report does.
//!
//! An order the venue does not know any more is expired by the venue's own
//! report, and recorded here as a `reconciliation_mismatch` monitor event
//! naming the order and why: the event log keeps it, and the alerting
//! service counts it toward the `reconciliation_mismatch` rule.

use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::OrderId;

use super::Context;
use super::state::UserState;

/// Hands the user's open orders to the venue, if orders go to one; the
/// events recording what it did not know, for the owner to commit.
pub(super) async fn with_venue(ctx: &Context, state: &UserState) -> Vec<DomainEvent> {
    let unknown = adopt_at_venue(ctx, state).await;
    if unknown.is_empty() {
        return Vec::new();
    }
    let user = &state.user.id;
    let aggregate = format!("{user}:reconcile:{}", uuid::Uuid::now_v7().simple());
    (1..)
        .zip(unknown)
        .map(|(seq, (order_id, detail))| {
            tracing::warn!(user_id = %user, order_id = %order_id, detail = %detail, "reconciliation mismatch: the venue does not know an open order");
            metrics::counter!("ordermon_reconciliation_mismatches_total").increment(1);
            DomainEvent::new(
                aggregate.clone(),
                seq,
                Some(user.clone()),
                ctx.clock.now(),
                None,
                EventPayload::Monitor(MonitorEvent::ReconciliationMismatch { order_id, detail }),
            )
        })
        .collect()
}

/// Hands the user's open orders to the venue; returns those it did not know.
async fn adopt_at_venue(ctx: &Context, state: &UserState) -> Vec<(OrderId, String)> {
    let Some(venue) = ctx.venue() else {
        return Vec::new();
    };
    let open: Vec<_> = state
        .orders
        .values()
        .filter(|o| o.is_open())
        .cloned()
        .collect();
    if open.is_empty() {
        return Vec::new();
    }
    match venue.adopt(&open).await {
        Ok(adoption) => {
            if adoption.taken > 0 {
                tracing::info!(user_id = %state.user.id, orders = adoption.taken, "venue took back open orders");
                metrics::counter!("ordermon_venue_orders_adopted_total")
                    .increment(adoption.taken as u64);
            }
            adoption.unknown
        }
        Err(e) => {
            tracing::warn!(user_id = %state.user.id, error = %e, "venue could not take back open orders");
            Vec::new()
        }
    }
}
