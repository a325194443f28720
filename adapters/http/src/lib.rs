//! ordermon's HTTP adapter: the axum REST API of SPEC §4, the WebSocket stream of
//! live events, problem+json errors, JWT roles with tenant isolation, Prometheus
//! passthrough and the OpenAPI document generated from the handlers.
//!
//! [`router`] returns the whole application with its middleware, ready to serve:
//!
//! ```no_run
//! # async fn run(state: ordermon_http::ApiState) -> std::io::Result<()> {
//! let app = ordermon_http::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod auth;
pub mod dashboard;
pub mod dto;
pub mod error;
pub mod extract;
pub mod forward;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod verified_tokens;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use chrono::{DateTime, Utc};
use ordermon_application::Engine;
use ordermon_application::alerting::AlertingService;
use ordermon_application::bar_history::BarHistory;
use ordermon_application::consume::DeadLetters;
use ordermon_application::instance_consumer::EventFanout;
use ordermon_application::sign_in::SignInService;
use ordermon_application::strategy_health::StrategyHealth;

pub use auth::{AuthConfig, AuthError, Caller, mint_session_token, mint_token};
pub use error::{ApiError, Problem};

/// Everything the handlers share. Cloned for every request (axum's `State`):
/// its fields are shared pointers, so a clone allocates nothing.
#[derive(Clone)]
pub struct ApiState {
    /// The application engine.
    pub engine: Arc<Engine>,
    /// Token verification settings.
    pub auth: Arc<AuthConfig>,
    /// The database's word on each token's user (exists, active, not
    /// revoked, role).
    pub access: Arc<ordermon_application::access::UserAccess>,
    /// Renders the Prometheus text exposition (the binary owns the recorder).
    /// `None`: metrics have a listener of their own ([`metrics_router`]) and
    /// `/metrics` here answers 404 like an unknown path.
    pub render_metrics: Option<RenderMetrics>,
    /// When the server started (for `/status`).
    pub started_at: DateTime<Utc>,
    /// The application's clock: what handlers stamp and compare with
    /// (token expiry alone is checked against the system's, as JWTs are).
    pub clock: Arc<dyn ordermon_domain::ports::Clock>,
    /// Request limits.
    pub limits: HttpLimits,
    /// Extra components checked by `/health/ready` (the store is always checked).
    pub health: Arc<[Arc<dyn HealthCheck>]>,
    /// The live events WebSocket streams read (fed by this instance's bus consumer).
    pub events: Arc<EventFanout>,
    /// Dead-letter administration, when the server runs a bus.
    pub dead_letters: Option<Arc<DeadLetterAdmin>>,
    /// Extra sections of `/status` (relay, consumers, cache, monitoring…).
    pub status: Arc<[Arc<dyn StatusSection>]>,
    /// The alerting service (`None`: the alert routes answer 503).
    pub alerting: Option<Arc<AlertingService>>,
    /// Historical bars (`None`: the bars route answers 503).
    pub bars: Option<Arc<BarHistory>>,
    /// Password sign-in (`None`: the `/api/v1/auth/*` routes and setting a
    /// password answer 503; bearer tokens still work).
    pub sign_in: Option<Arc<SignInService>>,
    /// Restarts and last errors of strategies (`None`: shown as zero).
    pub strategy_health: Option<Arc<StrategyHealth>>,
    /// Caps on open live streams, per user and in all.
    pub streams: Arc<routes::stream::StreamSlots>,
    /// Per-user and per-address request limits (`None`: unlimited).
    pub request_limits: Option<Arc<ordermon_application::request_limits::RequestLimits>>,
    /// Bearer tokens already verified under `auth` (start with an empty one).
    pub verified_tokens: Arc<verified_tokens::VerifiedTokens>,
    /// Forwards requests for users another instance owns to it (`None`:
    /// they are answered 503 `owned_elsewhere`).
    pub forwarder: Option<Arc<forward::Forwarder>>,
}

/// Renders the Prometheus text exposition.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What the dead-letter endpoints work on.
#[derive(Debug, Clone)]
pub struct DeadLetterAdmin {
    /// The use cases over the bus.
    pub letters: DeadLetters,
    /// The group listed and replayed when a request names none (this
    /// instance's own consumer group).
    pub default_group: String,
}

/// A named section of `/status`, rendered as JSON when asked for.
pub trait StatusSection: Send + Sync {
    /// The section's key in the report.
    fn name(&self) -> &'static str;
    /// The section's current figures.
    fn report(&self) -> serde_json::Value;
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("engine", &self.engine)
            .field("auth", &self.auth)
            .field("started_at", &self.started_at)
            .field("limits", &self.limits)
            .field(
                "health",
                &self.health.iter().map(|h| h.name()).collect::<Vec<_>>(),
            )
            .field(
                "status",
                &self.status.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("sign_in", &self.sign_in.is_some())
            .finish_non_exhaustive()
    }
}

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body accepted (default 1 MiB); larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Time a request may take before it is answered 408 (default 30 s).
    pub request_timeout_secs: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
        }
    }
}

/// An extra component whose health `/health/ready` reports (cache, bus, feed…).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The component's name in the readiness report.
    fn name(&self) -> &'static str;
    /// Whether the server is unready without it. A non-critical component that
    /// fails is reported `degraded` and readiness stays 200 (the cache: without
    /// Redis reads are slower, never wrong).
    fn critical(&self) -> bool {
        true
    }
    /// Checks the component.
    ///
    /// # Errors
    /// A short, non-secret description of what is wrong.
    async fn check(&self) -> Result<(), String>;
}

/// Builds the full application: every route, the fallbacks and the middleware.
pub fn router(state: ApiState) -> Router {
    let limits = state.limits;
    let by_address = state
        .request_limits
        .clone()
        .filter(|l| l.limits_addresses());
    let forwarder = state.forwarder.clone();
    let mut routes =
        routes::routes().route("/api/v1/openapi.json", axum::routing::get(openapi::serve));
    // Only with users shared between instances.
    if let Some(f) = forwarder {
        routes = routes.layer(axum::middleware::from_fn_with_state(
            f,
            forward::forward_owned_elsewhere,
        ));
    }
    // Only when addresses are limited: otherwise no request pays for it.
    if let Some(l) = by_address {
        routes = routes.layer(axum::middleware::from_fn_with_state(
            l,
            middleware::throttle_addresses,
        ));
    }
    middleware::apply(routes.with_state(state), limits)
}

/// `GET /metrics` and nothing else (any other path: 404; another method: 405),
/// for a listener of its own (`http.metrics_addr`), which is then all a
/// scraper needs to reach. No API middleware: no token, no request metrics of
/// its own, no rate limit.
pub fn metrics_router(render: RenderMetrics) -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { routes::health::exposition(render()) }
        }),
    )
}
