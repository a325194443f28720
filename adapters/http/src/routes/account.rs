//! A user's own trading state: account balances, portfolio, positions and fills.

use axum::Json;
use axum::extract::State;
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::ports::FillQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::UserQuery;
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{AccountSummary, FillPage, FillView, Portfolio, PositionDto};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, bad_cursor, parse_limit, parse_opt};

/// Balances (total, reserved, free), equity, PnL and drawdown.
#[utoipa::path(get, path = "/api/v1/account", tag = "account", params(UserQuery),
    responses((status = 200, body = AccountSummary), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn account(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<AccountSummary>> {
    let user = caller.target(q.user_id.as_deref())?;
    Ok(Json(
        state.engine.accounts.portfolio(&user).await?.account.into(),
    ))
}

/// The account summary and open positions, valued at the latest marks.
#[utoipa::path(get, path = "/api/v1/portfolio", tag = "account", params(UserQuery),
    responses((status = 200, body = Portfolio), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn portfolio(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Portfolio>> {
    let user = caller.target(q.user_id.as_deref())?;
    Ok(Json(state.engine.accounts.portfolio(&user).await?.into()))
}

/// Every position, open and closed.
#[utoipa::path(get, path = "/api/v1/positions", tag = "account", params(UserQuery),
    responses((status = 200, body = [PositionDto])),
    security(("bearer" = [])))]
pub async fn positions(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Vec<PositionDto>>> {
    let user = caller.target(q.user_id.as_deref())?;
    let positions = state.engine.accounts.positions(&user).await?;
    Ok(Json(positions.into_iter().map(PositionDto::from).collect()))
}

/// `GET /api/v1/fills` filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FillListQuery {
    /// One order's fills.
    #[param(value_type = Option<crate::dto::formats::UuidV7>)]
    pub order_id: Option<String>,
    /// One instrument's fills.
    #[param(value_type = Option<crate::dto::formats::InstrumentId>)]
    pub instrument_id: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Admins: one user's fills (default: every user's).
    #[param(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
}

/// Fills, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/fills", tag = "account", params(FillListQuery),
    responses(
        (status = 200, body = FillPage),
        (status = 400, description = "bad cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn fills(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FillListQuery>,
) -> ApiResult<Json<FillPage>> {
    let scope = caller.target_scope(q.user_id.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 100, 500)?;
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(bad_cursor)?,
        ),
    };
    let query = FillQuery {
        user_id: scope.user().cloned(),
        order_id: parse_opt::<OrderId>("order_id", q.order_id.as_deref())?,
        instrument_id: parse_opt::<InstrumentId>("instrument_id", q.instrument_id.as_deref())?,
        before,
        limit: limit + 1,
    };
    let mut fills = state.engine.orders.fills(&query).await?;
    let more = fills.len() > limit as usize;
    fills.truncate(limit as usize);
    let next_cursor = if more {
        fills.last().map(|(c, _)| c.to_string())
    } else {
        None
    };
    Ok(Json(FillPage {
        items: fills.into_iter().map(|(_, f)| FillView::from(f)).collect(),
        next_cursor,
    }))
}
