//! Leases in memory: one process, so they only matter to tests and to code
//! that runs the same way on every store. Expiry is judged on the system clock.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::ports::{Fence, Lease, LeaseStore, StoreError, check_lease_name};

use crate::MemoryStore;

/// Held leases by name: holder, epoch, expiry.
#[derive(Debug, Default)]
pub(crate) struct Leases(BTreeMap<String, (String, u64, DateTime<Utc>)>);

fn lease(name: &str, (holder, epoch, expires_at): &(String, u64, DateTime<Utc>)) -> Lease {
    Lease {
        name: name.to_owned(),
        holder: holder.clone(),
        epoch: *epoch,
        expires_at: *expires_at,
        live: *expires_at > Utc::now(),
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        if let Some(e) =
            check_lease_name("name", name).or_else(|| check_lease_name("holder", holder))
        {
            return Err(e);
        }
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(365));
        let mut leases = self.leases.lock();
        let entry = leases
            .0
            .entry(name.to_owned())
            .or_insert_with(|| (String::new(), 0, DateTime::<Utc>::MIN_UTC));
        if entry.0 == holder && entry.2 > now {
            entry.2 = until;
        } else if entry.2 <= now {
            *entry = (holder.to_owned(), entry.1 + 1, until);
        }
        Ok(lease(name, entry))
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut leases = self.leases.lock();
        match leases.0.get_mut(name) {
            Some(entry) if entry.0 == holder && entry.2 > now => {
                entry.2 = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew_all(
        &self,
        prefix: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(365));
        let mut leases = self.leases.lock();
        let mut n = 0;
        for (_, entry) in leases
            .0
            .iter_mut()
            .filter(|(name, _)| name.starts_with(prefix))
        {
            if entry.0 == holder && entry.2 > now {
                entry.2 = until;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>, StoreError> {
        let leases = self.leases.lock();
        Ok(leases
            .0
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, entry)| lease(name, entry))
            .collect())
    }
}

impl Leases {
    /// Refuses a write whose fence names a lease its writer no longer holds
    /// at that epoch (lapsed but not taken over still counts as held: nobody
    /// else can have written).
    pub(crate) fn check(&self, fence: &Fence) -> Result<(), StoreError> {
        match self.0.get(&fence.lease) {
            Some((holder, epoch, _)) if *holder == fence.holder && *epoch == fence.epoch => Ok(()),
            found => Err(StoreError::Conflict {
                entity: "lease",
                id: fence.lease.clone(),
                expected: fence.epoch,
                actual: found.map(|(_, epoch, _)| *epoch),
            }),
        }
    }
}
