//! Leases: a named right (relaying the outbox, owning a user) held by one
//! instance at a time for a bounded time, with a fencing epoch.
//!
//! A lease is taken by [`LeaseStore::acquire`] when it is free, has lapsed, or
//! is already held by the caller (a renewal). Each taking of a free or lapsed
//! lease raises its epoch, so anything written under an epoch can be told apart from
//! what a later holder writes: a holder that was paused past its lease and
//! wakes up finds a higher epoch and steps down. Expiry is judged on the
//! store's clock, never on the instances' clocks, so instances need not agree
//! on the time.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// Longest lease name or holder name, in bytes.
pub const LEASE_NAME_MAX: usize = 200;

/// A lease as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is leased (`outbox-relay`, `user:alice`).
    pub name: String,
    /// Who holds it (an instance id); empty when nobody ever held it.
    pub holder: String,
    /// Raised each time the lease is taken while free or lapsed (0: never
    /// held).
    pub epoch: u64,
    /// When it lapses unless renewed, on the store's clock.
    pub expires_at: DateTime<Utc>,
    /// Whether it had not lapsed when the store answered.
    pub live: bool,
}

impl Lease {
    /// Whether `holder` holds it and it has not lapsed.
    #[must_use]
    pub fn held_by(&self, holder: &str) -> bool {
        self.live && self.holder == holder
    }
}

/// A write's claim to be made under a lease: the store refuses the write
/// unless `holder` holds `lease` at `epoch` (see [`super::ChangeSet::fence`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fence {
    /// The lease (`user:alice`).
    pub lease: String,
    /// The writer's holder id.
    pub holder: String,
    /// The epoch the writer holds it at.
    pub epoch: u64,
}

/// Why a lease name or holder was refused.
#[must_use]
pub fn check_lease_name(what: &'static str, name: &str) -> Option<StoreError> {
    if name.is_empty() || name.len() > LEASE_NAME_MAX || name.chars().any(char::is_control) {
        return Some(StoreError::Unexpected(format!(
            "a lease {what} must be 1 to {LEASE_NAME_MAX} bytes without control characters"
        )));
    }
    None
}

/// Where leases are kept: the shared database.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes `name` for `holder` until `ttl` from now (on the store's clock)
    /// when it is free, has lapsed or is already `holder`'s; renewing a live
    /// lease keeps the epoch, taking a lapsed or released one raises it (even
    /// for the same holder: whatever was written under the old epoch may have
    /// been fenced off meanwhile). Returns the lease as it stands
    /// afterwards: held by `holder` when it won, by the other holder otherwise.
    ///
    /// # Errors
    /// Store failures; a name or holder that is empty, longer than
    /// [`LEASE_NAME_MAX`] or holds control characters.
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError>;

    /// [`LeaseStore::acquire`] by a holder that keeps one lease renewed on a
    /// timer (an instance's membership, the relay's). A store may serve these
    /// apart from bulk takes and its other work, so that a busy store cannot
    /// make a healthy holder lose its lease; by default it is `acquire`.
    ///
    /// # Errors
    /// As [`LeaseStore::acquire`].
    async fn keep(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.acquire(name, holder, ttl).await
    }

    /// Lets `name` lapse at once if `holder` holds it; returns whether it did.
    ///
    /// # Errors
    /// Store failures.
    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError>;

    /// Renews every live lease `holder` holds whose name starts with
    /// `prefix` until `ttl` from now, in one statement; returns how many.
    /// Lapsed ones are not revived (another instance may be taking them).
    ///
    /// # Errors
    /// Store failures.
    async fn renew_all(&self, prefix: &str, holder: &str, ttl: Duration)
    -> Result<u64, StoreError>;

    /// Every lease whose name starts with `prefix` (lapsed ones included),
    /// by name.
    ///
    /// # Errors
    /// Store failures.
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>, StoreError>;
}
