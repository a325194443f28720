//! Password sign-in: login, refresh, logout, the caller's identity, and an
//! admin setting a user's password.
//!
//! Login and refresh answer an access token (the usual HS256 JWT, with the
//! session in `sid`, valid `auth.access_ttl`) and a refresh token, with
//! `Cache-Control: no-store`. Sign-in attempts are limited per account and
//! per client address — the TCP peer's address; `X-Forwarded-For` is not
//! trusted, so behind a proxy every client shares the proxy's budget. When
//! the server runs without a peer address (tests calling the router
//! directly), all attempts share one fixed address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordermon_application::AppError;
use ordermon_application::sign_in::{SignInService, SignedIn};
use ordermon_domain::ids::UserId;
use secrecy::ExposeSecret as _;

use super::Admin;
use crate::ApiState;
use crate::auth::{Caller, mint_session_token};
use crate::dto::{LoginRequest, MeView, RefreshRequest, SetPasswordRequest, TokenResponse};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// The address attempts are counted against when the connection's is unknown.
const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The TCP peer's address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The sign-in service, or 503 when this server runs without it.
fn service(state: &ApiState) -> Result<&Arc<SignInService>, ApiError> {
    state.sign_in.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "password sign-in is not enabled on this server",
        )
    })
}

/// The token response of a sign-in or refresh, not to be cached.
fn tokens(state: &ApiState, s: SignedIn) -> Result<Response, ApiError> {
    let access = mint_session_token(&state.auth, &s.user_id, s.role, s.session_id, s.access_ttl)
        .map_err(|e| ApiError::internal(&format!("minting an access token: {e}")))?;
    let refresh_left = (s.refresh_expires_at - state.clock.now()).num_seconds();
    let body = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: s.access_ttl.as_secs(),
        refresh_token: s.refresh_token.expose().to_owned(),
        refresh_expires_in: u64::try_from(refresh_left).unwrap_or(0),
        user: MeView {
            id: s.user_id,
            name: s.name,
            role: s.role,
        },
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Signs in with a user id and password (anyone).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in; `Cache-Control: no-store`", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: unknown or disabled user, no password set, or a wrong password (one answer for all)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many attempts for the account or the address; see `Retry-After` (seconds)",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "password sign-in is not enabled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<ApiState>,
    PeerIp(peer): PeerIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let sign_in = service(&state)?;
    let signed = sign_in
        .login(
            &body.user_id,
            body.password.expose_secret(),
            peer.unwrap_or(UNKNOWN_PEER),
        )
        .await?;
    tokens(&state, signed)
}

/// Exchanges a refresh token for new tokens (anyone holding one). Each refresh
/// token is good once: presenting a used one again revokes its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "new access and refresh tokens; `Cache-Control: no-store`", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`: malformed, unknown, expired, revoked or already used",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "password sign-in is not enabled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let sign_in = service(&state)?;
    let signed = sign_in.refresh(body.refresh_token.expose_secret()).await?;
    tokens(&state, signed)
}

/// Signs the caller's session out: its refresh token stops working, and its
/// access tokens at once on this instance (on others when they expire). A
/// token without a session (`monitor-server token`) has nothing to sign out.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "signed out"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "password sign-in is not enabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<ApiState>, caller: Caller) -> ApiResult<StatusCode> {
    let sign_in = service(&state)?;
    if let Some(session) = caller.session {
        sign_in.logout(session).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who the bearer token speaks for: its user id, the user's name, and the
/// role the token acts with (any valid token).
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses(
        (status = 200, body = MeView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn me(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<MeView>> {
    let name = match state.engine.users.get(&caller.user_id).await {
        Ok(user) => user.name,
        // A machine token may name no stored user.
        Err(AppError::NotFound(_)) => caller.user_id.to_string(),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(MeView {
        id: caller.user_id,
        name,
        role: caller.role,
    }))
}

/// Sets a user's password (admin); signs every session of that user out.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = String, Path)),
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "set; the user's sessions are revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the password is not 10 to 1024 characters", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "password sign-in is not enabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn set_password(
    State(state): State<ApiState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let sign_in = service(&state)?;
    let id = UserId::new(id).map_err(|_| ApiError::not_found("user"))?;
    sign_in
        .set_password(&id, body.password.expose_secret())
        .await?;
    tracing::info!(user_id = %id, by = %admin.user_id, "password set by an admin");
    Ok(StatusCode::NO_CONTENT)
}
