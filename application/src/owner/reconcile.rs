//! Reconciliation with the venue when an owner starts (SPEC §3.8): after a
//! restart, or when the user moved from another instance, the venue is handed
//! the orders the store holds open, so that a venue that forgot them (the
//! in-process paper venue) works them again and answers what was left pending.
//! Its reports arrive through the report sink, as any later report does.

use super::Context;
use super::state::UserState;

/// Hands the user's open orders to the venue, if orders go to one.
pub(super) async fn adopt_at_venue(ctx: &Context, state: &UserState) {
    let Some(venue) = ctx.venue() else {
        return;
    };
    let open: Vec<_> = state
        .orders
        .values()
        .filter(|o| o.is_open())
        .cloned()
        .collect();
    if open.is_empty() {
        return;
    }
    match venue.adopt(&open).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(user_id = %state.user.id, orders = n, "venue took back open orders");
            metrics::counter!("ordermon_venue_orders_adopted_total").increment(n as u64);
        }
        Err(e) => {
            tracing::warn!(user_id = %state.user.id, error = %e, "venue could not take back open orders");
        }
    }
}
