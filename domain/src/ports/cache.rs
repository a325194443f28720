//! The cache port: bytes under namespaced, tenant-scoped keys.

use std::time::Duration;

use async_trait::async_trait;

/// A cache key, rendered `ordermon:{namespace}:{tenant}:{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Namespace (`order`, `account`, `quote`, …): picks TTL and serializer.
    pub namespace: &'static str,
    /// Tenant (user id, or `_` for shared data).
    pub tenant: String,
    /// Key within the tenant.
    pub key: String,
}

impl CacheKey {
    /// A key.
    #[must_use]
    pub fn new(namespace: &'static str, tenant: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            namespace,
            tenant: tenant.into(),
            key: key.into(),
        }
    }

    /// The full key text.
    #[must_use]
    pub fn render(&self) -> String {
        format!("ordermon:{}:{}:{}", self.namespace, self.tenant, self.key)
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ordermon:{}:{}:{}",
            self.namespace, self.tenant, self.key
        )
    }
}

/// Why a cache operation failed. Callers fall through to the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The cache backend cannot be reached.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// A value could not be encoded or decoded.
    #[error("cache codec error: {0}")]
    Codec(String),
}

/// A cache.
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// Reads a value.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the backend is down.
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError>;
    /// Writes a value with a TTL.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the backend is down.
    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    /// Removes a value (here and, for shared caches, on every instance).
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the backend is down.
    async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheError>;
    /// Drops this process's own copy of a value, after another instance has
    /// changed it and already invalidated the shared tier (the event arrived
    /// over the bus). In-process caches drop the value; a remote-only cache has
    /// no copy of its own. The default invalidates, which is always safe.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the backend is down.
    async fn evict_local(&self, key: &CacheKey) -> Result<(), CacheError> {
        self.invalidate(key).await
    }
    /// Checks the backend.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the backend is down.
    async fn health(&self) -> Result<(), CacheError>;
}
