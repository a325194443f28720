//! Why a provider's configuration was refused. The texts name the provider and
//! the key, never the value when the value may be a secret.

/// A provider configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value that cannot work.
    #[error("market data provider `{provider}`: `{field}` {reason}")]
    Invalid {
        /// The provider's name.
        provider: String,
        /// The key, e.g. `base_url`, `limits.per_second`, `weights.klines`.
        field: String,
        /// What is wrong with it (never the secret itself).
        reason: String,
    },
    /// The HTTP client could not be set up (e.g. no TLS backend).
    #[error("market data provider `{provider}`: cannot set up its HTTP client: {reason}")]
    Client {
        /// The provider's name.
        provider: String,
        /// Why.
        reason: String,
    },
}
