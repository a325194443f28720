//! The route table and the pieces every handler shares: role extractors, the
//! `?user_id=` query and the 404/405 fallbacks.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod events;
pub mod health;
pub mod market;
pub mod orders;
pub mod strategies;
pub mod stream;
pub mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post, put};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Every route of the API but the OpenAPI document, which describes them and
/// is added by [`crate::router`] (state not yet attached, no middleware).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/status", get(admin::status))
        .route("/api/v1/users", post(users::create).get(users::list))
        .route("/api/v1/users/{id}", get(users::get).patch(users::patch))
        .route("/api/v1/users/{id}/cash", post(users::cash))
        .route(
            "/api/v1/users/{id}/revoke-tokens",
            post(users::revoke_tokens),
        )
        .route("/api/v1/users/{id}/logs", get(users::logs))
        .route("/api/v1/users/{id}/password", put(auth::set_password))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route(
            "/api/v1/strategies",
            post(strategies::create).get(strategies::list),
        )
        .route("/api/v1/strategies/types", get(strategies::types))
        .route(
            "/api/v1/strategies/{id}",
            get(strategies::get)
                .patch(strategies::patch)
                .delete(strategies::delete),
        )
        .route("/api/v1/account", get(account::account))
        .route("/api/v1/portfolio", get(account::portfolio))
        .route("/api/v1/positions", get(account::positions))
        .route("/api/v1/fills", get(account::fills))
        .route(
            "/api/v1/instruments",
            get(market::list).post(market::upsert),
        )
        .route("/api/v1/instruments/{id}", get(market::get))
        .route("/api/v1/quotes/{instrument}", get(market::quote))
        .route("/api/v1/bars/{instrument}", get(market::bars))
        .route(
            "/api/v1/orders",
            post(orders::submit)
                .get(orders::list)
                .delete(orders::cancel_all),
        )
        .route("/api/v1/orders/batch", post(orders::batch))
        .route(
            "/api/v1/orders/by-client-id/{client_order_id}",
            get(orders::by_client_id),
        )
        .route(
            "/api/v1/orders/{id}",
            get(orders::get).patch(orders::modify),
        )
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/api/v1/orders/{id}/events", get(orders::events))
        .route("/api/v1/executions", post(admin::execution))
        .route("/api/v1/admin/kill-switch", post(admin::kill_switch))
        .route("/api/v1/admin/dead-letters", get(admin::dead_letters))
        .route(
            "/api/v1/admin/dead-letters/replay",
            post(admin::replay_dead_letters),
        )
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::get))
        .route("/api/v1/alerts/{id}/ack", post(alerts::ack))
        .route("/api/v1/alerts/{id}/resolve", post(alerts::resolve))
        .route(
            "/api/v1/silences",
            get(alerts::list_silences).post(alerts::create_silence),
        )
        .route(
            "/api/v1/silences/{id}",
            get(alerts::get_silence).delete(alerts::expire_silence),
        )
        .route("/api/v1/alert-rules", get(alerts::rules))
        .route(
            "/api/v1/alert-rules/{name}/overrides/{user_id}",
            put(alerts::set_override).delete(alerts::delete_override),
        )
        .route("/api/v1/events", get(events::feed))
        .route("/api/v1/stream", get(stream::stream))
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    )
}

/// A caller allowed to write: admin or trader (viewers get 403 before the body is read).
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

impl FromRequestParts<ApiState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_write()?;
        Ok(Self(caller))
    }
}

/// An admin caller (others get 403 before the body is read).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Self(caller))
    }
}

/// `?user_id=`: the user an admin acts on (others may only name themselves).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Admins: act on this user (default: the caller).
    #[param(value_type = Option<crate::dto::formats::UserId>)]
    pub user_id: Option<String>,
}

/// Parses an order id from a path; an id that cannot exist is simply not found (404).
///
/// # Errors
/// 404 `not_found`.
pub fn order_id(raw: &str) -> Result<ordermon_domain::ids::OrderId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("order"))
}
