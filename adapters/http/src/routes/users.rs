//! User administration: create, list, read, change (status, role, limits,
//! kill switch), revoke the user's tokens, and audited cash adjustments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordermon_application::UserPatch;
use ordermon_domain::ids::UserId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Admin;
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{
    AccountSummary, CashRequest, CreateUserRequest, PatchUserRequest, UserPage, UserView,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, bad_cursor, parse_limit};

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::new(raw).map_err(|_| ApiError::not_found("user"))
}

/// Creates a user and opens the account (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 409, description = "the id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = state.engine.users.create(body.into()).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `GET /api/v1/users` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Page size, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists users by id (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = UserPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> ApiResult<Json<UserPage>> {
    let limit = parse_limit(q.limit.as_deref(), 100, 500)?;
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(UserId::new(c).map_err(|_| bad_cursor())?),
    };
    let mut users = state.engine.users.list(after.as_ref(), limit + 1).await?;
    let more = users.len() > limit as usize;
    users.truncate(limit as usize);
    let next_cursor = if more {
        users.last().map(|u| u.id.to_string())
    } else {
        None
    };
    Ok(Json(UserPage {
        items: users.into_iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// One user (admins, or the user themself).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let id = user_id(&id)?;
    let id = caller.target(Some(id.as_str()))?;
    Ok(Json(state.engine.users.get(&id).await?.into()))
}

/// Enables or disables a user, replaces limits, or sets the user's kill switch (admin).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = PatchUserRequest,
    responses((status = 200, body = UserView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchUserRequest>,
) -> ApiResult<Json<UserView>> {
    let id = user_id(&id)?;
    let reason = body.reason.map(|r| format!("{r} (by {})", caller.user_id));
    let patch = UserPatch {
        status: body.status,
        limits: body.limits.map(Into::into),
        trading_state: body.trading_state,
        role: body.role,
        revoke_tokens: false,
        reason,
    };
    let user = state.engine.users.update(&id, patch).await;
    // Whatever the outcome, the next request of this user reads it afresh.
    state.access.forget(&id);
    Ok(Json(user?.into()))
}

/// Revokes every token of the user issued until now (admin): access tokens
/// from sign-in and tokens minted by `monitor-server token` alike are
/// refused from the next request (on other instances within
/// `auth.user_check_ttl`), and the user's live streams close. Tokens issued
/// in the same second as the revocation are refused too.
#[utoipa::path(post, path = "/api/v1/users/{id}/revoke-tokens", tag = "users",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the user, with `tokens_valid_after` set", body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_tokens(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let id = user_id(&id)?;
    let patch = UserPatch {
        revoke_tokens: true,
        reason: Some(format!("tokens revoked (by {})", caller.user_id)),
        ..UserPatch::default()
    };
    let user = state.engine.users.update(&id, patch).await;
    state.access.forget(&id);
    tracing::info!(user_id = %id, by = %caller.user_id, "tokens revoked");
    Ok(Json(user?.into()))
}

/// An audited deposit (positive) or withdrawal (negative) (admin). Answers with
/// the account's balances.
#[utoipa::path(post, path = "/api/v1/users/{id}/cash", tag = "users", params(("id" = String, Path)),
    request_body = CashRequest,
    responses(
        (status = 200, body = AccountSummary),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "withdrawal beyond free cash", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn cash(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CashRequest>,
) -> ApiResult<Json<AccountSummary>> {
    let id = user_id(&id)?;
    let amount = body.money()?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::field("reason", "must not be empty"));
    }
    let reason = format!("{} (by {})", body.reason, caller.user_id);
    state
        .engine
        .accounts
        .adjust_cash(&id, amount, reason)
        .await?;
    let view = state.engine.accounts.portfolio(&id).await?;
    Ok(Json(view.account.into()))
}

/// `GET /api/v1/users/{id}/logs` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The day, `YYYY-MM-DD` (UTC; default today).
    #[param(value_type = Option<chrono::NaiveDate>)]
    pub date: Option<String>,
    /// Lines per page, 1–5000 (default 1000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Most log lines in one page.
pub const MAX_LOG_PAGE: u32 = 5000;

/// One user's log lines of one day (the user themself, or an admin).
#[utoipa::path(get, path = "/api/v1/users/{id}/logs", tag = "users", params(("id" = String, Path), LogQuery),
    responses(
        (status = 200, body = crate::dto::strategies::UserLogView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "bad cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad date or limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn logs(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<crate::dto::strategies::UserLogView>> {
    let id = user_id(&id)?;
    let id = caller.target(Some(id.as_str()))?;
    let date = match q.date.as_deref() {
        None | Some("") => chrono::Utc::now().date_naive(),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::field("date", "must be YYYY-MM-DD"))?,
    };
    let limit = crate::extract::parse_limit(q.limit.as_deref(), 1000, MAX_LOG_PAGE)?;
    let from = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c.parse::<u64>().map_err(|_| crate::extract::bad_cursor())?,
    };
    let page = state
        .engine
        .users
        .log(&id, date, from, limit as usize)
        .await?;
    Ok(Json(crate::dto::strategies::UserLogView {
        user_id: id.to_string(),
        date,
        lines: page.lines,
        next_cursor: page.next.map(|n| n.to_string()),
    }))
}
