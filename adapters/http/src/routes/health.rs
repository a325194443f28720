//! Liveness, readiness and the Prometheus passthrough. None of these need a token.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;

use crate::ApiState;
use crate::dto::{ComponentHealth, HealthReport};

/// The Prometheus text exposition media type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Always 200 while the process serves requests.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, body = HealthReport)))]
pub async fn live() -> Json<HealthReport> {
    Json(HealthReport {
        status: "ok".to_owned(),
        components: BTreeMap::new(),
    })
}

fn component(result: Result<(), String>, critical: bool) -> ComponentHealth {
    match result {
        Ok(()) => ComponentHealth {
            status: "ok".to_owned(),
            error: None,
        },
        Err(e) => ComponentHealth {
            status: if critical { "error" } else { "degraded" }.to_owned(),
            error: Some(e),
        },
    }
}

/// Every component's health, with the reason of each one failing: the store
/// and the extra checks, run concurrently.
pub(crate) async fn components(state: &ApiState) -> BTreeMap<String, ComponentHealth> {
    let store = state
        .engine
        .persistence()
        .store
        .health()
        .await
        .map_err(|e| e.to_string());
    let checks = join_all(
        state
            .health
            .iter()
            .map(|h| async move { (h.name(), h.critical(), h.check().await) }),
    )
    .await;
    let mut components = BTreeMap::new();
    components.insert("store".to_owned(), component(store, true));
    for (name, critical, result) in checks {
        components.insert(name.to_owned(), component(result, critical));
    }
    components
}

/// The readiness the components add up to (`unavailable` when a critical one
/// fails, `degraded` when only others do, else `ok`), recorded as gauges:
/// `ordermon_ready{state}` is 1 for that state and 0 for the others, and
/// `ordermon_component_up{component}` 1 for each component that answers.
fn record(components: &BTreeMap<String, ComponentHealth>) -> &'static str {
    let down = components.values().any(|c| c.status == "error");
    let degraded = components.values().any(|c| c.status == "degraded");
    let state = if down {
        "unavailable"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    for s in ["ok", "degraded", "unavailable"] {
        metrics::gauge!("ordermon_ready", "state" => s).set(if s == state { 1.0 } else { 0.0 });
    }
    for (name, c) in components {
        metrics::gauge!("ordermon_component_up", "component" => name.clone())
            .set(if c.status == "ok" { 1.0 } else { 0.0 });
    }
    state
}

/// Checks every component as `/health/ready` does and records the outcome
/// as gauges (see [`ready`]); the server calls it every few seconds, so the
/// gauges hold whether or not anything probes readiness.
pub async fn record_readiness(state: &ApiState) {
    record(&components(state).await);
}

/// 200 when the store and every critical component answer (`degraded` when a
/// non-critical one, such as the cache, does not), 503 otherwise; the body
/// names each component's state. Why one fails is not told here (anyone may
/// ask): `GET /status` (admin) has the reasons.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = HealthReport), (status = 503, description = "a component is down", body = HealthReport)))]
pub async fn ready(State(state): State<ApiState>) -> Response {
    let mut components = components(&state).await;
    let text = record(&components);
    for c in components.values_mut() {
        c.error = None;
    }
    let status = if text == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(HealthReport {
            status: text.to_owned(),
            components,
        }),
    )
        .into_response()
}

/// The Prometheus text exposition of every metric the process records.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<ApiState>, uri: Uri) -> Response {
    match &state.render_metrics {
        Some(render) => exposition(render()),
        // Served on a listener of its own: not a path of this one.
        None => super::not_found(uri).await.into_response(),
    }
}

/// A rendered exposition as a response, with its media type.
pub(crate) fn exposition(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
