//! Striped generation counters with a fill/evict barrier: the guard of a
//! read-through cache against fills racing an invalidation. One type for
//! every cache of the system: the application's read-through layer and the
//! Redis adapter's in-process tier both use it.
//!
//! Each key hashes to one of a fixed number of stripes. An eviction bumps the
//! stripe's generation under the stripe's write lock; a fill takes the read lock,
//! and writes only if the generation is still the one it saw before it fetched
//! the value. So a value fetched before an eviction can never be written after
//! it: either the fill finishes first (and the eviction removes it) or the fill
//! sees the new generation and gives up. Two keys sharing a stripe only cost an
//! occasional skipped fill.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{RwLock, RwLockReadGuard};

/// Generation counters and barrier locks, `N` stripes.
#[derive(Debug)]
pub struct Stripes {
    gens: Box<[AtomicU64]>,
    locks: Box<[RwLock<()>]>,
    /// Bumped by a full clear; part of every token.
    epoch: AtomicU64,
    hasher: std::hash::RandomState,
}

/// What a fill saw before it fetched its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    stripe: usize,
    generation: u64,
    epoch: u64,
}

impl Token {
    /// True when a load started with `self` is at least as fresh as one
    /// started with `other` (same key): it may serve `other`'s caller.
    pub fn covers(self, other: Self) -> bool {
        self.stripe == other.stripe
            && (self.epoch, self.generation) >= (other.epoch, other.generation)
    }
}

impl Stripes {
    /// `n` stripes (at least one).
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        Self {
            gens: (0..n).map(|_| AtomicU64::new(0)).collect(),
            locks: (0..n).map(|_| RwLock::new(())).collect(),
            epoch: AtomicU64::new(0),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn stripe(&self, key: &str) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(key.as_bytes());
        // The modulo keeps the value below the stripe count, which is a usize.
        usize::try_from(h.finish() % self.gens.len() as u64).unwrap_or(0)
    }

    /// The token a fill of `key` must still match when it writes.
    pub fn token(&self, key: &str) -> Token {
        let stripe = self.stripe(key);
        Token {
            stripe,
            generation: self.gens[stripe].load(Ordering::SeqCst),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    /// Holds the stripe's read lock while a fill writes; `None` when the key was
    /// evicted (or everything cleared) since `token` was taken.
    pub async fn fill_guard(&self, token: Token) -> Option<RwLockReadGuard<'_, ()>> {
        let guard = self.locks[token.stripe].read().await;
        let current = (
            self.gens[token.stripe].load(Ordering::SeqCst),
            self.epoch.load(Ordering::SeqCst),
        );
        (current == (token.generation, token.epoch)).then_some(guard)
    }

    /// Bumps `key`'s stripe and waits for the fills already writing to it, so an
    /// eviction that follows removes whatever they wrote.
    pub async fn evict_barrier(&self, key: &str) {
        let stripe = self.stripe(key);
        let _w = self.locks[stripe].write().await;
        self.gens[stripe].fetch_add(1, Ordering::SeqCst);
    }

    /// Bumps the epoch (every token taken before is stale) and waits for every
    /// fill in progress, so a clear that follows removes whatever they wrote.
    pub async fn clear_barrier(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for lock in &self.locks {
            drop(lock.write().await);
        }
    }
}
