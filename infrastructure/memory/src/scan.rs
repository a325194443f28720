//! Maintenance reads over the in-memory tables: key-ordered projection scans,
//! the high-water marks, and retention. Rows here have no separate columns,
//! so a scanned row's columns and data are the same value.

use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::Order;
use ordermon_domain::ports::{
    HighWaterRepository, ProjectionScan, PurgeCounts, Retention, StoreError, StoredRow,
};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;

use crate::alerting::purgeable_notifications;
use crate::{MemoryStore, page_size};

fn after<K: Ord>(key: Option<K>) -> (Bound<K>, Bound<K>) {
    (
        key.map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    )
}

#[async_trait]
impl ProjectionScan for MemoryStore {
    async fn scan_orders(
        &self,
        from: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Order>>, StoreError> {
        Ok(self.with(|t| {
            t.orders
                .range(after(from))
                .take(page_size(limit))
                .map(|(_, o)| StoredRow::same(o.clone()))
                .collect()
        }))
    }

    async fn scan_accounts(
        &self,
        from: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Account>>, StoreError> {
        Ok(self.with(|t| {
            t.accounts
                .range(after(from.cloned()))
                .take(page_size(limit))
                .map(|(_, a)| StoredRow::same(a.clone()))
                .collect()
        }))
    }

    async fn scan_positions(
        &self,
        from: Option<(&UserId, &InstrumentId)>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Position>>, StoreError> {
        Ok(self.with(|t| {
            t.positions
                .range(after(from.map(|(u, i)| (u.clone(), i.clone()))))
                .take(page_size(limit))
                .map(|(_, p)| StoredRow::same(p.clone()))
                .collect()
        }))
    }

    async fn scan_strategies(
        &self,
        from: Option<&(UserId, StrategyId)>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Strategy>>, StoreError> {
        Ok(self.with(|t| {
            t.strategies
                .range(after(from.cloned()))
                .take(page_size(limit))
                .map(|(_, s)| StoredRow::same(s.clone()))
                .collect()
        }))
    }
}

#[async_trait]
impl HighWaterRepository for MemoryStore {
    async fn get_high_water(&self, user: &UserId) -> Result<Option<HighWaterMark>, StoreError> {
        Ok(self.with(|t| t.high_water.get(user).cloned()))
    }

    async fn list_high_water(
        &self,
        from: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<HighWaterMark>, StoreError> {
        Ok(self.with(|t| {
            t.high_water
                .range(after(from.cloned()))
                .take(page_size(limit))
                .map(|(_, m)| m.clone())
                .collect()
        }))
    }
}

#[async_trait]
impl Retention for MemoryStore {
    async fn purgeable(&self, before: DateTime<Utc>) -> Result<PurgeCounts, StoreError> {
        Ok(self.with(|t| {
            let below = t.outbox_pending.first().copied().unwrap_or(i64::MAX);
            PurgeCounts {
                bars: t.bars.keys().filter(|k| k.2 < before).count() as u64,
                outbox: t
                    .outbox
                    .iter()
                    .filter(|(id, (_, sent))| **id < below && sent.is_some_and(|at| at < before))
                    .count() as u64,
                notifications: purgeable_notifications(t, before).len() as u64,
                sessions: t
                    .sessions
                    .values()
                    .filter(|s| s.expires_at < before)
                    .count() as u64,
            }
        }))
    }

    async fn purge_bars(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            let n = t.bars.len();
            t.bars.retain(|k, _| k.2 >= before);
            (n - t.bars.len()) as u64
        }))
    }
}
