//! Strategy configuration: create, list, read, change (params apply without a
//! restart; status enables or disables), delete. Every change goes through the
//! owner's monitor, so it takes effect at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordermon_domain::ids::StrategyId;

use super::{UserQuery, Writer};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::strategies::{
    CreateStrategyRequest, PatchStrategyRequest, StrategyList, StrategyTypeView, StrategyView,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};

fn strategy_id(raw: &str) -> Result<StrategyId, ApiError> {
    StrategyId::new(raw).map_err(|_| ApiError::not_found("strategy"))
}

/// The strategy as the API shows it, with its restarts and last error.
fn view(state: &ApiState, s: ordermon_domain::strategy::Strategy) -> StrategyView {
    let run = state
        .strategy_health
        .as_ref()
        .map(|h| h.get(&s.user_id, &s.id))
        .unwrap_or_default();
    StrategyView::from(s).with_run(run)
}

/// Creates a strategy for the caller (admins: for `?user_id=`). Bad params → 422, nothing saved.
#[utoipa::path(post, path = "/api/v1/strategies", tag = "strategies", params(UserQuery),
    request_body = CreateStrategyRequest,
    responses(
        (status = 201, body = StrategyView),
        (status = 409, description = "the id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiJson(body): ApiJson<CreateStrategyRequest>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let user = caller.target(q.user_id.as_deref())?;
    let strategy = body.into_strategy(user, state.clock.now());
    let created = state.engine.strategies.create(strategy).await?;
    Ok((StatusCode::CREATED, Json(view(&state, created))))
}

/// The caller's strategies with their live figures (admins: `?user_id=`).
#[utoipa::path(get, path = "/api/v1/strategies", tag = "strategies", params(UserQuery),
    responses((status = 200, body = StrategyList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<StrategyList>> {
    let user = caller.target(q.user_id.as_deref())?;
    let items = state.engine.strategies.list(&user).await?;
    Ok(Json(StrategyList {
        items: items.into_iter().map(|s| view(&state, s)).collect(),
    }))
}

/// The registered strategy types.
#[utoipa::path(get, path = "/api/v1/strategies/types", tag = "strategies",
    responses((status = 200, body = Vec<StrategyTypeView>)),
    security(("bearer" = [])))]
pub async fn types(State(state): State<ApiState>, _caller: Caller) -> Json<Vec<StrategyTypeView>> {
    Json(
        state
            .engine
            .strategies
            .registry()
            .describe()
            .into_iter()
            .map(|(t, d)| StrategyTypeView {
                type_name: t.to_owned(),
                description: d.to_owned(),
            })
            .collect(),
    )
}

/// One of the caller's strategies (admins: `?user_id=` names the owner;
/// strategy ids are unique per user, so another user's is 404).
#[utoipa::path(get, path = "/api/v1/strategies/{id}", tag = "strategies",
    params(("id" = String, Path), UserQuery),
    responses((status = 200, body = StrategyView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<StrategyView>> {
    let id = strategy_id(&id)?;
    let owner = caller.target(q.user_id.as_deref())?;
    let strategy = state.engine.strategies.get(&owner, &id).await?;
    Ok(Json(view(&state, strategy)))
}

/// Changes name, params (hot), instruments or status (admins: `?user_id=`
/// names the owner).
#[utoipa::path(patch, path = "/api/v1/strategies/{id}", tag = "strategies",
    params(("id" = String, Path), UserQuery),
    request_body = PatchStrategyRequest,
    responses(
        (status = 200, body = StrategyView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiJson(body): ApiJson<PatchStrategyRequest>,
) -> ApiResult<Json<StrategyView>> {
    let id = strategy_id(&id)?;
    let owner = caller.target(q.user_id.as_deref())?;
    let updated = state
        .engine
        .strategies
        .update(&owner, &id, body.into())
        .await?;
    Ok(Json(view(&state, updated)))
}

/// Deletes a strategy, stopping it first (admins: `?user_id=` names the owner).
#[utoipa::path(delete, path = "/api/v1/strategies/{id}", tag = "strategies",
    params(("id" = String, Path), UserQuery),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<StatusCode> {
    let id = strategy_id(&id)?;
    let owner = caller.target(q.user_id.as_deref())?;
    state.engine.strategies.delete(&owner, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
