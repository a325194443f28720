//! Reference and market data: instruments (read by anyone signed in, written by
//! admins), the latest quote per instrument and historical bars.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordermon_application::AppError;
use ordermon_application::bar_history::{BarQuery, DEFAULT_BARS, MAX_BARS};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Admin;
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{BarView, BarsView, InstrumentDto, QuoteView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, parse_limit, parse_time};

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
        .instruments
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
        .instruments
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
    // Versions are assigned by the server (a sent one is ignored), but are
    // stored as signed 64-bit integers: a larger one is not a version.
    if i64::try_from(body.version).is_err() {
        return Err(ApiError::field("version", "at most 9223372036854775807"));
    }
    let instrument = state
        .engine
        .instruments
        .upsert(body.into_instrument())
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
    Ok(Json(state.engine.instruments.quote(&id)?.into()))
}

/// Query of `GET /api/v1/bars/{instrument}`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BarsQuery {
    /// Bar width: `1m` (default), `5m`, `15m`, `1h`, `1d`.
    #[param(value_type = Option<String>, pattern = "^(1m|5m|15m|1h|1d)$")]
    pub interval: Option<String>,
    /// Start of the window (RFC 3339, inclusive); `limit` bars before `to` when absent.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// End of the window (RFC 3339, exclusive); now when absent.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
    /// At most this many bars (1 to 1000, default 500).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// Historical bars of an instrument: from the database when bars were loaded
/// there (`backfill bars`), else from the configured market-data provider
/// (cached 5 minutes, rate limited).
#[utoipa::path(get, path = "/api/v1/bars/{instrument}", tag = "market",
    params(("instrument" = String, Path, description = "SYMBOL.VENUE"), BarsQuery),
    responses(
        (status = 200, body = BarsView),
        (status = 404, description = "unknown instrument", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad interval, window or limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "no bars stored and the provider is failing", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn bars(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(instrument): Path<String>,
    ApiQuery(q): ApiQuery<BarsQuery>,
) -> ApiResult<Json<BarsView>> {
    let instrument = instrument_id(&instrument)?;
    let interval = match q.interval.as_deref() {
        None | Some("") => BarInterval::M1,
        Some(v) => v
            .parse::<BarInterval>()
            .map_err(|_| ApiError::field("interval", "must be one of 1m, 5m, 15m, 1h, 1d"))?,
    };
    let query = BarQuery {
        instrument: instrument.clone(),
        interval,
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
        limit: Some(parse_limit(q.limit.as_deref(), DEFAULT_BARS, MAX_BARS)?),
    };
    let history = state.bars.as_ref().ok_or_else(|| {
        ApiError::from(AppError::Unavailable(
            "bar history is not configured".to_owned(),
        ))
    })?;
    let answer = history.bars(&query).await?;
    Ok(Json(BarsView {
        instrument_id: instrument,
        interval: interval.as_str().to_owned(),
        from: answer.from,
        to: answer.to,
        source: answer.source,
        bars: answer.bars.into_iter().map(BarView::from).collect(),
    }))
}
