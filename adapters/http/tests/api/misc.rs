//! Health, status, metrics, security headers, request ids and the OpenAPI document.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use ordermon_http::HealthCheck;

use crate::common::{FIXED_METRICS, TestApp, assert_problem};

struct Down;

#[async_trait]
impl HealthCheck for Down {
    fn name(&self) -> &'static str {
        "bus"
    }
    async fn check(&self) -> Result<(), String> {
        Err("connection refused".to_owned())
    }
}

struct Slow;

#[async_trait]
impl HealthCheck for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    async fn check(&self) -> Result<(), String> {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn slow_requests_time_out_as_problems() {
    let t = TestApp::with_health(vec![Arc::new(Slow)]).await;
    let r = t.call(Method::GET, "/health/ready", None, None).await;
    assert_problem(&r, 503, "timeout");
}

#[tokio::test]
async fn health_and_status() {
    let t = TestApp::new().await;
    let r = t.call(Method::GET, "/health/live", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = t.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["components"]["store"]["status"], "ok");

    let down = TestApp::with_health(vec![Arc::new(Down)]).await;
    let r = down.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["status"], "unavailable");
    assert_eq!(r.body["components"]["bus"]["status"], "error");
    assert!(
        !r.text.contains("connection refused"),
        "anyone may ask for readiness: no reasons there: {}",
        r.text
    );
    assert_eq!(r.body["components"]["store"]["status"], "ok");
    let r = down.get("/status", &down.admin()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["health"]["bus"]["status"], "error");
    assert_eq!(r.body["health"]["bus"]["error"], "connection refused");
    assert_eq!(r.body["health"]["store"]["status"], "ok");

    let r = t.get("/status", &t.admin()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["uptime_secs"].as_i64().unwrap() >= 0);
    assert!(r.body["version"].is_string());
    assert!(r.body["monitors"].is_u64() && r.body["strategies"].is_u64());
    assert!(r.body["started_at"].is_string());
}

#[tokio::test]
async fn security_headers_and_request_ids() {
    let t = TestApp::new().await;
    for uri in ["/health/live", "/api/v1/orders", "/nope"] {
        let r = t.call(Method::GET, uri, None, None).await;
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["x-frame-options"], "DENY");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert_eq!(r.headers["content-security-policy"], "default-src 'self'");
        assert_eq!(r.headers["cache-control"], "no-store");
        assert!(!r.headers["x-request-id"].is_empty());
    }
    let req = axum::http::Request::builder()
        .uri("/health/live")
        .header("x-request-id", "my-id-123")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = t.send(req).await;
    assert_eq!(r.headers["x-request-id"], "my-id-123");
}

#[tokio::test]
async fn metrics_passthrough() {
    let t = TestApp::new().await;
    t.call(Method::GET, "/health/live", None, None).await;
    let r = t.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/plain; version=0.0.4");
    assert_eq!(r.text, FIXED_METRICS);
    assert!(r.text.contains("ordermon_http_requests_total"));
}

#[tokio::test]
async fn a_metrics_listener_serves_metrics_and_nothing_else() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;
    let app = ordermon_http::metrics_router(Arc::new(|| FIXED_METRICS.to_owned()));
    let request = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    };
    let r = app
        .clone()
        .oneshot(request(Method::GET, "/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4"
    );
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body, FIXED_METRICS.as_bytes());
    for (method, path, status) in [
        (Method::GET, "/health/live", StatusCode::NOT_FOUND),
        (Method::GET, "/api/v1/users", StatusCode::NOT_FOUND),
        (Method::POST, "/metrics", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let r = app.clone().oneshot(request(method, path)).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
}

#[tokio::test]
async fn openapi_document_lists_the_api() {
    let t = TestApp::new().await;
    let r = t
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/orders/batch",
        "/api/v1/orders/{id}/cancel",
        "/api/v1/orders/by-client-id/{client_order_id}",
        "/api/v1/executions",
        "/api/v1/account",
        "/api/v1/stream",
        "/health/ready",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(paths["/api/v1/orders"]["post"].is_object());
    assert!(paths["/api/v1/orders"]["delete"].is_object());
    let schemas = &r.body["components"]["schemas"];
    // Decimals are strings of a stated shape, ids have their patterns.
    assert_eq!(
        schemas["SubmitOrderRequest"]["properties"]["quantity"]["$ref"],
        "#/components/schemas/PositiveDecimal"
    );
    assert_eq!(
        schemas["SubmitOrderRequest"]["properties"]["instrument_id"]["$ref"],
        "#/components/schemas/InstrumentId"
    );
    assert_eq!(schemas["NonNegativeDecimal"]["type"], "string");
    assert!(schemas["NonNegativeDecimal"]["pattern"].is_string());
    assert_eq!(schemas["NonNegativeDecimal"]["maxLength"], 29);
    assert!(schemas["InstrumentId"]["pattern"].is_string());
    // Every status the shared layers send is listed.
    let submit = &paths["/api/v1/orders"]["post"]["responses"];
    for code in [
        "201", "400", "401", "403", "409", "413", "422", "429", "500", "503",
    ] {
        assert!(submit[code].is_object(), "POST /orders lacks {code}");
    }
    assert!(schemas["Problem"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn method_and_route_fallbacks() {
    let t = TestApp::new().await;
    let r = t.call(Method::DELETE, "/health/live", None, None).await;
    assert_problem(&r, 405, "method_not_allowed");
    let r = t
        .call(Method::GET, "/api/v1/orders/batch", Some(&t.admin()), None)
        .await;
    assert_problem(&r, 405, "method_not_allowed");
    let r = t.call(Method::GET, "/no-such-route", None, None).await;
    assert_problem(&r, 404, "not_found");
    // The dashboard's page is the one thing at `/`, for GET only.
    let r = t.call(Method::POST, "/", None, None).await;
    assert_problem(&r, 405, "method_not_allowed");
}

/// Records the names and labels of every metric registered.
#[derive(Default)]
struct Keys(Mutex<Vec<String>>);

impl Keys {
    fn push(&self, key: &Key) {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{{{}}}", key.name(), labels.join(",")));
    }
}

impl Recorder for Keys {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.push(key);
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.push(key);
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.push(key);
        Histogram::noop()
    }
}

#[test]
fn request_metrics_use_the_route_template() {
    let keys = Keys::default();
    metrics::with_local_recorder(&keys, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = TestApp::new().await;
            let id = ordermon_domain::ids::OrderId::generate();
            t.get(&format!("/api/v1/orders/{id}"), &t.admin()).await;
        });
    });
    let keys = keys.0.lock().unwrap();
    assert!(
        keys.iter().any(|k| k
            == "ordermon_http_requests_total{method=GET,route=/api/v1/orders/{id},status=404}"),
        "{keys:?}"
    );
    assert!(keys.iter().any(
        |k| k == "ordermon_http_request_duration_seconds{method=GET,route=/api/v1/orders/{id}}"
    ));
    assert!(
        keys.iter().all(|k| !k.contains("-7")),
        "raw ids leaked into labels: {keys:?}"
    );
}

/// Log lines in memory; positions are line numbers.
#[derive(Debug, Default)]
struct Lines(Vec<String>);

impl ordermon_domain::ports::UserLogSink for Lines {
    fn append(
        &self,
        _: &ordermon_domain::ids::UserId,
        _: chrono::DateTime<chrono::Utc>,
        _: &str,
    ) -> Result<(), ordermon_domain::ports::LogSinkError> {
        Ok(())
    }

    fn read_page(
        &self,
        user: &ordermon_domain::ids::UserId,
        _: chrono::NaiveDate,
        from: u64,
        limit: usize,
    ) -> Result<ordermon_domain::ports::LogPage, ordermon_domain::ports::LogSinkError> {
        if user.as_str() != "alice" {
            return Ok(ordermon_domain::ports::LogPage::default());
        }
        let from = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let end = from.saturating_add(limit).min(self.0.len());
        Ok(ordermon_domain::ports::LogPage {
            lines: self.0[from..end].to_vec(),
            next: (end < self.0.len()).then_some(end as u64),
        })
    }

    fn purge_before(
        &self,
        _: chrono::NaiveDate,
    ) -> Result<usize, ordermon_domain::ports::LogSinkError> {
        Ok(0)
    }
}

#[tokio::test]
async fn user_logs_come_in_pages() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    t.engine.set_user_logs(std::sync::Arc::new(Lines(
        (0..2500).map(|i| format!("line {i}")).collect(),
    )));
    let mut cursor = String::new();
    let mut sizes = Vec::new();
    loop {
        // The first page has no cursor (an empty one is refused).
        let path = if cursor.is_empty() {
            "/api/v1/users/alice/logs?limit=1000".to_owned()
        } else {
            format!("/api/v1/users/alice/logs?limit=1000&cursor={cursor}")
        };
        let r = t.get(&path, &alice).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let lines = r.body["lines"].as_array().unwrap();
        sizes.push(lines.len());
        if sizes.len() == 2 {
            assert_eq!(lines[0], "line 1000");
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(sizes, vec![1000, 1000, 500]);
    // Default page: 1000 lines.
    let r = t.get("/api/v1/users/alice/logs", &alice).await;
    assert_eq!(r.body["lines"].as_array().unwrap().len(), 1000);
    for (query, status) in [
        ("limit=0", 422),
        ("limit=5001", 422),
        ("limit=ten", 422),
        ("cursor=-1", 400),
        ("cursor=abc", 400),
    ] {
        let r = t
            .get(&format!("/api/v1/users/alice/logs?{query}"), &alice)
            .await;
        assert_eq!(r.status.as_u16(), status, "{query}: {}", r.text);
    }
}

#[tokio::test]
async fn a_user_over_its_request_limit_is_throttled_before_any_work() {
    use ordermon_application::request_limits::RequestLimitsConfig;
    let t = TestApp::with_request_limits(RequestLimitsConfig {
        per_user_per_second: 5,
        per_ip_per_second: 0,
    })
    .await;
    let alice = t.alice().await;
    let bob = t.user("bob", ordermon_domain::user::Role::Trader).await;
    let before = t.order_count().await;
    // A burst of twice the rate passes; then 429 with Retry-After, and the
    // refused orders are never created.
    let mut statuses = Vec::new();
    for i in 0..30 {
        let r = t
            .post(
                "/api/v1/orders",
                &alice,
                crate::common::limit_buy(&format!("flood-{i}"), "1", "10.00"),
            )
            .await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_problem(&r, 429, "rate_limited");
            let wait: u64 = r.headers[axum::http::header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1);
        }
    }
    let passed = statuses.iter().filter(|s| **s == 201).count();
    assert!((10..=12).contains(&passed), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 30 - passed);
    assert_eq!(t.order_count().await, before + passed);
    // Another user has its own allowance.
    let r = t.get("/api/v1/orders", &bob).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Health is not limited.
    for _ in 0..20 {
        let r = t.call(Method::GET, "/health/live", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_client_address_over_its_limit_is_throttled() {
    use ordermon_application::request_limits::RequestLimitsConfig;
    let t = TestApp::with_request_limits(RequestLimitsConfig {
        per_user_per_second: 0,
        per_ip_per_second: 3,
    })
    .await;
    let alice = t.alice().await;
    let from = |ip: [u8; 4]| {
        let mut req = axum::http::Request::builder()
            .method(Method::GET)
            .uri("/api/v1/orders")
            .header("authorization", format!("Bearer {alice}"))
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40_000,
            ))));
        req
    };
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(t.send(from([192, 0, 2, 1])).await.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 4);
    assert_eq!(t.send(from([192, 0, 2, 2])).await.status, StatusCode::OK);
}
