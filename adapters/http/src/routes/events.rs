//! The event feed: the audit log after a position, the caller's events only
//! (admins see every user's, or one user's with `?user_id=`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{EventPage, EventView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiQuery, parse_limit};

/// `GET /api/v1/events` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events after this log position (default 0: from the start).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Admins: one user's events.
    #[param(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
}

/// Events after a log position, in log order.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn feed(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let scope = caller.target_scope(q.user_id.as_deref())?;
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => crate::dto::wire::parse_count(a)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| ApiError::field("after", "must be a log position (an integer >= 0)"))?,
    };
    let limit = parse_limit(q.limit.as_deref(), 100, 1000)?;
    let events = state.engine.events.after(&scope, after, limit).await?;
    let next_after = events.last().map_or(after, |e| e.position);
    Ok(Json(EventPage {
        items: events.into_iter().map(EventView::from).collect(),
        next_after,
    }))
}
