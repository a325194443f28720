//! The owner's side of the venue: what it asks the venue to do with an order
//! and where the answers go. Orders go to a venue in paper mode only; in
//! external mode their status comes from the executions API.

use ordermon_domain::ids::OrderId;
use ordermon_domain::order::Order;
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, OrderChange};

use crate::owner::Owner;

/// What the owner asks the venue to do with one of the user's orders.
#[derive(Debug, Clone, Copy)]
pub(super) enum VenueRequest<'a> {
    Submit,
    Modify(&'a OrderChange),
    Cancel,
}

impl VenueRequest<'_> {
    /// The report that records the venue failing this request.
    fn refused(self, reason: String) -> ExecutionReportKind {
        match self {
            Self::Submit => ExecutionReportKind::Rejected { reason },
            Self::Modify(_) => ExecutionReportKind::ModifyRejected { reason },
            Self::Cancel => ExecutionReportKind::CancelRejected { reason },
        }
    }
}

impl Owner {
    /// Asks the venue (if orders go to one) to act on order `id` as it now
    /// stands in memory, and applies its answer. A request the venue fails
    /// is answered as a rejection of that request (see
    /// [`VenueRequest::refused`]), so it is recorded like any other report.
    pub(super) async fn ask_venue(&mut self, id: OrderId, request: VenueRequest<'_>) {
        let Some(venue) = self.ctx.venue().cloned() else {
            return;
        };
        let Some(order) = self.state.orders.get(&id).cloned() else {
            return;
        };
        let answer = match request {
            VenueRequest::Submit => {
                self.confirm_position(venue.as_ref(), &order, None);
                venue.submit(&order).await
            }
            VenueRequest::Modify(change) => {
                self.confirm_position(venue.as_ref(), &order, None);
                venue.modify(&order, change).await
            }
            VenueRequest::Cancel => venue.cancel(&order).await,
        };
        let reports = match answer {
            Ok(r) => r,
            Err(e) => vec![self.report(id, request.refused(e.to_string()))],
        };
        self.apply_reports(reports).await;
    }

    /// Tells the venue the user's position in `order`'s instrument: after
    /// applying one of its fills (`trade`), or before sending a
    /// `reduce_only` order, so that it fills no further than flat.
    pub(super) fn confirm_position(
        &self,
        venue: &dyn ordermon_domain::ports::ExecutionVenue,
        order: &Order,
        trade: Option<&ordermon_domain::ids::TradeId>,
    ) {
        if trade.is_none() && !order.reduce_only {
            return;
        }
        venue.position_changed(
            &self.state.user.id,
            &order.instrument_id,
            self.position_qty(&order.instrument_id),
            trade,
        );
    }

    fn report(&self, order_id: OrderId, kind: ExecutionReportKind) -> ExecutionReport {
        ExecutionReport {
            order_id,
            user_id: self.state.user.id.clone(),
            kind,
            ts_event: self.now(),
        }
    }

    async fn apply_reports(&mut self, reports: Vec<ExecutionReport>) {
        for r in reports {
            let order_id = r.order_id;
            if let Err(e) = self.apply_report(r).await {
                tracing::warn!(user_id = %self.state.user.id, %order_id, error = %e, "venue report refused");
            }
        }
    }
}
