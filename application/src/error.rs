//! The application's error type: outcomes a caller acts on, mapped to HTTP by the adapter.

use ordermon_domain::order::OrderError;
use ordermon_domain::ports::StoreError;
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name (JSON path).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A field error.
    #[must_use]
    pub fn new(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Why a use case failed. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The request is well-formed but invalid (HTTP 422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Unknown, or not the caller's (HTTP 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflicts with current state: idempotency mismatch, illegal transition,
    /// stale version, duplicate (HTTP 409).
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// The caller's role does not allow it (HTTP 403).
    #[error("forbidden")]
    Forbidden,
    /// A required backend is down (HTTP 503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Another instance owns the user (instances share users): send the
    /// request there (HTTP 503 naming it, with `Retry-After`).
    #[error("user {user} is owned by {}", owner.as_deref().unwrap_or("another instance"))]
    OwnedElsewhere {
        /// The user.
        user: String,
        /// The owning instance's holder id, when known.
        owner: Option<String>,
    },
    /// A bug or an unexpected backend answer (HTTP 500; never for bad input).
    #[error("unexpected error: {0}")]
    Unexpected(String),
}

impl AppError {
    /// A single-field validation error.
    #[must_use]
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The machine-readable code of the error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. } => code,
            Self::Forbidden => "forbidden",
            Self::Unavailable(_) => "unavailable",
            Self::OwnedElsewhere { .. } => "owned_elsewhere",
            Self::Unexpected(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Self::Conflict {
                code: "version_conflict",
                message: e.to_string(),
            },
            StoreError::Duplicate { .. } => Self::Conflict {
                code: "duplicate",
                message: e.to_string(),
            },
            StoreError::NotFound { entity, .. } => Self::NotFound(entity),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Corrupt(m) | StoreError::Unexpected(m) => Self::Unexpected(m),
        }
    }
}

impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::InvalidTransition { .. } => Self::Conflict {
                code: "invalid_transition",
                message: e.to_string(),
            },
            OrderError::QuantityBelowFilled { .. } => Self::field("quantity", e),
            OrderError::MissingPrice(_) | OrderError::UnexpectedPrice(_) => Self::field("price", e),
            OrderError::MissingTrigger(_) | OrderError::UnexpectedTrigger(_) => {
                Self::field("trigger_price", e)
            }
            OrderError::ExpireAt | OrderError::ExpireAtPast => Self::field("expire_at", e),
            OrderError::PostOnly => Self::field("post_only", e),
            OrderError::ZeroQuantity | OrderError::FillTooLarge => Self::field("quantity", e),
            OrderError::InvalidUpdate(_) => Self::field("body", e),
            OrderError::ForeignFill => Self::Conflict {
                code: "foreign_fill",
                message: e.to_string(),
            },
        }
    }
}
