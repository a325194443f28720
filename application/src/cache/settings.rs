//! Cache settings: TTL and serializer per namespace, negative-entry TTL, fill age.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::keys;

/// How a namespace's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// JSON: readable with `redis-cli`, larger.
    #[default]
    Json,
    /// MessagePack (named fields): compact and quick.
    MessagePack,
}

/// One namespace's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSettings {
    /// How long an entry may live. Entries are also invalidated on every write,
    /// so the TTL bounds only what no write path can see (plain SQL).
    pub ttl: Duration,
    /// The serializer.
    pub codec: Codec,
}

impl NamespaceSettings {
    const fn new(ttl_ms: u64, codec: Codec) -> Self {
        Self {
            ttl: Duration::from_millis(ttl_ms),
            codec,
        }
    }
}

/// `[cache]` settings of the read-through layer (the backend — `memory` or
/// `redis://…` — is chosen by the binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Off: every read goes to the store or the owner.
    pub enabled: bool,
    /// Orders by id, and the client-id → order-id alias (5 min, MessagePack).
    pub order: NamespaceSettings,
    /// Account and portfolio state per user (30 s, MessagePack).
    pub portfolio: NamespaceSettings,
    /// Users (2 s, JSON): plain-SQL status changes must show well within the
    /// monitor scan interval (10 s), and no write path sees them.
    pub user: NamespaceSettings,
    /// Strategies (2 s, JSON), for the same reason as users.
    pub strategy: NamespaceSettings,
    /// Instruments (5 min, JSON).
    pub instrument: NamespaceSettings,
    /// Latest quotes shared between instances (10 s, MessagePack).
    pub quote: NamespaceSettings,
    /// Bars (5 min, MessagePack).
    pub bar: NamespaceSettings,
    /// Sessions (24 h, JSON).
    pub session: NamespaceSettings,
    /// TTL of a cached "not found" (2 s).
    pub negative_ttl: Duration,
    /// A load that took longer than this is returned but not cached (1 s): its
    /// value may predate a write it could not see. Keep it below the Redis
    /// tier's `fence_window` minus its command timeout.
    pub max_fill_age: Duration,
    /// How often each instrument's latest quote is copied to the shared cache,
    /// when the cache is shared between instances (1 s).
    pub quote_mirror_every: Duration,
    /// Most values the decoded tier keeps in this process (100,000): what
    /// this process loaded, kept decoded in front of the backend's bytes
    /// (only when the cache is this instance's own).
    pub decoded_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            order: NamespaceSettings::new(300_000, Codec::MessagePack),
            portfolio: NamespaceSettings::new(30_000, Codec::MessagePack),
            user: NamespaceSettings::new(2_000, Codec::Json),
            strategy: NamespaceSettings::new(2_000, Codec::Json),
            instrument: NamespaceSettings::new(300_000, Codec::Json),
            quote: NamespaceSettings::new(10_000, Codec::MessagePack),
            bar: NamespaceSettings::new(300_000, Codec::MessagePack),
            session: NamespaceSettings::new(86_400_000, Codec::Json),
            negative_ttl: Duration::from_secs(2),
            max_fill_age: Duration::from_secs(1),
            quote_mirror_every: Duration::from_secs(1),
            decoded_entries: 100_000,
        }
    }
}

impl CacheSettings {
    /// The settings of a namespace (unknown names get the order settings).
    #[must_use]
    pub fn namespace(&self, name: &str) -> NamespaceSettings {
        match name {
            keys::PORTFOLIO => self.portfolio,
            keys::USER => self.user,
            keys::STRATEGY => self.strategy,
            keys::INSTRUMENT => self.instrument,
            keys::QUOTE => self.quote,
            keys::BAR => self.bar,
            keys::SESSION => self.session,
            _ => self.order,
        }
    }

    /// Every namespace with its TTL, e.g. for the in-process tier in front of
    /// Redis (`TieredConfig::namespace_ttl`).
    #[must_use]
    pub fn ttls(&self) -> Vec<(&'static str, Duration)> {
        keys::ALL
            .iter()
            .map(|ns| (*ns, self.namespace(ns).ttl))
            .collect()
    }
}
