//! Authentication and roles: HS256 JWTs with `sub` (a user id), `role` and
//! `exp` — plus `sid`, the sign-in session, on the short-lived access tokens
//! password sign-in hands out — the [`Caller`] extractor, and the checks
//! handlers use for roles and tenant isolation.
//!
//! A valid signature is not enough: the database is authoritative. The
//! token's user must exist and be active, the token must be issued after the
//! user's last token revocation, and it acts with the lesser of its own role
//! and the user's ([`ordermon_application::access::UserAccess`], which keeps
//! each answer a few seconds). A token whose sign-in session was revoked on
//! this instance (signed out, new password, reused refresh token) is refused
//! at once.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ordermon_application::Scope;
use ordermon_application::access::AccessError;
use ordermon_domain::ids::{SessionId, UserId};
use ordermon_domain::user::{Role, TokenRefusal};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::error::ApiError;

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The HS256 shared secret.
    pub jwt_secret: SecretString,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_secs: u64,
    /// The `iss` tokens carry; when set, minted tokens carry it and tokens
    /// without it (or with another) are refused.
    pub issuer: Option<String>,
    /// The `aud` tokens carry; when set, as for `issuer`.
    pub audience: Option<String>,
}

impl AuthConfig {
    /// A configuration with `secret`, no leeway and no `iss`/`aud`.
    #[must_use]
    pub fn new(secret: SecretString) -> Self {
        Self {
            jwt_secret: secret,
            leeway_secs: 0,
            issuer: None,
            audience: None,
        }
    }
}

/// Why a token could not be minted or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (or `?token=` where allowed).
    #[error("missing bearer token")]
    Missing,
    /// The token is expired.
    #[error("token expired")]
    Expired,
    /// The token is malformed, has a bad signature, a wrong algorithm or
    /// lacks a required claim.
    #[error("invalid token")]
    Invalid,
    /// `sub` is not a valid user id.
    #[error("token subject is not a valid user id")]
    BadSubject,
    /// The token's session was signed out (or its password changed).
    #[error("token revoked")]
    Revoked,
    /// The token's user is unknown or disabled, or the user's tokens were
    /// revoked after it was issued.
    #[error("token refused: {0}")]
    Refused(TokenRefusal),
    /// The secret is empty: no token can be trusted or minted.
    #[error("the JWT secret is not configured")]
    NoSecret,
    /// Encoding failed.
    #[error("could not encode the token")]
    Encode,
}

/// The claims ordermon reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    exp: u64,
    #[serde(default)]
    iat: u64,
    /// The sign-in session of an access token (absent on machine tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The issuer, when the deployment names one (written only: on reading,
    /// jsonwebtoken's validation checks it).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// The audience, when the deployment names one (written only, as `iss`).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Mints an HS256 token for `sub` with `role`, valid for `ttl`, carrying the
/// configured `iss` and `aud`.
///
/// # Errors
/// [`AuthError::BadSubject`] when `sub` is not a valid user id,
/// [`AuthError::NoSecret`] for an empty secret, [`AuthError::Encode`] otherwise.
pub fn mint_token(
    config: &AuthConfig,
    sub: &str,
    role: Role,
    ttl: Duration,
) -> Result<String, AuthError> {
    UserId::new(sub).map_err(|_| AuthError::BadSubject)?;
    encode(config, sub, role, None, ttl)
}

/// Mints an access token of sign-in session `session`: as [`mint_token`],
/// with the `sid` claim that lets signing out revoke it.
///
/// # Errors
/// [`AuthError::NoSecret`] for an empty secret, [`AuthError::Encode`] otherwise.
pub fn mint_session_token(
    config: &AuthConfig,
    sub: &UserId,
    role: Role,
    session: SessionId,
    ttl: Duration,
) -> Result<String, AuthError> {
    encode(config, sub.as_str(), role, Some(session), ttl)
}

fn encode(
    config: &AuthConfig,
    sub: &str,
    role: Role,
    sid: Option<SessionId>,
    ttl: Duration,
) -> Result<String, AuthError> {
    let key = config.jwt_secret.expose_secret();
    if key.is_empty() {
        return Err(AuthError::NoSecret);
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp: now.saturating_add(ttl.as_secs()),
        iat: now,
        sid: sid.map(|s| s.to_string()),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|_| AuthError::Encode)
}

/// Verifies a token and returns who it names.
///
/// # Errors
/// See [`AuthError`].
pub fn verify_token(config: &AuthConfig, token: &str) -> Result<Caller, AuthError> {
    verify_with_expiry(config, token).map(|(caller, _)| caller)
}

/// [`verify_token`], with the moment the token stops being accepted (its
/// `exp` plus the configured leeway), for sessions that outlive a request.
///
/// # Errors
/// See [`AuthError`].
pub fn verify_with_expiry(
    config: &AuthConfig,
    token: &str,
) -> Result<(Caller, chrono::DateTime<chrono::Utc>), AuthError> {
    let key = config.jwt_secret.expose_secret();
    if key.is_empty() {
        return Err(AuthError::NoSecret);
    }
    // HS256 only: `alg: none` and every other algorithm are refused.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    // A token not valid yet is refused; so is an `nbf` (or `exp`) that is not a
    // number, rather than taken as absent (jsonwebtoken ≥ 10.3).
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = &config.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    if let Some(aud) = &config.audience {
        validation.set_audience(&[aud]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid,
    })?;
    let user_id = UserId::new(data.claims.sub).map_err(|_| AuthError::BadSubject)?;
    let session = data
        .claims
        .sid
        .map(|s| s.parse::<SessionId>())
        .transpose()
        .map_err(|_| AuthError::Invalid)?;
    // A token issued in the future would outlive any revocation.
    let issued_at = i64::try_from(data.claims.iat).map_err(|_| AuthError::Invalid)?;
    let now = chrono::Utc::now().timestamp();
    if issued_at > now.saturating_add(i64::try_from(config.leeway_secs).unwrap_or(i64::MAX)) {
        return Err(AuthError::Invalid);
    }
    let until = i64::try_from(data.claims.exp.saturating_add(config.leeway_secs))
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    Ok((
        Caller {
            user_id,
            role: data.claims.role,
            session,
            issued_at,
        },
        until,
    ))
}

/// The bearer token of a request's `Authorization` header.
#[must_use]
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::unauthorized(e.to_string())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject.
    pub user_id: UserId,
    /// The token's role.
    pub role: Role,
    /// The sign-in session of an access token (`None` for machine tokens).
    pub session: Option<SessionId>,
    /// When the token was issued (`iat`, Unix seconds; 0 when it has none).
    pub issued_at: i64,
}

impl Caller {
    /// True for admins.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// What the caller may see: everything for admins, their own data otherwise.
    #[must_use]
    pub fn scope(&self) -> Scope {
        if self.is_admin() {
            Scope::All
        } else {
            Scope::User(self.user_id.clone())
        }
    }

    /// Admins only.
    ///
    /// # Errors
    /// 403 for other roles.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this requires the admin role"))
        }
    }

    /// Admins and traders (viewers only read).
    ///
    /// # Errors
    /// 403 for viewers.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Trader => Ok(()),
            Role::Viewer => Err(ApiError::forbidden("viewers may only read")),
        }
    }

    /// The user a request acts on: `requested` (`?user_id=`) for admins, the
    /// caller otherwise. A non-admin naming someone else gets 404, as for any
    /// data that is not theirs.
    ///
    /// # Errors
    /// 422 for an invalid id, 404 for another user's id.
    pub fn target(&self, requested: Option<&str>) -> Result<UserId, ApiError> {
        let Some(raw) = requested.filter(|s| !s.is_empty()) else {
            return Ok(self.user_id.clone());
        };
        let id = UserId::new(raw).map_err(|e| ApiError::field("user_id", e.to_string()))?;
        if self.is_admin() || id == self.user_id {
            Ok(id)
        } else {
            Err(ApiError::not_found("user"))
        }
    }

    /// Like [`Caller::target`], but an admin naming nobody means every user.
    ///
    /// # Errors
    /// As [`Caller::target`].
    pub fn target_scope(&self, requested: Option<&str>) -> Result<Scope, ApiError> {
        if self.is_admin() && requested.is_none_or(str::is_empty) {
            return Ok(Scope::All);
        }
        self.target(requested).map(Scope::User)
    }

    /// Records the caller on the request's span so logs can be routed per user.
    fn record(&self) {
        let span = tracing::Span::current();
        span.record("user_id", self.user_id.as_str());
        span.record("role", self.role.as_str());
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers, None).await
    }
}

/// 401 for an access token whose session was revoked on this instance.
fn refuse_revoked(state: &ApiState, caller: &Caller) -> Result<(), AuthError> {
    match (caller.session, &state.sign_in) {
        (Some(sid), Some(sign_in)) if sign_in.is_revoked(sid) => Err(AuthError::Revoked),
        _ => Ok(()),
    }
}

/// Authenticates from the bearer header or, for clients that cannot set
/// headers (browsers opening a WebSocket), a `token` query value.
///
/// # Errors
/// 401 as for [`Caller`].
pub async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Caller, ApiError> {
    authenticate_until(state, headers, query_token)
        .await
        .map(|(caller, _)| caller)
}

/// [`authenticate`], with the moment the token stops being accepted (for the
/// live stream, which closes then).
///
/// # Errors
/// 401 as for [`Caller`].
pub async fn authenticate_until(
    state: &ApiState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(Caller, chrono::DateTime<chrono::Utc>), ApiError> {
    let token = bearer(headers)
        .or(query_token.filter(|t| !t.is_empty()))
        .ok_or(AuthError::Missing)?;
    let (mut caller, until) = state.verified_tokens.verify(&state.auth, token)?;
    refuse_revoked(state, &caller)?;
    if let Some(limits) = &state.request_limits {
        limits
            .check_user(&caller.user_id)
            .map_err(|t| ApiError::throttled(t.retry_after))?;
    }
    caller.role = admit(state, &caller).await?;
    caller.record();
    Ok((caller, until))
}

/// The role the database lets `caller`'s token act with.
async fn admit(state: &ApiState, caller: &Caller) -> Result<Role, ApiError> {
    state
        .access
        .admit(&caller.user_id, caller.issued_at, caller.role)
        .await
        .map_err(|e| match e {
            AccessError::Refused(why) => AuthError::Refused(why).into(),
            AccessError::Store(e) => ordermon_application::AppError::from(e).into(),
        })
}

/// Whether `caller` may no longer act: its sign-in session was revoked on
/// this instance, or the database no longer admits its token (user disabled
/// or removed, tokens revoked) or admits it with another role. A store that
/// cannot answer is not a refusal.
pub async fn is_revoked(state: &ApiState, caller: &Caller) -> bool {
    if refuse_revoked(state, caller).is_err() {
        return true;
    }
    match state
        .access
        .admit(&caller.user_id, caller.issued_at, caller.role)
        .await
    {
        Ok(role) => role != caller.role,
        Err(AccessError::Refused(_)) => true,
        Err(AccessError::Store(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig::new(SecretString::from("test-secret"))
    }

    #[test]
    fn minted_tokens_verify() -> Result<(), AuthError> {
        let c = config();
        let t = mint_token(&c, "alice", Role::Trader, Duration::from_secs(60))?;
        let caller = verify_token(&c, &t)?;
        assert_eq!(caller.user_id.as_str(), "alice");
        assert_eq!(caller.role, Role::Trader);
        assert_eq!(caller.session, None);
        Ok(())
    }

    #[test]
    fn session_tokens_carry_their_session() -> Result<(), AuthError> {
        let c = config();
        let sid = SessionId::generate();
        let alice = UserId::new("alice").map_err(|_| AuthError::BadSubject)?;
        let t = mint_session_token(&c, &alice, Role::Viewer, sid, Duration::from_secs(60))?;
        let caller = verify_token(&c, &t)?;
        assert_eq!(caller.session, Some(sid));
        assert_eq!(caller.role, Role::Viewer);
        Ok(())
    }

    #[test]
    fn refuses_bad_tokens() -> Result<(), AuthError> {
        let c = config();
        assert_eq!(
            mint_token(&c, "bad id!", Role::Admin, Duration::from_secs(60)),
            Err(AuthError::BadSubject)
        );
        let other = AuthConfig::new(SecretString::from("other"));
        let forged = mint_token(&other, "alice", Role::Admin, Duration::from_secs(60))?;
        assert_eq!(verify_token(&c, &forged), Err(AuthError::Invalid));
        assert_eq!(verify_token(&c, "not.a.jwt"), Err(AuthError::Invalid));
        let empty = AuthConfig::new(SecretString::from(""));
        assert_eq!(verify_token(&empty, &forged), Err(AuthError::NoSecret));
        Ok(())
    }

    /// A token signed with the test secret over raw `claims`.
    fn signed(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"test-secret"),
        )
        .unwrap_or_default()
    }

    #[test]
    fn time_claims_of_the_wrong_type_or_not_yet_valid_are_refused() {
        let c = config();
        let now = chrono::Utc::now().timestamp();
        let exp = now + 600;
        let ok = signed(
            &serde_json::json!({"sub": "alice", "role": "admin", "exp": exp, "nbf": now - 5}),
        );
        assert!(verify_token(&c, &ok).is_ok());
        for claims in [
            // Not valid before an hour from now.
            serde_json::json!({"sub": "alice", "role": "admin", "exp": exp, "nbf": now + 3600}),
            // `nbf` as a string: type confusion must not make it "absent".
            serde_json::json!({"sub": "alice", "role": "admin", "exp": exp, "nbf": (now + 3600).to_string()}),
            serde_json::json!({"sub": "alice", "role": "admin", "exp": exp.to_string()}),
            serde_json::json!({"sub": "alice", "role": "admin"}),
        ] {
            assert_eq!(
                verify_token(&c, &signed(&claims)),
                Err(AuthError::Invalid),
                "{claims}"
            );
        }
    }

    #[test]
    fn targets_respect_tenancy() {
        let trader = Caller {
            user_id: UserId::new("alice").unwrap_or_else(|_| unreachable!()),
            role: Role::Trader,
            session: None,
            issued_at: 0,
        };
        assert!(trader.target(Some("bob")).is_err());
        assert!(trader.target(Some("alice")).is_ok());
        assert!(matches!(trader.target_scope(None), Ok(Scope::User(_))));
        let admin = Caller {
            role: Role::Admin,
            ..trader
        };
        assert!(matches!(admin.target_scope(None), Ok(Scope::All)));
        assert!(admin.target(Some("bob")).is_ok());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() -> Result<(), AuthError> {
        let plain = config();
        let named = AuthConfig {
            issuer: Some("ordermon-prod".into()),
            audience: Some("ordermon-api".into()),
            ..config()
        };
        let good = mint_token(&named, "alice", Role::Trader, Duration::from_secs(60))?;
        assert!(verify_token(&named, &good).is_ok());
        // A token without iss/aud is refused where they are required.
        let bare = mint_token(&plain, "alice", Role::Trader, Duration::from_secs(60))?;
        assert_eq!(verify_token(&named, &bare), Err(AuthError::Invalid));
        // Another issuer, another audience: refused.
        for other in [
            AuthConfig {
                issuer: Some("ordermon-staging".into()),
                ..named.clone()
            },
            AuthConfig {
                audience: Some("someone-else".into()),
                ..named.clone()
            },
        ] {
            let t = mint_token(&other, "alice", Role::Trader, Duration::from_secs(60))?;
            assert_eq!(verify_token(&named, &t), Err(AuthError::Invalid));
        }
        Ok(())
    }

    #[test]
    fn tokens_issued_in_the_future_are_refused() {
        let c = config();
        let now = chrono::Utc::now().timestamp();
        let future = signed(
            &serde_json::json!({"sub": "alice", "role": "admin", "exp": now + 7200, "iat": now + 3600}),
        );
        assert_eq!(verify_token(&c, &future), Err(AuthError::Invalid));
        let past = signed(
            &serde_json::json!({"sub": "alice", "role": "admin", "exp": now + 7200, "iat": now - 10}),
        );
        assert_eq!(verify_token(&c, &past).map(|c| c.issued_at), Ok(now - 10));
    }
}
