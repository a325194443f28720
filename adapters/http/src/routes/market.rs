//! Reference and market data: instruments (read by anyone signed in, written by
//! admins) and the latest quote per instrument.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordermon_domain::ids::InstrumentId;

use super::Admin;
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{InstrumentDto, QuoteView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

fn instrument_id(raw: &str) -> Result<InstrumentId, ApiError> {
    InstrumentId::new(raw).map_err(|_| ApiError::not_found("instrument"))
}

/// Every instrument, by id.
#[utoipa::path(get, path = "/api/v1/instruments", tag = "market",
    responses((status = 200, body = [InstrumentDto])),
    security(("bearer" = [])))]
pub async fn list(State(state): State<ApiState>, _caller: Caller) -> Json<Vec<InstrumentDto>> {
    let mut all: Vec<InstrumentDto> = state
        .engine
        .catalog()
        .all()
        .iter()
        .map(|i| InstrumentDto::from(i.as_ref().clone()))
        .collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Json(all)
}

/// One instrument.
#[utoipa::path(get, path = "/api/v1/instruments/{id}", tag = "market",
    params(("id" = String, Path, description = "SYMBOL.VENUE")),
    responses((status = 200, body = InstrumentDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<InstrumentDto>> {
    let id = instrument_id(&id)?;
    let instrument = state
        .engine
        .catalog()
        .get(&id)
        .ok_or_else(|| ApiError::not_found("instrument"))?;
    Ok(Json(instrument.as_ref().clone().into()))
}

/// Creates or replaces an instrument (admin). 201 when new, 200 when replaced.
#[utoipa::path(post, path = "/api/v1/instruments", tag = "market", request_body = InstrumentDto,
    responses(
        (status = 201, body = InstrumentDto),
        (status = 200, description = "replaced", body = InstrumentDto),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn upsert(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiJson(body): ApiJson<InstrumentDto>,
) -> ApiResult<(StatusCode, Json<InstrumentDto>)> {
    let instrument = state
        .engine
        .upsert_instrument(body.into_instrument())
        .await?;
    let status = if instrument.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(instrument.into())))
}

/// The latest quote of an instrument.
#[utoipa::path(get, path = "/api/v1/quotes/{instrument}", tag = "market",
    params(("instrument" = String, Path, description = "SYMBOL.VENUE")),
    responses((status = 200, body = QuoteView), (status = 404, description = "unknown instrument or no quote yet", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn quote(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(instrument): Path<String>,
) -> ApiResult<Json<QuoteView>> {
    let id = instrument_id(&instrument)?;
    Ok(Json(state.engine.quote(&id)?.into()))
}
