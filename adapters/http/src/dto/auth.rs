//! Password sign-in as the API shows it: the login, refresh and new-password
//! bodies, the token response and the caller's identity.
//!
//! Secrets (passwords, refresh and access tokens) are `SecretString`s or
//! print as `[REDACTED]`, and a secret field that is not a JSON string is
//! refused without echoing what was sent (serde's own message would quote a
//! number back).

use ordermon_domain::ids::UserId;
use ordermon_domain::user::Role;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Reads a secret that must be a JSON string, naming no other value in the error.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(SecretString::from(s)),
        _ => Err(serde::de::Error::custom("must be a JSON string")),
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's id.
    #[schema(example = "alice")]
    pub user_id: String,
    /// The user's password.
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last login or refresh (each is good once).
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// `PUT /api/v1/users/{id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password: 10 to 1024 characters.
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 1024)]
    pub password: SecretString,
}

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeView {
    /// The user id.
    #[schema(value_type = String, example = "alice")]
    pub id: UserId,
    /// Display name (the id when no such user is stored, e.g. a machine token's subject).
    pub name: String,
    /// The role the token acts with.
    #[schema(value_type = crate::dto::enums::Role)]
    pub role: Role,
}

/// A successful login or refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token for API calls: an HS256 JWT with `sid` (the session).
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Exchanged at `POST /api/v1/auth/refresh` for new tokens; good once.
    pub refresh_token: String,
    /// Seconds until the session ends (refreshing does not extend it).
    #[schema(example = 43200)]
    pub refresh_expires_in: u64,
    /// Who signed in.
    pub user: MeView,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[REDACTED]")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn secrets_are_read_and_never_printed_or_echoed() {
        let ok: LoginRequest = parse_json(br#"{"user_id":"alice","password":"s3cret-pass"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.password.expose_secret(), "s3cret-pass");
        assert!(!format!("{ok:?}").contains("s3cret-pass"));
        let numeric = parse_json::<LoginRequest>(br#"{"user_id":"alice","password":9876543210}"#)
            .err()
            .unwrap_or_else(|| panic!("a number is refused"));
        assert_eq!(numeric.status.as_u16(), 422);
        assert_eq!(numeric.errors[0].field, "password");
        assert!(!numeric.detail.contains("9876543210"), "{}", numeric.detail);
        let r = TokenResponse {
            access_token: "aaa.bbb.ccc".into(),
            token_type: "Bearer",
            expires_in: 900,
            refresh_token: "sid.secret-value".into(),
            refresh_expires_in: 60,
            user: MeView {
                id: UserId::new("alice").unwrap_or_else(|_| unreachable!()),
                name: "Alice".into(),
                role: Role::Trader,
            },
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("aaa.bbb") && !shown.contains("secret-value"));
    }
}
