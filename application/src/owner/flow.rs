//! The order flow inside an owner: submit, batch, modify, cancel and execution
//! reports, each applied to the in-memory state and recorded in the cycle.

use std::sync::Arc;

use chrono::Duration;
use ordermon_domain::Decimal;
use ordermon_domain::event::{AccountEvent, PositionEvent};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{Applied, NewOrder, Order, OrderError, OrderEvent, OrderEventKind};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, OrderChange};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{self, DeniedReason, RiskContext, reservation_for, reservation_price};
use ordermon_domain::user::UserStatus;

use super::{Owner, SubmitOutcome};
use crate::error::AppError;
use crate::validate::{check_change, same_request};

/// What the owner asks the venue to do with one of the user's orders.
#[derive(Debug, Clone, Copy)]
enum VenueRequest<'a> {
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

    /// Asks the venue (if orders go to one) to act on order `id` as it now
    /// stands in memory, and applies its answer. A request the venue fails
    /// is answered as a rejection of that request (see
    /// [`VenueRequest::refused`]), so it is recorded like any other report.
    async fn ask_venue(&mut self, id: OrderId, request: VenueRequest<'_>) {
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
    fn confirm_position(
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

    fn note_submission(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let cutoff = now - Duration::seconds(1);
        while self
            .state
            .recent_submits
            .front()
            .is_some_and(|t| *t <= cutoff)
        {
            self.state.recent_submits.pop_front();
        }
        self.state.recent_submits.push_back(now);
    }

    fn position_qty(&self, instrument: &InstrumentId) -> Decimal {
        self.state
            .positions
            .get(instrument)
            .map_or(Decimal::ZERO, |p| p.quantity)
    }

    fn daily_pnl(&mut self) -> Decimal {
        let today = self.now().date_naive();
        if today != self.state.day {
            self.state.day = today;
            self.state.day_realized = Decimal::ZERO;
        }
        let unrealized: Decimal = self
            .state
            .positions
            .values()
            .map(|p| p.unrealized_pnl(self.ctx.quotes.last_price(&p.instrument_id)))
            .sum();
        self.state.day_realized + unrealized
    }

    fn risk_check(
        &mut self,
        id: OrderId,
        instrument: &Instrument,
    ) -> Result<ordermon_domain::account::ReservationRequest, DeniedReason> {
        if self.state.user.status == UserStatus::Disabled {
            return Err(DeniedReason::UserDisabled);
        }
        let daily_pnl = self.daily_pnl();
        // The submission just noted is this order; it does not count against itself.
        let orders_last_second =
            u32::try_from(self.state.recent_submits.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let open_orders = self.state.open_order_count();
        let trading_state = self.trading_state();
        let Some(order) = self.state.orders.get(&id) else {
            return Err(DeniedReason::NoMarketPrice);
        };
        let ctx = RiskContext {
            order,
            instrument,
            account: &self.state.account,
            position: self.state.positions.get(&instrument.id),
            limits: &self.state.user.limits,
            params: &self.ctx.config.risk,
            last_price: self.ctx.quotes.last_price(&instrument.id),
            trading_state,
            open_orders,
            orders_last_second,
            daily_pnl,
        };
        risk::check_order(&ctx)
    }

    /// The trading state in force: the stricter of the user's and the global one.
    fn trading_state(&self) -> ordermon_domain::risk::TradingState {
        self.state
            .user
            .trading_state
            .stricter(self.ctx.global.state())
    }

    /// Pre-trade risk of changing `before` into `after` (see
    /// [`risk::check_modify`]); a disabled user may only lower quantities.
    fn modify_risk(
        &mut self,
        before: &Order,
        after: &Order,
        instrument: &Instrument,
    ) -> Result<(), DeniedReason> {
        if self.state.user.status == UserStatus::Disabled && !risk::lessens(before, after) {
            return Err(DeniedReason::UserDisabled);
        }
        let daily_pnl = self.daily_pnl();
        let mut account = self.state.account.clone();
        account.release(before.id);
        let trading_state = self.trading_state();
        let ctx = RiskContext {
            order: after,
            instrument,
            account: &account,
            position: self.state.positions.get(&instrument.id),
            limits: &self.state.user.limits,
            params: &self.ctx.config.risk,
            last_price: self.ctx.quotes.last_price(&instrument.id),
            trading_state,
            open_orders: self.state.open_order_count(),
            orders_last_second: 0,
            daily_pnl,
        };
        risk::check_modify(&ctx, before).map(|_| ())
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

    /// Applies one execution report (from the venue or the executions API).
    pub(super) async fn apply_report(
        &mut self,
        report: ExecutionReport,
    ) -> Result<Order, AppError> {
        if report.user_id != self.state.user.id {
            return Err(AppError::NotFound("order"));
        }
        let id = report.order_id;
        self.locate(id).await?;
        let event = match &report.kind {
            ExecutionReportKind::Accepted { venue_order_id } => OrderEvent::Accepted {
                venue_order_id: venue_order_id.clone(),
            },
            ExecutionReportKind::Rejected { reason } => OrderEvent::Rejected {
                reason: reason.clone(),
            },
            ExecutionReportKind::Canceled => OrderEvent::Canceled,
            ExecutionReportKind::Expired => OrderEvent::Expired,
            ExecutionReportKind::Triggered => OrderEvent::Triggered,
            ExecutionReportKind::Updated { change } => OrderEvent::Updated {
                quantity: change.quantity,
                price: change.price,
                trigger_price: change.trigger_price,
            },
            ExecutionReportKind::ModifyRejected { reason } => OrderEvent::ModifyRejected {
                reason: reason.clone(),
            },
            ExecutionReportKind::CancelRejected { reason } => OrderEvent::CancelRejected {
                reason: reason.clone(),
            },
            ExecutionReportKind::Fill {
                trade_id,
                quantity,
                price,
                commission,
                liquidity_side,
            } => {
                let order = self
                    .state
                    .orders
                    .get(&id)
                    .ok_or(AppError::NotFound("order"))?;
                if quantity.is_zero() {
                    return Err(AppError::field(
                        "quantity",
                        "fill quantity must be positive",
                    ));
                }
                // The account and position take quantity × price × multiplier.
                let multiplier = self
                    .ctx
                    .catalog
                    .get(&order.instrument_id)
                    .map_or(Decimal::ONE, |i| i.multiplier);
                if quantity
                    .get()
                    .checked_mul(price.get())
                    .and_then(|n| n.checked_mul(multiplier))
                    .is_none_or(|n| n.abs() >= ordermon_domain::values::MAX_ABS)
                {
                    return Err(OrderError::FillTooLarge.into());
                }
                OrderEvent::Filled {
                    fill: Fill {
                        trade_id: trade_id.clone(),
                        order_id: id,
                        user_id: order.user_id.clone(),
                        instrument_id: order.instrument_id.clone(),
                        side: order.side,
                        quantity: *quantity,
                        price: *price,
                        commission: commission.clone(),
                        liquidity_side: *liquidity_side,
                        ts_event: report.ts_event,
                    },
                }
            }
        };
        let applied = self.order_event(id, event.clone())?;
        if let (Applied::Changed, OrderEvent::Filled { fill }, Some(venue), Some(order)) = (
            applied,
            &event,
            self.ctx.venue(),
            self.state.orders.get(&id),
        ) {
            self.confirm_position(venue.as_ref(), order, Some(&fill.trade_id));
        }
        if applied == Applied::Changed {
            if let Some(o) = self.state.orders.get(&id) {
                match &event {
                    OrderEvent::Filled { fill } => tracing::info!(
                        order_id = %id,
                        trade_id = %fill.trade_id,
                        quantity = %fill.quantity,
                        price = %fill.price,
                        status = o.status.as_str(),
                        "order filled"
                    ),
                    OrderEvent::Canceled
                    | OrderEvent::Expired
                    | OrderEvent::Rejected { .. }
                    | OrderEvent::Accepted { .. } => tracing::info!(
                        order_id = %id,
                        status = o.status.as_str(),
                        reason = o.reason.as_deref().unwrap_or(""),
                        "order {}",
                        event.kind()
                    ),
                    _ => {}
                }
            }
            match event {
                OrderEvent::Canceled | OrderEvent::Expired | OrderEvent::Rejected { .. } => {
                    if let Some(hold) = self.state.account.release(id) {
                        self.account_event(AccountEvent::Released { order_id: id, hold });
                    }
                }
                OrderEvent::Filled { fill } => self.settle(fill)?,
                OrderEvent::Updated { .. } => self.resize_reservation(id),
                _ => {}
            }
        }
        self.state
            .orders
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("order"))
    }

    fn settle(&mut self, fill: Fill) -> Result<(), AppError> {
        let instrument: Arc<Instrument> = self
            .ctx
            .catalog
            .get(&fill.instrument_id)
            .ok_or(AppError::NotFound("instrument"))?;
        let now = self.now();
        let position = self
            .state
            .positions
            .entry(fill.instrument_id.clone())
            .or_insert_with(|| {
                Position::flat(
                    fill.user_id.clone(),
                    fill.instrument_id.clone(),
                    instrument.quote_currency.clone(),
                    instrument.multiplier,
                    now,
                )
            });
        let change =
            position.apply_fill(fill.side, fill.quantity, fill.price, &fill.commission, now);
        self.state.day_realized += change.realized;
        if let Some(strategy) = self
            .state
            .orders
            .get(&fill.order_id)
            .and_then(|o| o.strategy_id.clone())
        {
            // The strategy's own result: what its fills realized, net of
            // commission; a fill that closes exposure is a win or a loss.
            let (realized, closed) = (change.realized, !change.closed_qty.is_zero());
            self.bump_stats(&strategy, |s| {
                s.realized_pnl += realized;
                if closed {
                    if realized > Decimal::ZERO {
                        s.wins += 1;
                    } else {
                        s.losses += 1;
                    }
                }
            });
        }
        self.position_event(
            &fill.instrument_id,
            PositionEvent::fill_applied(&fill, change),
        );
        let settlement = self.state.account.settle_fill(
            fill.order_id,
            fill.side,
            fill.quantity,
            fill.price,
            instrument.multiplier,
            &instrument.quote_currency,
            &fill.commission,
        );
        self.account_event(AccountEvent::fill_settled(&fill, &instrument, settlement));
        if let Some(o) = self.state.orders.get(&fill.order_id) {
            if !o.overfill_qty.is_zero() {
                metrics::counter!("ordermon_overfills_total").increment(1);
                tracing::error!(user_id = %o.user_id, order_id = %o.id, overfill = %o.overfill_qty, "order overfilled");
            }
        }
        metrics::counter!("ordermon_fills_total").increment(1);
        self.cycle.fills.push(fill);
        Ok(())
    }

    /// After a confirmed modification, holds what the order needs now.
    fn resize_reservation(&mut self, id: OrderId) {
        let Some(order) = self.state.orders.get(&id).cloned() else {
            return;
        };
        let Some(instrument) = self.ctx.catalog.get(&order.instrument_id) else {
            return;
        };
        let last = self.ctx.quotes.last_price(&order.instrument_id);
        let Ok(px) = reservation_price(&order, &self.ctx.config.risk, last) else {
            return;
        };
        let pos_qty = self.position_qty(&order.instrument_id);
        let request = reservation_for(
            &order,
            &instrument,
            self.state.account.account_type,
            pos_qty,
            &self.ctx.config.risk,
            px,
        );
        let Some(old) = self.state.account.release(id) else {
            return;
        };
        self.account_event(AccountEvent::Released {
            order_id: id,
            hold: old.clone(),
        });
        if self.state.account.reserve(id, &request, pos_qty).is_ok() {
            self.account_event(AccountEvent::Reserved {
                order_id: id,
                request,
                position_qty: pos_qty,
            });
        } else {
            // Funds moved between the request and the venue's confirmation: keep
            // the old hold (it was just released, so it fits) and say so.
            let back = ordermon_domain::account::ReservationRequest {
                hold: old,
                quantity: order.leaves_qty(),
            };
            if self.state.account.reserve(id, &back, pos_qty).is_ok() {
                self.account_event(AccountEvent::Reserved {
                    order_id: id,
                    request: back,
                    position_qty: pos_qty,
                });
            }
            tracing::warn!(user_id = %order.user_id, order_id = %id, "modified order kept its previous reservation");
        }
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
