//! Admin and gateway endpoints: `/status`, external execution reports and the
//! kill switch.

use axum::Json;
use axum::extract::State;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::ExecutionReport;

use super::Admin;
use crate::ApiState;
use crate::dto::{KillScope, KillSwitchRequest, KillSwitchResponse, OrderView, StatusReport};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// Engine figures, uptime and version (admin).
#[utoipa::path(get, path = "/status", tag = "admin",
    responses((status = 200, body = StatusReport), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn status(State(state): State<ApiState>, Admin(_admin): Admin) -> Json<StatusReport> {
    let s = state.engine.status();
    let now = chrono::Utc::now();
    Json(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state.started_at,
        uptime_secs: (now - state.started_at).num_seconds().max(0),
        owners: s.owners,
        queued_commands: s.queued_commands,
        monitors: state.engine.monitored_users(),
        strategies: state.engine.running_strategies(),
        trading_state: s.trading_state,
        instruments: s.instruments,
    })
}

/// Applies an execution report from an external venue gateway (admin):
/// `accepted`, `rejected`, `canceled`, `expired`, `triggered`, `updated`,
/// `modify_rejected`, `cancel_rejected` or `fill`. A repeated `trade_id` is a no-op.
#[utoipa::path(post, path = "/api/v1/executions", tag = "orders",
    request_body(content = Object, description = "`{order_id, user_id, type, ts_event, ...}`; a fill adds `trade_id, quantity, price, commission: {amount, currency}, liquidity_side`"),
    responses(
        (status = 200, description = "the order after the report", body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "illegal transition", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn execution(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiJson(report): ApiJson<ExecutionReport>,
) -> ApiResult<Json<OrderView>> {
    let order = state.engine.execution_report(report).await?;
    Ok(Json(order.into()))
}

/// Halts, restricts to reducing orders, or resumes trading, for one user or
/// everyone (admin, audited in the event log).
#[utoipa::path(post, path = "/api/v1/admin/kill-switch", tag = "admin",
    request_body = KillSwitchRequest,
    responses(
        (status = 200, body = KillSwitchResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn kill_switch(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<KillSwitchRequest>,
) -> ApiResult<Json<KillSwitchResponse>> {
    if body.reason.trim().is_empty() || body.reason.len() > 500 {
        return Err(ApiError::field("reason", "must be 1-500 characters"));
    }
    let user = match (body.scope, body.user_id.as_deref()) {
        (KillScope::Global, None) => None,
        (KillScope::Global, Some(_)) => {
            return Err(ApiError::field("user_id", "not allowed with scope global"));
        }
        (KillScope::User, None) => {
            return Err(ApiError::field("user_id", "required with scope user"));
        }
        (KillScope::User, Some(raw)) => {
            Some(UserId::new(raw).map_err(|e| ApiError::field("user_id", e.to_string()))?)
        }
    };
    let state_now = state
        .engine
        .kill_switch(
            user.as_ref(),
            body.state,
            body.reason,
            caller.user_id.to_string(),
        )
        .await?;
    Ok(Json(KillSwitchResponse {
        scope: body.scope,
        user_id: user.map(|u| u.to_string()),
        state: state_now,
    }))
}
