//! Execution reports applied to the user's state: each becomes an order
//! event; a fill settles the account and the position (and the strategy's
//! results), a final status releases the reservation, a confirmed
//! modification resizes it.

use std::sync::Arc;

use ordermon_domain::Decimal;
use ordermon_domain::event::{AccountEvent, PositionEvent};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::OrderId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{Applied, Order, OrderError, OrderEvent};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{reservation_for, reservation_price};

use crate::error::AppError;
use crate::owner::Owner;

impl Owner {
    /// Applies one execution report (from the venue or the executions API).
    pub(in crate::owner) async fn apply_report(
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
            self.strategies.update_stats(&strategy, |s| {
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
        if let Some(o) = self.state.orders.get(&fill.order_id)
            && !o.overfill_qty.is_zero()
        {
            metrics::counter!("ordermon_overfills_total").increment(1);
            tracing::error!(user_id = %o.user_id, order_id = %o.id, overfill = %o.overfill_qty, "order overfilled");
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
