//! The order flow inside an owner: submit, batch, modify, cancel and
//! cancel-all, each applied to the in-memory state and recorded in the cycle.
//! Pre-trade risk reads the state in `risk.rs`; what the venue is asked and
//! answers goes through `venue.rs`; execution reports (the venue's, or the
//! executions API's) are applied in `reports.rs`.

mod reports;
mod risk;
mod venue;

use ordermon_domain::event::AccountEvent;
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::order::{Applied, NewOrder, Order, OrderEvent, OrderEventKind};
use ordermon_domain::ports::OrderChange;
use ordermon_domain::risk::DeniedReason;

use super::{Owner, SubmitOutcome};
use crate::error::AppError;
use crate::validate::{check_change, same_request};
use venue::VenueRequest;

impl Owner {
    pub(super) async fn submit(&mut self, new: NewOrder) -> Result<SubmitOutcome, AppError> {
        let outcome = self.admit(new).await?;
        if outcome.created && outcome.order.status == ordermon_domain::order::OrderStatus::Submitted
        {
            self.ask_venue(outcome.order.id, VenueRequest::Submit).await;
        }
        let order = self
            .state
            .orders
            .get(&outcome.order.id)
            .cloned()
            .unwrap_or(outcome.order);
        if outcome.created {
            tracing::info!(
                order_id = %order.id,
                client_order_id = %order.client_order_id,
                instrument_id = %order.instrument_id,
                side = order.side.as_str(),
                quantity = %order.quantity,
                status = order.status.as_str(),
                reason = order.reason.as_deref().unwrap_or(""),
                "order submitted"
            );
        }
        Ok(SubmitOutcome {
            order,
            created: outcome.created,
        })
    }

    /// Creates the order, runs pre-trade risk and reserves; does not contact the venue.
    async fn admit(&mut self, new: NewOrder) -> Result<SubmitOutcome, AppError> {
        if let Some(id) = self.state.session_cids.get(&new.client_order_id).copied() {
            let existing = match self.state.orders.get(&id) {
                Some(o) => o.clone(),
                None => self
                    .ctx
                    .persistence
                    .orders
                    .get_order(id)
                    .await?
                    .ok_or(AppError::NotFound("order"))?,
            };
            return idempotent(existing, &new);
        }
        let instrument = self
            .ctx
            .catalog
            .get(&new.instrument_id)
            .ok_or_else(|| AppError::field("instrument_id", "unknown instrument"))?;
        let now = self.now();
        let (order, init) = Order::create(OrderId::generate(), new, now)?;
        let id = order.id;
        self.state
            .session_cids
            .insert(order.client_order_id.clone(), id);
        self.cycle.new_cids.push(order.client_order_id.clone());
        self.state.orders.insert(id, order);
        self.touch_order(id);
        let e = self.envelope(
            id.to_string(),
            1,
            ordermon_domain::event::EventPayload::Order(init),
        );
        self.cycle.events.push(e);
        self.note_submission(now);

        match self.risk_check(id, &instrument) {
            Err(reason) => {
                self.order_event(id, OrderEvent::Denied { reason })?;
                metrics::counter!("ordermon_orders_denied_total", "reason" => reason.as_str())
                    .increment(1);
            }
            Ok(request) => {
                let pos_qty = self.position_qty(&instrument.id);
                if let Err(e) = self.state.account.reserve(id, &request, pos_qty) {
                    let reason = DeniedReason::from(&e);
                    self.order_event(id, OrderEvent::Denied { reason })?;
                } else {
                    self.account_event(AccountEvent::Reserved {
                        order_id: id,
                        request,
                        position_qty: pos_qty,
                    });
                    self.order_event(id, OrderEvent::Submitted)?;
                    metrics::counter!("ordermon_orders_submitted_total").increment(1);
                }
            }
        }
        let order = self
            .state
            .orders
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("order"))?;
        Ok(SubmitOutcome {
            order,
            created: true,
        })
    }

    pub(super) async fn submit_batch(
        &mut self,
        orders: Vec<NewOrder>,
        atomic: bool,
    ) -> Result<Vec<Result<SubmitOutcome, AppError>>, AppError> {
        if !atomic {
            let mut out = Vec::with_capacity(orders.len());
            for new in orders {
                out.push(self.submit(new).await);
            }
            return Ok(out);
        }
        // All or none: commit what is pending, admit every order on a copy of
        // the state, and only send to the venue once all passed.
        self.flush().await;
        let saved = self.state.clone();
        let mut results = Vec::with_capacity(orders.len());
        let mut failed = false;
        for new in orders {
            let r = self.admit(new).await;
            match &r {
                Ok(o) if o.order.status == ordermon_domain::order::OrderStatus::Denied => {
                    failed = true;
                }
                Err(_) => failed = true,
                Ok(_) => {}
            }
            results.push(r);
        }
        if failed {
            self.state = saved;
            self.cycle = super::state::Cycle::default();
            let items = results
                .into_iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Err(e) => Some(crate::error::FieldError::new(format!("orders[{i}]"), e)),
                    Ok(o) if o.order.status == ordermon_domain::order::OrderStatus::Denied => {
                        Some(crate::error::FieldError::new(
                            format!("orders[{i}]"),
                            format!("denied: {}", o.order.reason.unwrap_or_default()),
                        ))
                    }
                    Ok(_) => None,
                })
                .collect();
            return Err(AppError::Validation(items));
        }
        for r in results.iter().flatten() {
            if r.created {
                self.ask_venue(r.order.id, VenueRequest::Submit).await;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.map(|o| SubmitOutcome {
                    order: self
                        .state
                        .orders
                        .get(&o.order.id)
                        .cloned()
                        .unwrap_or(o.order),
                    created: o.created,
                })
            })
            .collect())
    }

    /// Finds an order of this user: in memory, or (terminal ones) in the store.
    async fn locate(&mut self, id: OrderId) -> Result<(), AppError> {
        if self.state.orders.contains_key(&id) {
            return Ok(());
        }
        let order = self
            .ctx
            .persistence
            .orders
            .get_order(id)
            .await?
            .filter(|o| o.user_id == self.state.user.id)
            .ok_or(AppError::NotFound("order"))?;
        self.state.orders.insert(id, order);
        Ok(())
    }

    pub(super) async fn modify(
        &mut self,
        id: OrderId,
        change: OrderChange,
    ) -> Result<Order, AppError> {
        self.locate(id).await?;
        let order = self
            .state
            .orders
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("order"))?;
        order.can_apply(OrderEventKind::PendingUpdate)?;
        let instrument = self
            .ctx
            .catalog
            .get(&order.instrument_id)
            .ok_or(AppError::NotFound("instrument"))?;
        check_change(&order, &change, &instrument)?;
        // The modified order faces pre-trade risk on what it leaves unfilled, with
        // its own reservation released first; lowering the quantity always passes.
        let mut probe = order.clone();
        probe.quantity = change.quantity.unwrap_or(probe.quantity);
        probe.price = change.price.or(probe.price);
        probe.trigger_price = change.trigger_price.or(probe.trigger_price);
        self.modify_risk(&order, &probe, &instrument)
            .map_err(|r| AppError::Conflict {
                code: r.as_str(),
                message: format!("modify refused: {r}"),
            })?;

        self.order_event(id, OrderEvent::PendingUpdate)?;
        self.ask_venue(id, VenueRequest::Modify(&change)).await;
        self.state
            .orders
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("order"))
    }

    pub(super) async fn cancel(&mut self, id: OrderId) -> Result<Order, AppError> {
        self.locate(id).await?;
        let applied = self.order_event(id, OrderEvent::PendingCancel)?;
        if applied == Applied::Changed {
            self.ask_venue(id, VenueRequest::Cancel).await;
        }
        self.state
            .orders
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("order"))
    }

    pub(super) async fn cancel_all(
        &mut self,
        instrument: Option<&InstrumentId>,
    ) -> Result<Vec<Order>, AppError> {
        let mut ids: Vec<OrderId> = self
            .state
            .orders
            .values()
            .filter(|o| {
                o.is_open() && o.status != ordermon_domain::order::OrderStatus::PendingCancel
            })
            .filter(|o| instrument.is_none_or(|i| &o.instrument_id == i))
            .map(|o| o.id)
            .collect();
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.cancel(id).await {
                Ok(o) => out.push(o),
                Err(e) => tracing::warn!(order_id = %id, error = %e, "cancel-all skipped an order"),
            }
        }
        Ok(out)
    }
}

/// The answer to a repeated client order id: the original order when the body is
/// the same, a conflict when it differs.
pub(crate) fn idempotent(existing: Order, new: &NewOrder) -> Result<SubmitOutcome, AppError> {
    if same_request(&existing, new) {
        Ok(SubmitOutcome {
            order: existing,
            created: false,
        })
    } else {
        Err(AppError::Conflict {
            code: "idempotency_mismatch",
            message: format!(
                "client_order_id {} was already used with a different body",
                new.client_order_id
            ),
        })
    }
}
