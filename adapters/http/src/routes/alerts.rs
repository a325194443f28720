//! Alerting: alerts (list, read, acknowledge, resolve), silences (list,
//! create, expire), the rules and per-user overrides of them. A trader sees
//! and handles the alerts about themselves; system alerts and other users'
//! are 404 to them. An admin sees everything.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ordermon_application::alerting::{AlertFilter, AlertingService, OverridePatch};
use ordermon_domain::alert::{AlertState, NewSilence, Severity};
use ordermon_domain::ids::{AlertId, RuleName, SilenceId, UserId};

use super::{Admin, UserQuery, Writer};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::alerts::{
    AlertActionRequest, AlertPage, AlertRuleList, AlertRuleView, AlertView, CreateSilenceRequest,
    OverrideRequest, SilencePage, SilenceView,
};
use crate::error::{ApiError, ApiResult, Problem, ProblemField};
use crate::extract::{ApiJson, ApiQuery};

/// Longest comment on an acknowledgement or resolution.
const MAX_COMMENT: usize = 1024;

fn service(state: &ApiState) -> Result<&Arc<AlertingService>, ApiError> {
    state.alerting.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "alerting is not running on this server",
        )
    })
}

fn alert_id(raw: &str) -> Result<AlertId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("alert"))
}

fn silence_id(raw: &str) -> Result<SilenceId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("silence"))
}

fn rule_name(raw: &str) -> Result<RuleName, ApiError> {
    RuleName::new(raw).map_err(|_| ApiError::not_found("alert rule"))
}

/// Parses `GET /api/v1/alerts`'s query: `state`, `severity` (repeatable or
/// comma-separated), `rule`, `label` (repeatable matchers), `user_id`
/// (admins), `cursor`, `limit`.
fn alert_filter(caller: &Caller, raw: Option<&str>) -> Result<AlertFilter, ApiError> {
    if let Some(name) = raw.and_then(crate::extract::empty_parameter) {
        return Err(ApiError::field(
            name,
            "must not be empty; leave the parameter out for its default",
        ));
    }
    let mut f = AlertFilter::default();
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(ProblemField {
            field: field.to_owned(),
            message,
        });
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "state" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    match s.parse::<AlertState>() {
                        Ok(st) if f.states.contains(&st) => {}
                        Ok(st) => f.states.push(st),
                        Err(_) => bad(
                            "state",
                            format!("unknown state `{s}` (pending, firing, resolved)"),
                        ),
                    }
                }
            }
            "severity" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    match s.parse::<Severity>() {
                        Ok(sev) if f.severities.contains(&sev) => {}
                        Ok(sev) => f.severities.push(sev),
                        Err(_) => bad(
                            "severity",
                            format!("unknown severity `{s}` (info, warning, critical)"),
                        ),
                    }
                }
            }
            "rule" => match RuleName::new(v.as_ref()) {
                Ok(r) => f.rule = Some(r),
                Err(e) => bad("rule", e.to_string()),
            },
            "label" => match v.parse() {
                Ok(m) => {
                    if f.labels.len() >= 16 {
                        bad("label", "at most 16 label matchers".to_owned());
                    } else {
                        f.labels.push(m);
                    }
                }
                Err(e) => bad("label", format!("{e}")),
            },
            "user_id" => match UserId::new(v.as_ref()) {
                Ok(u) if caller.is_admin() || u == caller.user_id => f.user = Some(u),
                Ok(_) => return Err(ApiError::not_found("user")),
                Err(e) => bad("user_id", e.to_string()),
            },
            "cursor" => match v.parse::<AlertId>() {
                Ok(c) => f.cursor = Some(c),
                Err(_) => bad("cursor", "not a cursor from a previous page".to_owned()),
            },
            "limit" => {
                match crate::dto::wire::parse_count(&v).and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if (1..=500).contains(&n) => f.limit = Some(n),
                    _ => bad("limit", "must be between 1 and 500".to_owned()),
                }
            }
            other => bad(other, "is not a known parameter".to_owned()),
        }
    }
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Alerts the caller may see, newest first. Filters: `state`, `severity`
/// (repeatable or comma-separated), `rule`, `label` (repeatable matchers such
/// as `label=venue="SIM"` or `label=user_id=~"desk-.*"`), `user_id` (admins),
/// `cursor`, `limit` (1–500, default 100).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(
        ("state" = Option<String>, Query, description = "pending, firing, resolved (comma-separated or repeated)",
            pattern = "^(pending|firing|resolved)(,(pending|firing|resolved))*$"),
        ("severity" = Option<String>, Query, description = "info, warning, critical (comma-separated or repeated)",
            pattern = "^(info|warning|critical)(,(info|warning|critical))*$"),
        ("rule" = Option<crate::dto::formats::RuleName>, Query, description = "one rule"),
        ("label" = Option<String>, Query, description = "a label matcher, repeatable (at most 16): name=\"v\", name!=\"v\", name=~\"re\", name!~\"re\"; a regular expression that does not compile is 422",
            pattern = "^[A-Za-z_][A-Za-z0-9_]*(=|!=|=~|!~)\"[^\"\\\\]*\"$"),
        ("user_id" = Option<crate::dto::formats::UserId>, Query, description = "admins: one user's alerts"),
        ("cursor" = Option<crate::dto::formats::UuidV7>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1-500, default 100"),
    ),
    responses(
        (status = 200, body = AlertPage),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<AlertPage>> {
    let svc = service(&state)?;
    let filter = alert_filter(&caller, raw.as_deref())?;
    let page = svc.list_alerts(&caller.scope(), filter).await?;
    Ok(Json(AlertPage {
        items: page.items.into_iter().map(AlertView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One alert (another user's, or a system alert for a non-admin, is 404).
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertView>> {
    let svc = service(&state)?;
    let alert = svc.get_alert(&caller.scope(), alert_id(&id)?).await?;
    Ok(Json(alert.into()))
}

/// The optional body of ack and resolve: empty, or `{"comment": "…"}`.
fn comment(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let c = crate::extract::parse_json::<AlertActionRequest>(body)?.comment;
    if c.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return Err(ApiError::field("comment", "longer than 1024 characters"));
    }
    Ok(c)
}

/// Acknowledges an alert: its notifications stop repeating and it does not
/// escalate; who and when are recorded. 409 when it is resolved.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts", params(("id" = String, Path)),
    request_body(content = AlertActionRequest, description = "optional"),
    responses(
        (status = 200, body = AlertView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "resolved", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn ack(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<AlertView>> {
    act(&state, &caller, &id, &body, false).await
}

/// Acknowledges (`resolve` false) or resolves an alert for the caller, logging
/// who and why.
async fn act(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    body: &[u8],
    resolve: bool,
) -> ApiResult<Json<AlertView>> {
    let svc = service(state)?;
    let id = alert_id(id)?;
    let comment = comment(body)?;
    let (scope, by) = (caller.scope(), caller.user_id.as_str());
    let alert = if resolve {
        svc.resolve(&scope, id, by).await?
    } else {
        svc.acknowledge(&scope, id, by).await?
    };
    let what = if resolve {
        "resolved by hand"
    } else {
        "acknowledged"
    };
    tracing::info!(alert = %id, by, comment = comment.as_deref().unwrap_or(""), "alert {what}");
    Ok(Json(alert.into()))
}

/// Resolves an alert by hand. It is not raised again until its condition has
/// cleared once. 409 when it is resolved already.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = String, Path)),
    request_body(content = AlertActionRequest, description = "optional"),
    responses(
        (status = 200, body = AlertView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "resolved already", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<AlertView>> {
    act(&state, &caller, &id, &body, true).await
}

/// Query of `GET /api/v1/silences`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SilenceQueryParams {
    /// Include silences that have ended (default false).
    pub expired: Option<bool>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<crate::dto::formats::UuidV7>)]
    pub cursor: Option<String>,
    /// 1–500, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::dto::wire::opt_query_count")]
    pub limit: Option<u32>,
}

/// Silences the caller may see, newest first (ended ones with `expired=true`).
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerts", params(SilenceQueryParams),
    responses((status = 200, body = SilencePage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_silences(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SilenceQueryParams>,
) -> ApiResult<Json<SilencePage>> {
    let svc = service(&state)?;
    let cursor = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<SilenceId>()
                .map_err(|_| ApiError::field("cursor", "not a cursor from a previous page"))?,
        ),
    };
    let page = svc
        .list_silences(&caller.scope(), q.expired.unwrap_or(false), cursor, q.limit)
        .await?;
    let now = state.clock.now();
    Ok(Json(SilencePage {
        items: page
            .items
            .into_iter()
            .map(|s| SilenceView::of(s, now))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Creates a silence: matching alerts send no notification during its
/// window. A trader's silence only ever covers their own alerts.
#[utoipa::path(post, path = "/api/v1/silences", tag = "alerts", request_body = CreateSilenceRequest,
    responses(
        (status = 201, body = SilenceView),
        (status = 422, description = "bad matcher or regex, bad or oversized window, too many matchers", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_silence(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    ApiJson(body): ApiJson<CreateSilenceRequest>,
) -> ApiResult<(StatusCode, Json<SilenceView>)> {
    let svc = service(&state)?;
    let mut errors = Vec::new();
    let mut matchers = Vec::new();
    if body.matchers.len() > ordermon_domain::alert::silence::MAX_MATCHERS {
        errors.push(ProblemField {
            field: "matchers".to_owned(),
            message: format!(
                "at most {} matchers",
                ordermon_domain::alert::silence::MAX_MATCHERS
            ),
        });
    } else {
        for (i, m) in body.matchers.iter().enumerate() {
            match m.parse() {
                Ok(m) => matchers.push(m),
                Err(message) => errors.push(ProblemField {
                    field: format!("matchers[{i}]"),
                    message,
                }),
            }
        }
    }
    let now = state.clock.now();
    let start = body.starts_at.unwrap_or(now).max(now);
    let ends_at = match (body.ends_at, body.duration.as_deref()) {
        (Some(e), None) => Some(e),
        (None, Some(d)) => match ordermon_domain::duration::parse(d)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| start.checked_add_signed(d))
        {
            Some(e) => Some(e),
            None => {
                errors.push(ProblemField {
                    field: "duration".to_owned(),
                    message: "write e.g. \"2h\" or \"30m\"".to_owned(),
                });
                None
            }
        },
        _ => {
            errors.push(ProblemField {
                field: "ends_at".to_owned(),
                message: "give ends_at or duration (one of them)".to_owned(),
            });
            None
        }
    };
    let user_id = match body.user_id.as_deref() {
        None => None,
        Some(raw) => match UserId::new(raw) {
            Ok(u) if caller.is_admin() || u == caller.user_id => Some(u),
            Ok(_) => return Err(ApiError::not_found("user")),
            Err(e) => {
                errors.push(ProblemField {
                    field: "user_id".to_owned(),
                    message: e.to_string(),
                });
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let Some(ends_at) = ends_at else {
        return Err(ApiError::field("ends_at", "is required"));
    };
    let silence = svc
        .create_silence(
            &caller.scope(),
            NewSilence {
                matchers,
                starts_at: body.starts_at,
                ends_at,
                created_by: caller.user_id.to_string(),
                comment: body.comment,
                user_id,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SilenceView::of(silence, state.clock.now())),
    ))
}

/// One silence.
#[utoipa::path(get, path = "/api/v1/silences/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = SilenceView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_silence(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SilenceView>> {
    let svc = service(&state)?;
    let s = svc.get_silence(&caller.scope(), silence_id(&id)?).await?;
    Ok(Json(SilenceView::of(s, state.clock.now())))
}

/// Expires a silence now (it stays on record). 409 when it has ended already.
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "alerts", params(("id" = String, Path)),
    responses(
        (status = 200, body = SilenceView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "ended already", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn expire_silence(
    State(state): State<ApiState>,
    Writer(caller): Writer,
    Path(id): Path<String>,
) -> ApiResult<Json<SilenceView>> {
    let svc = service(&state)?;
    let s = svc
        .expire_silence(&caller.scope(), silence_id(&id)?, caller.user_id.as_str())
        .await?;
    Ok(Json(SilenceView::of(s, state.clock.now())))
}

/// Every alert rule (built in and configured) with its settings; with
/// `user_id` (admins; others only themselves), as it applies to that user
/// after their overrides.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts", params(UserQuery),
    responses((status = 200, body = AlertRuleList)),
    security(("bearer" = [])))]
pub async fn rules(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<AlertRuleList>> {
    let svc = service(&state)?;
    let user = match q.user_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(caller.target(Some(raw))?),
    };
    let items = svc.rules(user.as_ref()).await?;
    Ok(Json(AlertRuleList {
        items: items.into_iter().map(AlertRuleView::from).collect(),
    }))
}

/// Sets one user's override of a rule (admin): threshold, `for`, severity,
/// on/off. Fields left out keep their value. 422 when the rule has no such
/// setting (a baseline rule has no threshold; system rules are not per user).
#[utoipa::path(put, path = "/api/v1/alert-rules/{name}/overrides/{user_id}", tag = "alerts",
    params(("name" = String, Path), ("user_id" = String, Path)),
    request_body = OverrideRequest,
    responses(
        (status = 200, body = AlertRuleView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn set_override(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path((name, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<OverrideRequest>,
) -> ApiResult<Json<AlertRuleView>> {
    let svc = service(&state)?;
    let rule = rule_name(&name)?;
    let user = UserId::new(user).map_err(|_| ApiError::not_found("user"))?;
    let mut errors = Vec::new();
    let threshold = match body.threshold.as_deref() {
        None => None,
        Some(t) => match t.trim().parse::<rust_decimal::Decimal>() {
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(ProblemField {
                    field: "threshold".to_owned(),
                    message: "a decimal string expected, e.g. \"0.5\"".to_owned(),
                });
                None
            }
        },
    };
    let for_duration = match body.for_duration.as_deref() {
        None => None,
        Some(t) => match ordermon_domain::duration::parse(t) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(ProblemField {
                    field: "for".to_owned(),
                    message: e.to_string(),
                });
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let patch = OverridePatch {
        enabled: body.enabled,
        threshold,
        for_duration,
        severity: body.severity.map(Into::into),
    };
    let view = svc
        .set_override(&rule, &user, patch, caller.user_id.as_str())
        .await?;
    Ok(Json(view.into()))
}

/// Removes one user's override of a rule (admin).
#[utoipa::path(delete, path = "/api/v1/alert-rules/{name}/overrides/{user_id}", tag = "alerts",
    params(("name" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete_override(
    State(state): State<ApiState>,
    Admin(_caller): Admin,
    Path((name, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let svc = service(&state)?;
    let rule = rule_name(&name)?;
    let user = UserId::new(user).map_err(|_| ApiError::not_found("user"))?;
    svc.delete_override(&rule, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
