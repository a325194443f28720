//! Order endpoints: submit (single and batch), list with filters and cursor
//! pagination, read, modify, cancel, cancel-all and an order's event history.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordermon_application::{AppError, Scope, SubmitOutcome};
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::OrderStatus;
use ordermon_domain::ports::OrderQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{UserQuery, Writer, order_id};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{
    BatchItem, BatchRequest, BatchResponse, CancelAllResponse, EventView, ModifyOrderRequest,
    OrderPage, OrderView, SubmitOrderRequest,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, bad_cursor, parse_limit, parse_opt, parse_time};

/// Largest page of orders.
pub const MAX_ORDER_PAGE: u32 = 500;

fn outcome_status(o: &SubmitOutcome) -> StatusCode {
    if o.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Submits an order. 201 with the order (its status may be `denied` with a
/// `reason`), or 200 with the original order when the same `client_order_id`
/// and body were already submitted.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    params(UserQuery), request_body = SubmitOrderRequest,
    responses(
        (status = 201, description = "created", body = OrderView),
        (status = 200, description = "an idempotent repeat (same client order id and body): the original order", body = OrderView),
        (status = 409, description = "client_order_id reused with a different body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiJson(body): ApiJson<SubmitOrderRequest>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let user = caller.target(q.user_id.as_deref())?;
    let outcome = state
        .engine
        .orders
        .submit(body.into_new_order(user))
        .await?;
    Ok((outcome_status(&outcome), Json(outcome.order.into())))
}

/// Submits up to 500 orders. `atomic: true` creates all or none (422 listing
/// the failing items); otherwise each item has its own result. 201 when at
/// least one order was created, 200 otherwise.
#[utoipa::path(post, path = "/api/v1/orders/batch", tag = "orders",
    params(UserQuery), request_body = BatchRequest,
    responses(
        (status = 201, description = "per-item results; some created", body = BatchResponse),
        (status = 200, description = "per-item results; none created", body = BatchResponse),
        (status = 422, description = "atomic batch refused, or invalid body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn batch(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiJson(body): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, Json<BatchResponse>)> {
    let user = caller.target(q.user_id.as_deref())?;
    let orders = body
        .orders
        .into_iter()
        .map(|o| o.into_new_order(user.clone()))
        .collect();
    let results = state
        .engine
        .orders
        .submit_batch(&user, orders, body.atomic)
        .await?;
    let mut created = false;
    let results = results
        .into_iter()
        .map(|r| match r {
            Ok(o) => {
                created |= o.created;
                BatchItem {
                    status: outcome_status(&o).as_u16(),
                    order: Some(o.order.into()),
                    error: None,
                }
            }
            Err(e) => {
                let e = ApiError::from(e);
                BatchItem {
                    status: e.status.as_u16(),
                    order: None,
                    error: Some(e.problem()),
                }
            }
        })
        .collect();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(BatchResponse { results })))
}

/// Filters of `GET /api/v1/orders`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// Comma-separated statuses (`accepted,partially_filled`).
    #[param(value_type = Option<String>, pattern = "^(initialized|denied|submitted|accepted|rejected|canceled|expired|triggered|pending_update|pending_cancel|partially_filled|filled)(,(initialized|denied|submitted|accepted|rejected|canceled|expired|triggered|pending_update|pending_cancel|partially_filled|filled))*$")]
    pub status: Option<String>,
    /// One instrument.
    #[param(value_type = Option<crate::dto::formats::InstrumentId>)]
    pub instrument_id: Option<String>,
    /// One strategy.
    #[param(value_type = Option<crate::dto::formats::StrategyId>)]
    pub strategy_id: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// Created before (RFC 3339).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Admins: one user's orders (default: every user's).
    #[param(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
}

fn statuses(raw: Option<&str>) -> Result<Vec<OrderStatus>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    // Each status once, however often the list repeats it.
    let mut out = Vec::new();
    for s in raw.split(',') {
        let status = s
            .parse::<OrderStatus>()
            .map_err(|_| ApiError::field("status", format!("unknown status {s:?}")))?;
        if !out.contains(&status) {
            out.push(status);
        }
    }
    Ok(out)
}

/// Lists orders, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderListQuery),
    responses(
        (status = 200, body = OrderPage),
        (status = 400, description = "bad cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OrderListQuery>,
) -> ApiResult<Json<OrderPage>> {
    let scope = caller.target_scope(q.user_id.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 100, MAX_ORDER_PAGE)?;
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<OrderId>().map_err(|_| bad_cursor())?),
    };
    let query = OrderQuery {
        user_id: scope.user().cloned(),
        statuses: statuses(q.status.as_deref())?,
        instrument_id: parse_opt::<InstrumentId>("instrument_id", q.instrument_id.as_deref())?,
        strategy_id: parse_opt::<StrategyId>("strategy_id", q.strategy_id.as_deref())?,
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
        before,
        limit: limit + 1,
    };
    let mut orders = state.engine.orders.list(&query).await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let next_cursor = if more {
        orders.last().map(|o| o.id.to_string())
    } else {
        None
    };
    Ok(Json(OrderPage {
        items: orders.into_iter().map(OrderView::from).collect(),
        next_cursor,
    }))
}

/// One order (404 when it is not the caller's).
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "order id (UUIDv7); anything else is 404")),
    responses((status = 200, body = OrderView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let order = state
        .engine
        .orders
        .get(&caller.scope(), order_id(&id)?)
        .await?;
    Ok(Json(order.into()))
}

/// One order by the client's id.
#[utoipa::path(get, path = "/api/v1/orders/by-client-id/{client_order_id}", tag = "orders",
    params(("client_order_id" = String, Path), UserQuery),
    responses((status = 200, body = OrderView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn by_client_id(
    State(state): State<ApiState>,
    caller: Caller,
    Path(cid): Path<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<OrderView>> {
    let user = caller.target(q.user_id.as_deref())?;
    let order = state.engine.orders.get_by_client_id(&user, &cid).await?;
    Ok(Json(order.into()))
}

/// The owner of an order the caller may act on: the caller, or for admins the
/// order's owner.
async fn owner_of(state: &ApiState, caller: &Caller, id: OrderId) -> Result<UserId, ApiError> {
    if caller.is_admin() {
        Ok(state.engine.orders.get(&Scope::All, id).await?.user_id)
    } else {
        Ok(caller.user_id.clone())
    }
}

/// Modifies quantity, price or trigger price of an open order.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path)), request_body = ModifyOrderRequest,
    responses(
        (status = 200, description = "the order, usually pending_update until the venue confirms", body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not modifiable in its status, or funds", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn modify(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModifyOrderRequest>,
) -> ApiResult<Json<OrderView>> {
    let id = order_id(&id)?;
    let user = owner_of(&state, &caller, id).await?;
    let order = state.engine.orders.modify(&user, id, body.into()).await?;
    Ok(Json(order.into()))
}

/// Cancels an order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the order, canceled or pending_cancel", body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already terminal", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let id = order_id(&id)?;
    let user = owner_of(&state, &caller, id).await?;
    let order = state.engine.orders.cancel(&user, id).await?;
    Ok(Json(order.into()))
}

/// `DELETE /api/v1/orders` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CancelAllQuery {
    /// Only this instrument's orders.
    #[param(value_type = Option<crate::dto::formats::InstrumentId>)]
    pub instrument_id: Option<String>,
    /// Admins: the user whose orders to cancel (required for admins).
    #[param(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
}

/// Cancels every open order of the caller (optionally of one instrument).
#[utoipa::path(delete, path = "/api/v1/orders", tag = "orders", params(CancelAllQuery),
    responses((status = 200, body = CancelAllResponse)),
    security(("bearer" = [])))]
pub async fn cancel_all(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    ApiQuery(q): ApiQuery<CancelAllQuery>,
) -> ApiResult<Json<CancelAllResponse>> {
    let user = caller.target(q.user_id.as_deref())?;
    let instrument = parse_opt::<InstrumentId>("instrument_id", q.instrument_id.as_deref())?;
    let orders = state.engine.orders.cancel_all(&user, instrument).await?;
    Ok(Json(CancelAllResponse {
        canceled: orders.len(),
        orders: orders.into_iter().map(OrderView::from).collect(),
    }))
}

/// An order's full event history, in sequence order.
#[utoipa::path(get, path = "/api/v1/orders/{id}/events", tag = "orders",
    params(("id" = String, Path)),
    responses((status = 200, body = [EventView]), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<EventView>>> {
    let events = state
        .engine
        .orders
        .events(&caller.scope(), order_id(&id)?)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => ApiError::not_found("order"),
            e => e.into(),
        })?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}
