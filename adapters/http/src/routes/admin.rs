//! Admin and gateway endpoints: `/status`, external execution reports, the
//! kill switch and the bus's dead letters.

use axum::Json;
use axum::extract::State;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::ExecutionReport;

use super::Admin;
use crate::ApiState;
use crate::dto::{
    DeadLetterList, DeadLetterQuery, KillScope, KillSwitchRequest, KillSwitchResponse, OrderView,
    ReplayRequest, ReplayResponse, StatusReport,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};

/// Engine figures, uptime and version (admin).
#[utoipa::path(get, path = "/status", tag = "admin",
    responses((status = 200, body = StatusReport), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn status(State(state): State<ApiState>, Admin(_admin): Admin) -> Json<StatusReport> {
    let health = super::health::components(&state).await;
    let s = state.engine.status();
    let now = state.clock.now();
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
        health,
        components: state
            .status
            .iter()
            .map(|section| (section.name().to_owned(), section.report()))
            .collect(),
    })
}

fn dead_letter_admin(state: &ApiState) -> Result<&crate::DeadLetterAdmin, ApiError> {
    state.dead_letters.as_deref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server runs no message bus",
        )
    })
}

/// A consumer group's dead letters, oldest first (admin). Without `group`,
/// this instance's own group.
#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "admin", params(DeadLetterQuery),
    responses(
        (status = 200, body = DeadLetterList),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the broker is down", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetterList>> {
    let admin = dead_letter_admin(&state)?;
    let group = q.group.unwrap_or_else(|| admin.default_group.clone());
    let items = admin.letters.list(&group, q.limit.unwrap_or(100)).await?;
    Ok(Json(DeadLetterList {
        group,
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Sends a group's dead letters back to it for another try: the given events,
/// or all of them (admin, logged).
#[utoipa::path(post, path = "/api/v1/admin/dead-letters/replay", tag = "admin",
    request_body = ReplayRequest,
    responses(
        (status = 200, body = ReplayResponse),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the broker is down", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn replay_dead_letters(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> ApiResult<Json<ReplayResponse>> {
    let admin = dead_letter_admin(&state)?;
    let group = body.group.unwrap_or_else(|| admin.default_group.clone());
    let outcome = admin
        .letters
        .replay(&group, body.event_ids.as_deref())
        .await?;
    tracing::info!(admin = %caller.user_id, group = %group, replayed = outcome.replayed, "dead letters replayed through the API");
    Ok(Json(ReplayResponse {
        group,
        replayed: outcome.replayed,
    }))
}

/// Applies an execution report from an external venue gateway (admin):
/// `accepted`, `rejected`, `canceled`, `expired`, `triggered`, `updated`,
/// `modify_rejected`, `cancel_rejected` or `fill`. A repeated `trade_id` is a no-op.
#[utoipa::path(post, path = "/api/v1/executions", tag = "orders",
    request_body = crate::dto::executions::ExecutionReportDoc,
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
    let user = report.user_id.clone();
    let order = match state.engine.orders.execution_report(report).await {
        Ok(o) => o,
        Err(e) => {
            // A report the engine cannot apply (an unknown order, an illegal
            // transition) means the venue and ordermon disagree.
            let mismatch = matches!(
                &e,
                ordermon_application::AppError::NotFound(_)
                    | ordermon_application::AppError::Conflict { .. }
            );
            if mismatch && let Some(a) = &state.alerting {
                a.report_mismatch(user);
            }
            return Err(e.into());
        }
    };
    Ok(Json(order.into()))
}

/// Halts, restricts to reducing orders, or resumes trading, for one user or
/// everyone (admin, audited in the event log).
#[utoipa::path(post, path = "/api/v1/admin/kill-switch", tag = "admin",
    request_body = KillSwitchRequest,
    responses(
        (status = 200, body = KillSwitchResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn kill_switch(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<KillSwitchRequest>,
) -> ApiResult<Json<KillSwitchResponse>> {
    if body.reason.trim().is_empty() || body.reason.chars().count() > 500 {
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
        .admin
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
