//! Orders: submit (idempotent on the client order id, alone or in batches),
//! modify, cancel, apply a venue's execution report; read orders, their
//! events and fills.

use ordermon_domain::event::AggregateType;
use ordermon_domain::ids::{InstrumentId, OrderId, UserId};
use ordermon_domain::order::{NewOrder, Order};
use ordermon_domain::ports::{ExecutionReport, FillQuery, OrderChange, OrderQuery, StoredEvent};

use super::{Core, Scope};
use crate::error::AppError;
use crate::owner::{Command, SubmitOutcome, idempotent};
use crate::validate::check_new_order;

/// The order use cases.
#[derive(Clone, Debug)]
pub struct OrderService {
    pub(super) core: Core,
}

impl OrderService {
    /// Submits an order (idempotent on the client order id).
    ///
    /// # Errors
    /// Validation (422), idempotency mismatch (409), NotFound user, Unavailable.
    #[tracing::instrument(skip_all, fields(user_id = %new.user_id, client_order_id = %new.client_order_id), err(level = "debug"))]
    pub async fn submit(&self, new: NewOrder) -> Result<SubmitOutcome, AppError> {
        self.precheck(&new).await?;
        if let Some(existing) = self
            .core
            .ctx
            .persistence
            .orders
            .get_order_by_client_id(&new.user_id, new.client_order_id.as_str())
            .await?
        {
            return idempotent(existing, &new);
        }
        let user = new.user_id.clone();
        self.core
            .ask(&user, |reply| Command::Submit {
                new: Box::new(new),
                reply,
            })
            .await
    }

    async fn precheck(&self, new: &NewOrder) -> Result<(), AppError> {
        let instrument = self
            .core
            .ctx
            .catalog
            .get(&new.instrument_id)
            .ok_or_else(|| AppError::field("instrument_id", "unknown instrument"))?;
        new.validate(self.core.ctx.clock.now())?;
        check_new_order(new, &instrument)
    }

    /// Submits several orders: `atomic` = all or none, otherwise per-item results.
    ///
    /// # Errors
    /// For atomic batches, a validation error listing the failing items.
    pub async fn submit_batch(
        &self,
        user: &UserId,
        orders: Vec<NewOrder>,
        atomic: bool,
    ) -> Result<Vec<Result<SubmitOutcome, AppError>>, AppError> {
        if orders.is_empty() || orders.len() > 500 {
            return Err(AppError::field("orders", "must hold 1-500 orders"));
        }
        let mut checked = Vec::with_capacity(orders.len());
        let mut early: Vec<Option<Result<SubmitOutcome, AppError>>> =
            Vec::with_capacity(orders.len());
        let mut errors = Vec::new();
        for (i, new) in orders.into_iter().enumerate() {
            if &new.user_id != user {
                return Err(AppError::Forbidden);
            }
            match self.precheck(&new).await {
                Err(e) => {
                    // Name each failing field under its item (`orders[2].price`).
                    match &e {
                        AppError::Validation(inner) => {
                            errors.extend(inner.iter().map(|f| {
                                crate::error::FieldError::new(
                                    format!("orders[{i}].{}", f.field),
                                    &f.message,
                                )
                            }));
                        }
                        other => {
                            errors
                                .push(crate::error::FieldError::new(format!("orders[{i}]"), other));
                        }
                    }
                    early.push(Some(Err(e)));
                }
                Ok(()) => {
                    match self
                        .core
                        .ctx
                        .persistence
                        .orders
                        .get_order_by_client_id(user, new.client_order_id.as_str())
                        .await?
                    {
                        Some(existing) => early.push(Some(idempotent(existing, &new))),
                        None => {
                            early.push(None);
                            checked.push(new);
                        }
                    }
                }
            }
        }
        if atomic && !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let mut results = if checked.is_empty() {
            Vec::new()
        } else {
            self.core
                .ask(user, |reply| Command::SubmitBatch {
                    orders: checked,
                    atomic,
                    reply,
                })
                .await?
        }
        .into_iter();
        Ok(early
            .into_iter()
            .map(|e| match e {
                Some(r) => r,
                None => results.next().unwrap_or_else(|| {
                    Err(AppError::Unexpected("missing batch result".to_owned()))
                }),
            })
            .collect())
    }

    /// Modifies an open order.
    ///
    /// # Errors
    /// NotFound, Conflict (illegal transition, insufficient funds), Validation.
    pub async fn modify(
        &self,
        user: &UserId,
        id: OrderId,
        change: OrderChange,
    ) -> Result<Order, AppError> {
        self.core
            .ask(user, |reply| Command::Modify {
                order_id: id,
                change: Box::new(change),
                reply,
            })
            .await
    }

    /// Cancels an order.
    ///
    /// # Errors
    /// NotFound, Conflict (already terminal).
    pub async fn cancel(&self, user: &UserId, id: OrderId) -> Result<Order, AppError> {
        self.core
            .ask(user, |reply| Command::Cancel {
                order_id: id,
                reply,
            })
            .await
    }

    /// Cancels every open order of a user (optionally of one instrument).
    ///
    /// # Errors
    /// NotFound user.
    pub async fn cancel_all(
        &self,
        user: &UserId,
        instrument: Option<InstrumentId>,
    ) -> Result<Vec<Order>, AppError> {
        self.core
            .ask(user, |reply| Command::CancelAll { instrument, reply })
            .await
    }

    /// Applies an external execution report (gateway).
    ///
    /// # Errors
    /// NotFound, Conflict (illegal transition), Validation.
    pub async fn execution_report(&self, report: ExecutionReport) -> Result<Order, AppError> {
        let user = report.user_id.clone();
        self.core
            .ask(&user, |reply| Command::Report {
                report: Box::new(report),
                reply: Some(reply),
            })
            .await
    }

    /// One order, if the scope may see it.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get(&self, scope: &Scope, id: OrderId) -> Result<Order, AppError> {
        let orders = self.core.ctx.persistence.orders.clone();
        self.core
            .cache
            .order(scope.user(), id, || async move {
                Ok(orders.get_order(id).await?)
            })
            .await?
            .filter(|o| scope.covers(&o.user_id))
            .ok_or(AppError::NotFound("order"))
    }

    /// One order by client id.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get_by_client_id(&self, user: &UserId, cid: &str) -> Result<Order, AppError> {
        if cid.len() > 64 {
            // Longer than any client order id: nothing to look up (or cache).
            return Err(AppError::NotFound("order"));
        }
        let orders = self.core.ctx.persistence.orders.clone();
        let (user_id, key) = (user.clone(), cid.to_owned());
        let id = self
            .core
            .cache
            .order_id_by_client_id(user, cid, || async move {
                Ok(orders
                    .get_order_by_client_id(&user_id, &key)
                    .await?
                    .map(|o| o.id))
            })
            .await?
            .ok_or(AppError::NotFound("order"))?;
        self.get(&Scope::User(user.clone()), id).await
    }

    /// A page of orders.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, query: &OrderQuery) -> Result<Vec<Order>, AppError> {
        Ok(self.core.ctx.persistence.orders.list_orders(query).await?)
    }

    /// An order's full event history.
    ///
    /// # Errors
    /// NotFound.
    pub async fn events(&self, scope: &Scope, id: OrderId) -> Result<Vec<StoredEvent>, AppError> {
        self.get(scope, id).await?;
        Ok(self
            .core
            .ctx
            .persistence
            .events
            .aggregate_events(AggregateType::Order, &id.to_string())
            .await?)
    }

    /// A page of fills with their cursors.
    ///
    /// # Errors
    /// Store failures.
    pub async fn fills(
        &self,
        query: &FillQuery,
    ) -> Result<Vec<(i64, ordermon_domain::fill::Fill)>, AppError> {
        Ok(self.core.ctx.persistence.fills.list_fills(query).await?)
    }
}
