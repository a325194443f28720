//! Errors as RFC 9457 problem details: every failed request is answered with an
//! `application/problem+json` body carrying a machine-readable `code`.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordermon_application::sign_in::SignInError;
use ordermon_application::{AppError, FieldError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

tokio::task_local! {
    /// The trace id of the request being served (set by the middleware), for
    /// its problem bodies.
    pub(crate) static TRACE_ID: Option<std::sync::Arc<str>>;
}

/// The trace id of the request this task serves, if it has one.
fn request_trace_id() -> Option<String> {
    TRACE_ID
        .try_with(|t| t.as_deref().map(str::to_owned))
        .ok()
        .flatten()
}

/// Put on a 503 `owned_elsewhere` answer by [`ApiError`]: who owns the user
/// (the forwarding layer reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedElsewhere {
    /// The owning instance's holder id.
    pub owner: String,
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemField {
    /// The field's JSON path (`quantity`, `orders[2].price`, `body`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:ordermon:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Machine-readable code (`validation_failed`, `unauthorized`, …).
    pub code: String,
    /// Per-field errors, for validation failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// The W3C trace id of the request (32 hex digits): the one its
    /// `traceparent` header named, or the trace the server began for it when
    /// traces are recorded. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// An error a handler answers with; renders as problem+json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: Cow<'static, str>,
    /// Human-readable detail (never internal error text).
    pub detail: String,
    /// Per-field errors.
    pub errors: Vec<ProblemField>,
    /// Seconds to send as `Retry-After` (429s, 503 `owned_elsewhere`).
    pub retry_after_secs: Option<u64>,
    /// For 503 `owned_elsewhere`: the instance that owns the request's user
    /// (its holder id), to which the request can be forwarded.
    pub owner: Option<String>,
}

impl ApiError {
    /// An error with a status, code and detail.
    #[must_use]
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            owner: None,
        }
    }

    /// 400 `bad_request`: the request could not be read.
    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403 `forbidden`.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 422 `validation_failed` with per-field errors.
    #[must_use]
    pub fn validation(errors: Vec<ProblemField>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: Cow::Borrowed("validation_failed"),
            detail,
            errors,
            retry_after_secs: None,
            owner: None,
        }
    }

    /// 429 `rate_limited`: too many requests; try again after `retry_after`
    /// (sent as `Retry-After`, whole seconds, at least 1).
    #[must_use]
    pub fn throttled(retry_after: std::time::Duration) -> Self {
        let secs = ordermon_application::sign_in::retry_after_secs(retry_after);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; try again in {secs} s"),
        );
        e.retry_after_secs = Some(secs);
        e
    }

    /// 422 for one field.
    #[must_use]
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![ProblemField {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// 500 `internal`: logs `cause` once and tells the client nothing more.
    #[must_use]
    pub fn internal(cause: &str) -> Self {
        tracing::error!(error = %cause, "unexpected error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; it has been logged",
        )
    }

    /// The problem body of this error.
    #[must_use]
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:ordermon:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
            trace_id: request_trace_id(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// Renders a problem body with its media type.
#[must_use]
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = problem_response(self.status, &self.problem());
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(owner) = self.owner {
            response.extensions_mut().insert(OwnedElsewhere { owner });
        }
        response
    }
}

fn fields(errors: Vec<FieldError>) -> Vec<ProblemField> {
    errors
        .into_iter()
        .map(|e| ProblemField {
            field: e.field,
            message: e.message,
        })
        .collect()
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(errors) => Self::validation(fields(errors)),
            AppError::NotFound(what) => Self::not_found(what),
            AppError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            AppError::Forbidden => Self::forbidden("your role does not allow this"),
            AppError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "backend unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a required backend is unavailable; retry later",
                )
            }
            AppError::OwnedElsewhere { user, owner } => Self {
                retry_after_secs: Some(1),
                owner: owner.clone(),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "owned_elsewhere",
                    match owner {
                        Some(owner) => format!(
                            "user {user} is owned by instance {owner}; send its requests there"
                        ),
                        None => format!(
                            "user {user} is not owned by this instance (it is moving); retry shortly or send it to its owner"
                        ),
                    },
                )
            },
            AppError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid user id or password",
            ),
            SignInError::InvalidRefreshToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "the refresh token is invalid, expired or revoked; sign in again",
            ),
            SignInError::RateLimited { retry_after } => {
                let mut limited =
                    Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
                limited.retry_after_secs =
                    Some(ordermon_application::sign_in::retry_after_secs(retry_after));
                limited
            }
            SignInError::Policy(p) => Self::field("password", p.to_string()),
            SignInError::UnknownUser => Self::not_found("user"),
            SignInError::Unavailable(cause) => AppError::Unavailable(cause).into(),
            SignInError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

/// The code used for a bare HTTP status (fallbacks, layers that answer on their own).
#[must_use]
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "internal",
        _ => "http_error",
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_errors_map_to_statuses() {
        let cases = [
            (
                AppError::field("quantity", "must be positive"),
                422,
                "validation_failed",
            ),
            (AppError::NotFound("order"), 404, "not_found"),
            (
                AppError::Conflict {
                    code: "idempotency_mismatch",
                    message: "x".into(),
                },
                409,
                "idempotency_mismatch",
            ),
            (AppError::Forbidden, 403, "forbidden"),
            (AppError::Unavailable("db down".into()), 503, "unavailable"),
            (AppError::Unexpected("secret sql".into()), 500, "internal"),
        ];
        for (app, status, code) in cases {
            let api = ApiError::from(app);
            assert_eq!(api.status.as_u16(), status);
            assert_eq!(api.code, code);
            assert!(!api.detail.contains("secret"));
            assert!(!api.detail.contains("db down"));
        }
    }

    #[test]
    fn sign_in_errors_map_to_statuses_without_secrets() {
        use ordermon_application::sign_in::PasswordPolicyError;
        let cases = [
            (SignInError::InvalidCredentials, 401, "invalid_credentials"),
            (
                SignInError::InvalidRefreshToken,
                401,
                "invalid_refresh_token",
            ),
            (
                SignInError::RateLimited {
                    retry_after: std::time::Duration::from_millis(11_500),
                },
                429,
                "rate_limited",
            ),
            (
                SignInError::Policy(PasswordPolicyError::TooShort { min: 10 }),
                422,
                "validation_failed",
            ),
            (SignInError::UnknownUser, 404, "not_found"),
            (
                SignInError::Unavailable("db down".into()),
                503,
                "unavailable",
            ),
            (
                SignInError::Unexpected("secret sql".into()),
                500,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code.as_ref()), (status, code));
            assert!(!api.detail.contains("secret") && !api.detail.contains("db down"));
        }
        let limited = ApiError::from(SignInError::RateLimited {
            retry_after: std::time::Duration::from_millis(11_500),
        });
        assert!(
            limited.detail.contains("retry after 12 s"),
            "{}",
            limited.detail
        );
    }

    #[test]
    fn problem_body_has_rfc9457_members() {
        let p = ApiError::field("price", "off tick").problem();
        let v = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(v["type"], "urn:ordermon:problem:validation_failed");
        assert_eq!(v["status"], 422);
        assert_eq!(v["title"], "Unprocessable Entity");
        assert_eq!(v["errors"][0]["field"], "price");
    }
}
