//! The test harness: an engine on the in-memory store in external venue mode,
//! the full router, tokens, and helpers to call it and set up users.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use ordermon_application::committer::CommitConfig;
use ordermon_application::consume::DeadLetters;
use ordermon_application::instance_consumer::EventFanout;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::sign_in::{SignInConfig, SignInService};
use ordermon_application::{Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::ports::{MessageBus, OrderQuery, SystemClock};
use ordermon_domain::user::Role;
use ordermon_http::{
    ApiState, AuthConfig, DeadLetterAdmin, HealthCheck, HttpLimits, mint_token, router,
};
use ordermon_memory::MemoryStore;
use ordermon_memory::bus::MemoryBus;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-for-ordermon";

/// What the metrics endpoint renders in tests (no global recorder is installed).
pub const FIXED_METRICS: &str = "# TYPE ordermon_http_requests_total counter\nordermon_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1\n";

pub struct TestApp {
    pub app: Router,
    pub engine: Arc<Engine>,
    pub secret: SecretString,
    pub auth: AuthConfig,
    pub cancel: CancellationToken,
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_health(Vec::new()).await
    }

    pub async fn with_health(health: Vec<Arc<dyn HealthCheck>>) -> Self {
        Self::build(health, true, None).await
    }

    /// The app without password sign-in (its routes answer 503).
    pub async fn without_sign_in() -> Self {
        Self::build(Vec::new(), false, None).await
    }

    /// The app with request limits.
    pub async fn with_request_limits(
        limits: ordermon_application::request_limits::RequestLimitsConfig,
    ) -> Self {
        Self::build(Vec::new(), true, Some(limits)).await
    }

    async fn build(
        health: Vec<Arc<dyn HealthCheck>>,
        sign_in: bool,
        request_limits: Option<ordermon_application::request_limits::RequestLimitsConfig>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let store = Arc::new(MemoryStore::new());
        let engine = Engine::start(
            Persistence::from_backend(store),
            Arc::new(QuoteBook::new(1024)),
            Arc::new(SystemClock),
            EngineConfig {
                venue_mode: VenueMode::External,
                ..EngineConfig::default()
            },
            CommitConfig::default(),
            cancel.clone(),
        )
        .await
        .expect("engine starts");
        let secret = SecretString::from(SECRET);
        // Streams follow the local committer; dead letters live on an
        // in-process bus with nothing consuming it.
        let events = EventFanout::new(1024);
        events.follow(
            engine.events.subscribe(),
            &TaskTracker::new(),
            cancel.child_token(),
        );
        let bus: Arc<dyn MessageBus> = Arc::new(MemoryBus::new());
        // Alerting with its defaults (no receivers: nothing is sent).
        let alerting = ordermon_application::alerting::AlertingService::start(
            &ordermon_application::alerting::AlertingConfig::<()>::default(),
            ordermon_application::alerting::AlertingDeps {
                persistence: engine.persistence().clone(),
                committer: engine.committer(),
                events: engine.events.subscribe(),
                quotes: engine.instruments.quotes(),
                catalog: engine.instruments.catalog(),
                clock: Arc::new(SystemClock),
                notifiers: std::collections::HashMap::new(),
                probe: None,
                instance: "api-tests".to_owned(),
                global_state: engine.status().trading_state,
            },
            &TaskTracker::new(),
            cancel.child_token(),
        )
        .await
        .expect("alerting starts");
        // The admin the tests act as: tokens act only for users that exist.
        engine
            .users
            .create(ordermon_application::CreateUser {
                id: ordermon_domain::ids::UserId::new("root").expect("id"),
                name: "Root".into(),
                status: ordermon_domain::user::UserStatus::Active,
                role: Role::Admin,
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await
            .expect("the admin user");
        let auth = AuthConfig::new(secret.clone());
        let state = ApiState {
            engine: engine.clone(),
            auth: Arc::new(auth.clone()),
            access: Arc::new(ordermon_application::access::UserAccess::new(
                engine.persistence().users.clone(),
                Duration::ZERO,
            )),
            render_metrics: Some(Arc::new(|| FIXED_METRICS.to_owned())),
            started_at: chrono::Utc::now(),
            clock: Arc::new(SystemClock),
            limits: HttpLimits::default(),
            health: health.into(),
            events,
            dead_letters: Some(Arc::new(DeadLetterAdmin {
                letters: DeadLetters::new(bus),
                default_group: "api-tests".to_owned(),
            })),
            status: Arc::new([]),
            alerting: Some(alerting),
            bars: Some(Arc::new(
                ordermon_application::bar_history::BarHistory::new(
                    engine.persistence().bars.clone(),
                    None,
                    engine.instruments.catalog(),
                    Arc::new(SystemClock),
                ),
            )),
            sign_in: sign_in.then(|| {
                Arc::new(SignInService::new(
                    engine.persistence(),
                    Arc::new(SystemClock),
                    SignInConfig::default(),
                ))
            }),
            strategy_health: None,
            streams: Arc::new(ordermon_http::routes::stream::StreamSlots::new(2, 10_000)),
            request_limits: request_limits
                .map(|c| Arc::new(ordermon_application::request_limits::RequestLimits::new(c))),
            verified_tokens: Arc::default(),
            forwarder: None,
        };
        Self {
            app: router(state),
            engine,
            secret,
            auth,
            cancel,
        }
    }

    pub fn token(&self, sub: &str, role: Role) -> String {
        mint_token(&self.auth, sub, role, Duration::from_secs(600)).expect("token")
    }

    pub fn admin(&self) -> String {
        self.token("root", Role::Admin)
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// A JSON call (`body` is sent as application/json when given).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    /// Creates a user with a role and returns its token.
    pub async fn user(&self, id: &str, role: Role) -> String {
        let r = self
            .post(
                "/api/v1/users",
                &self.admin(),
                json!({"id": id, "name": id, "role": role.as_str()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        self.token(id, role)
    }

    pub async fn fund(&self, id: &str, amount: &str) {
        let r = self
            .post(
                &format!("/api/v1/users/{id}/cash"),
                &self.admin(),
                json!({"currency": "USD", "amount": amount, "reason": "initial deposit"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    pub async fn instrument(&self, id: &str) {
        let r = self
            .post(
                "/api/v1/instruments",
                &self.admin(),
                json!({"id": id, "quote_currency": "USD", "tick_size": "0.01",
                       "lot_size": "1", "min_quantity": "1"}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }

    /// A funded trader `alice` and the instrument `ACME.SIM`; returns alice's token.
    pub async fn alice(&self) -> String {
        let t = self.user("alice", Role::Trader).await;
        self.fund("alice", "10000").await;
        self.instrument("ACME.SIM").await;
        t
    }

    /// Every order of every user.
    pub async fn order_count(&self) -> usize {
        self.engine
            .orders
            .list(&OrderQuery {
                limit: 10_000,
                ..OrderQuery::default()
            })
            .await
            .expect("list")
            .len()
    }

    /// One balance figure of a user's USD account.
    pub async fn usd(&self, user: &str, field: &str) -> Decimal {
        let r = self
            .get(&format!("/api/v1/account?user_id={user}"), &self.admin())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let balances = r.body["balances"].as_array().cloned().unwrap_or_default();
        let usd = balances
            .iter()
            .find(|b| b["currency"] == "USD")
            .cloned()
            .unwrap_or(Value::Null);
        dec(&usd[field])
    }
}

/// A decimal carried as a JSON string.
pub fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).expect("decimal")
}

pub fn limit_buy(cid: &str, qty: &str, price: &str) -> Value {
    json!({"client_order_id": cid, "instrument_id": "ACME.SIM", "side": "buy",
           "type": "limit", "quantity": qty, "price": price, "time_in_force": "gtc"})
}

/// An execution report body.
pub fn report(order_id: &str, user: &str, kind: Value) -> Value {
    let mut v = json!({"order_id": order_id, "user_id": user, "ts_event": chrono::Utc::now()});
    if let (Some(obj), Some(k)) = (v.as_object_mut(), kind.as_object()) {
        for (key, val) in k {
            obj.insert(key.clone(), val.clone());
        }
    }
    v
}

/// Unpadded base64url, for hand-built tokens.
pub fn b64url(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn assert_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(
        r.content_type(),
        "application/problem+json",
        "body: {}",
        r.text
    );
    assert_eq!(r.body["code"], code, "body: {}", r.text);
    assert_eq!(r.body["status"], status);
    assert!(
        r.body["type"].is_string() && r.body["title"].is_string() && r.body["detail"].is_string()
    );
}
