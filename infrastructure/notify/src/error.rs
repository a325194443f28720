//! Why a receiver's configuration was refused. The texts name the receiver and
//! the field, never the value when the value is a secret.

/// A receiver configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    /// A field has a value that cannot work.
    #[error("receiver `{receiver}`: `{field}` {reason}")]
    Invalid {
        /// The receiver's name.
        receiver: String,
        /// The field, e.g. `url`, `to`, `headers.X-Token`.
        field: String,
        /// What is wrong with it (never the secret itself).
        reason: String,
    },
    /// The channel's client could not be set up (e.g. no TLS backend).
    #[error("receiver `{receiver}`: cannot set up its {kind} client: {reason}")]
    Client {
        /// The receiver's name.
        receiver: String,
        /// The channel kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}

/// Builds [`NotifyConfigError::Invalid`] errors for one receiver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) receiver: &'a str,
}

impl Field<'_> {
    pub(crate) fn invalid(
        self,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> NotifyConfigError {
        NotifyConfigError::Invalid {
            receiver: self.receiver.to_owned(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn client(self, kind: &'static str, reason: impl Into<String>) -> NotifyConfigError {
        NotifyConfigError::Client {
            receiver: self.receiver.to_owned(),
            kind,
            reason: reason.into(),
        }
    }
}
