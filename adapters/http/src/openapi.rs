//! The OpenAPI 3 document, generated from the handlers' annotations and the
//! DTOs' schemas, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod responses;

use responses::ErrorResponses;

use crate::routes::{
    account, admin, alerts, auth, events, health, market, orders, strategies, stream, users,
};

/// Adds the bearer JWT security scheme.
#[derive(Debug, Clone, Copy)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT with claims sub (user id), role (admin|trader|viewer), exp; \
                         access tokens from POST /api/v1/auth/login also carry sid (the session)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API document.
#[derive(Debug, Clone, Copy, OpenApi)]
#[openapi(
    info(
        title = "ordermon API",
        description = "Order monitoring and management for algorithmic trading. \
            Decimals are JSON strings in both directions; errors are RFC 9457 \
            application/problem+json with a machine-readable `code`.",
    ),
    paths(
        health::live, health::ready, health::metrics,
        admin::status, admin::execution, admin::kill_switch,
        admin::dead_letters, admin::replay_dead_letters,
        users::create, users::list, users::get, users::patch, users::revoke_tokens,
        users::cash, users::logs,
        auth::login, auth::refresh, auth::logout, auth::me, auth::set_password,
        strategies::create, strategies::list, strategies::types, strategies::get,
        strategies::patch, strategies::delete,
        account::account, account::portfolio, account::positions, account::fills,
        market::list, market::get, market::upsert, market::quote, market::bars,
        orders::submit, orders::batch, orders::list, orders::get, orders::by_client_id,
        orders::modify, orders::cancel, orders::cancel_all, orders::events,
        events::feed, stream::stream,
        alerts::list, alerts::get, alerts::ack, alerts::resolve,
        alerts::list_silences, alerts::create_silence, alerts::get_silence, alerts::expire_silence,
        alerts::rules, alerts::set_override, alerts::delete_override,
    ),
    modifiers(&BearerAuth, &ErrorResponses),
    tags(
        (name = "orders", description = "submit, query, modify and cancel orders"),
        (name = "account", description = "balances, positions, portfolio, fills"),
        (name = "market", description = "instruments, quotes and bars"),
        (name = "auth", description = "password sign-in: login, refresh, logout, who am I"),
        (name = "users", description = "user administration, passwords and per-user logs"),
        (name = "strategies", description = "strategy configuration"),
        (name = "alerts", description = "alerts, silences, alert rules and per-user overrides"),
        (name = "events", description = "event feed and live stream"),
        (name = "admin", description = "status, kill switch and dead letters"),
        (name = "health", description = "liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Serves the document.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
