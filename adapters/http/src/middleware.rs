//! The middleware every response passes through: request ids, security
//! headers, a tracing span and metrics per request (labelled by route template,
//! never the raw path), problem+json for errors produced outside the handlers,
//! the request timeout and the body limit.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::HttpLimits;
use crate::error::{ApiError, PROBLEM_JSON, TRACE_ID, code_for_status};

/// The request id header, generated when the client sends none, echoed back.
pub const REQUEST_ID: &str = "x-request-id";

/// Counter of answered requests, by `method`, `route` and `status`.
pub const REQUESTS_TOTAL: &str = "ordermon_http_requests_total";

/// Histogram of request latency in seconds, by `method` and `route`.
pub const REQUEST_DURATION: &str = "ordermon_http_request_duration_seconds";

/// Makes UUIDv7 request ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Refuses `/api/` requests from a client address over its request limit
/// (429 with `Retry-After`) before any handler runs. Without a peer address
/// (a server that does not provide one) nothing is counted.
pub async fn throttle_addresses(
    axum::extract::State(limits): axum::extract::State<
        std::sync::Arc<ordermon_application::request_limits::RequestLimits>,
    >,
    request: Request,
    next: Next,
) -> Response {
    if let Some(peer) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        && request.uri().path().starts_with("/api/")
        && let Err(t) = limits.check_address(peer.0.ip())
    {
        return ApiError::throttled(t.retry_after).into_response();
    }
    next.run(request).await
}

/// Wraps the routes in the middleware stack (outermost first).
pub fn apply(app: Router, limits: HttpLimits) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let timeout = Duration::from_secs(limits.request_timeout_secs.max(1));
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(
            request_id.clone(),
            MakeRequestUuidV7,
        ))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(from_fn(observe))
        .layer(from_fn(problemify))
        // A handler that takes too long is answered 503 `timeout`.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes));
    app.layer(stack)
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// One span per request (method, route, request id, then status, latency and
/// the authenticated user), one log line at the end, and the request metrics.
async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "http_request",
        method,
        route = %route,
        request_id = %request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        user_id = tracing::field::Empty,
        role = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        otel.kind = "server",
        otel.name = tracing::field::Empty,
    );
    let trace_id = request_trace(&request, &span, method, &route);
    if let Some(id) = &trace_id {
        span.record("trace_id", &**id);
    }
    let response = TRACE_ID
        .scope(trace_id, next.run(request).instrument(span.clone()))
        .await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request failed");
        } else if status >= 400 {
            tracing::info!(status, latency_ms, "request refused");
        } else {
            tracing::debug!(status, latency_ms, "request served");
        }
    });
    metrics::counter!(
        REQUESTS_TOTAL,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(REQUEST_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// The request's trace id. When traces are recorded the request's span joins
/// the trace its `traceparent` names (or begins one); otherwise a well-formed
/// `traceparent` is only read, so logs and problem bodies can name it.
fn request_trace(
    request: &Request,
    span: &tracing::Span,
    method: &str,
    route: &str,
) -> Option<std::sync::Arc<str>> {
    use ordermon_application::trace_context;
    let traceparent = request
        .headers()
        .get(trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    if trace_context::enabled() {
        span.record("otel.name", format!("{method} {route}"));
        trace_context::follow(span, traceparent);
        let ours = trace_context::of(span)?;
        trace_context::trace_id(&ours).map(std::sync::Arc::from)
    } else {
        traceparent
            .and_then(trace_context::trace_id)
            .map(std::sync::Arc::from)
    }
}

fn is_json_body(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json")
        })
}

/// Turns error responses made outside the handlers (body limit, timeout,
/// protocol errors) into problem+json; handler errors already are.
async fn problemify(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_body(&response) {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            code_for_status(status),
            "the request body is larger than the limit",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("timeout", "the request took too long"),
        StatusCode::METHOD_NOT_ALLOWED => (
            code_for_status(status),
            "this method is not allowed on this path",
        ),
        _ => (
            code_for_status(status),
            status.canonical_reason().unwrap_or("error"),
        ),
    };
    let mut fresh = ApiError::new(status, code, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = response.headers().get(&name) {
            fresh.headers_mut().insert(name, v.clone());
        }
    }
    fresh
}
