//! The read-through cache `cache.url` selects: in-process only (`memory`), or
//! Redis shared by every instance with an in-process tier in front.

use std::sync::Arc;
use std::time::Duration;

use ordermon_application::Engine;
use ordermon_application::cache::ReadCache;
use ordermon_domain::ports::{Cache, CacheError};
use ordermon_http::{HealthCheck, StatusSection};
use ordermon_memory::cache::MemoryCache;
use ordermon_redis::cache::{CacheConfig, CacheStatus, TieredCache};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{CacheKind, CacheSettings, ConfigError};
use crate::messaging::Section;

/// How often the Redis cache's health is looked at for degraded/recovered events.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Why the cache could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CacheOpenError {
    /// A bad `[cache]` setting.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Redis URL cannot be used (an unreachable Redis is not an error: the
    /// cache starts degraded and recovers on its own).
    #[error("cache.url = `{url}`: {source}")]
    Redis {
        /// The URL, password masked.
        url: String,
        /// Why.
        source: CacheError,
    },
}

/// An open cache.
#[derive(Debug, Clone)]
pub(crate) struct OpenCache {
    /// What the engine reads through.
    pub(crate) read: Arc<ReadCache>,
    /// The Redis tiers, when `cache.url` is Redis.
    pub(crate) tiered: Option<TieredCache>,
    /// `off`, `memory` or `redis`.
    pub(crate) kind: &'static str,
}

/// Opens the cache; Redis's subscriber and prober run in `tracker` until `cancel`.
///
/// # Errors
/// See [`CacheOpenError`].
pub(crate) async fn open(
    settings: &CacheSettings,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<OpenCache, CacheOpenError> {
    let read_settings = settings.read_settings()?;
    let kind = settings.kind()?;
    if !settings.enabled {
        return Ok(OpenCache {
            read: Arc::new(ReadCache::off()),
            tiered: None,
            kind: "off",
        });
    }
    Ok(match kind {
        CacheKind::Memory => OpenCache {
            read: Arc::new(ReadCache::new(
                Arc::new(MemoryCache::new(settings.max_entries)),
                read_settings,
            )),
            tiered: None,
            kind: "memory",
        },
        CacheKind::Redis => {
            let mut config = CacheConfig::default();
            config.redis.command_timeout = settings.command_timeout;
            config.redis.tls_ca_file.clone_from(&settings.tls_ca_file);
            config.tiered.max_entries = settings.max_entries;
            config.tiered.namespace_ttl = read_settings
                .ttls()
                .into_iter()
                .map(|(ns, ttl)| (ns.to_owned(), ttl))
                .collect();
            let tiered =
                ordermon_redis::cache::connect(settings.url.expose(), &config, tracker, cancel)
                    .await
                    .map_err(|source| CacheOpenError::Redis {
                        url: settings.url.to_string(),
                        source,
                    })?;
            let backend: Arc<dyn Cache> = Arc::new(tiered.clone());
            OpenCache {
                read: Arc::new(ReadCache::shared(backend, read_settings)),
                tiered: Some(tiered),
                kind: "redis",
            }
        }
    })
}

impl OpenCache {
    /// `/health/ready`'s cache component (never critical: without Redis,
    /// reads go to the store).
    pub(crate) fn health(&self) -> Option<Arc<dyn HealthCheck>> {
        self.tiered
            .clone()
            .map(|t| Arc::new(CacheHealth(t)) as Arc<dyn HealthCheck>)
    }

    /// The `cache` section of `/status`.
    pub(crate) fn status_section(&self) -> Arc<dyn StatusSection> {
        let tiered = self.tiered.clone();
        let kind = self.kind;
        Arc::new(Section::new("cache", move || match &tiered {
            Some(t) => {
                let (state, reason) = match t.status() {
                    CacheStatus::Ok => ("ok", None),
                    CacheStatus::Degraded { reason } => ("degraded", Some(reason)),
                };
                serde_json::json!({
                    "backend": kind,
                    "state": state,
                    "reason": reason,
                    "local_entries": t.local_entries(),
                })
            }
            None => serde_json::json!({ "backend": kind, "state": "ok" }),
        }))
    }

    /// Records each change of the Redis cache's health in the event log
    /// (`system.component_degraded` / `system.component_recovered`).
    pub(crate) fn watch(
        &self,
        engine: Arc<Engine>,
        instance: String,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) {
        let Some(tiered) = self.tiered.clone() else {
            return;
        };
        tracker.spawn(async move {
            let mut was_degraded = false;
            let mut every = tokio::time::interval(WATCH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = every.tick() => {}
                }
                let problem = match tiered.status() {
                    CacheStatus::Ok => None,
                    CacheStatus::Degraded { reason } => Some(reason),
                };
                if problem.is_some() == was_degraded {
                    continue;
                }
                match engine
                    .admin
                    .record_component_health(&instance, "cache", problem.clone())
                    .await
                {
                    Ok(()) => was_degraded = problem.is_some(),
                    // Tried again at the next tick.
                    Err(e) => tracing::warn!(error = %e, "cannot record the cache's health"),
                }
            }
        });
    }
}

/// Readiness of the Redis cache: `degraded` (still ready) while Redis or its
/// invalidation feed is down.
struct CacheHealth(TieredCache);

#[async_trait::async_trait]
impl HealthCheck for CacheHealth {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn critical(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        match self.0.status() {
            CacheStatus::Ok => Ok(()),
            CacheStatus::Degraded { reason } => Err(reason),
        }
    }
}
