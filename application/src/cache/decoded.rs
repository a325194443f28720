//! The decoded tier of a cache this instance has to itself: the values this
//! process loaded and cached, kept as values, so that a hit is a look-up and a clone rather than a decode of the
//! backend's bytes (an order's MessagePack decode was a tenth of the server's
//! CPU under `GET /api/v1/orders/{id}`).
//!
//! It is filled only where the backend is filled — by a load from the store,
//! under the same stripe guard and generation check ([`super::stripes`]) —
//! and emptied wherever the backend is invalidated or evicted, after the
//! generation bump. So it holds nothing the backend could not hold, and for no
//! longer: each entry keeps its namespace's TTL (or the negative TTL). A
//! backend hit is not copied here: the bytes may be a moment from their
//! invalidation, and only a load taken after the generation bump is known to
//! be fresh. Bounded by entry count; the least used go first.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

/// A cached value (`None`: "not found"), type-erased, with its TTL.
#[derive(Clone)]
struct Held {
    value: Option<Arc<dyn Any + Send + Sync>>,
    ttl: Duration,
}

struct HeldTtl;

impl Expiry<String, Held> for HeldTtl {
    fn expire_after_create(&self, _: &String, v: &Held, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        v: &Held,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Decoded values by rendered key.
pub(crate) struct Decoded {
    entries: moka::future::Cache<String, Held>,
}

impl Decoded {
    /// At most `max_entries` values.
    pub(crate) fn new(max_entries: u64) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(HeldTtl)
                .build(),
        }
    }

    /// `Some(value or None)` on a hit; `None` on a miss (or a value of
    /// another type under the key, which no caller writes).
    pub(crate) async fn get<T: Clone + 'static>(&self, key: &str) -> Option<Option<T>> {
        let held = self.entries.get(key).await?;
        match held.value {
            None => Some(None),
            Some(any) => any.downcast_ref::<T>().cloned().map(Some),
        }
    }

    /// Keeps `value` for `ttl`. The caller holds the key's fill guard.
    pub(crate) async fn insert<T: Clone + Send + Sync + 'static>(
        &self,
        key: String,
        value: Option<&T>,
        ttl: Duration,
    ) {
        let value = value.map(|v| Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>);
        self.entries.insert(key, Held { value, ttl }).await;
    }

    /// Forgets `key`. The caller has bumped its generation first.
    pub(crate) async fn remove(&self, key: &str) {
        self.entries.invalidate(key).await;
    }
}
