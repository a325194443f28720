//! The read side of the trading model: its query repository ports over the
//! in-memory tables (the alerting model's are in `alerting`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::event::AggregateType;
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::order::Order;
use ordermon_domain::ports::{
    AccountRepository, BarRepository, EventLog, FillQuery, FillRepository, InstrumentRepository,
    OrderQuery, OrderRepository, Outbox, OutboxRecord, PositionRepository, StoreError, StoredEvent,
    StrategyRepository, UserRepository,
};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use ordermon_domain::user::{User, UserStatus};

use crate::{MemoryStore, page_size};

/// True when an order passes every filter of a query (except the page limit).
fn order_matches(o: &Order, q: &OrderQuery) -> bool {
    q.user_id.as_ref().is_none_or(|u| *u == o.user_id)
        && (q.statuses.is_empty() || q.statuses.contains(&o.status))
        && q.instrument_id
            .as_ref()
            .is_none_or(|i| *i == o.instrument_id)
        && q.strategy_id
            .as_ref()
            .is_none_or(|s| o.strategy_id.as_ref() == Some(s))
        && q.from.is_none_or(|from| o.created_at >= from)
        && q.to.is_none_or(|to| o.created_at < to)
        && q.before.is_none_or(|before| o.id < before)
}

#[async_trait]
impl OrderRepository for MemoryStore {
    async fn get_order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.with(|t| t.orders.get(&id).cloned()))
    }

    async fn get_order_by_client_id(
        &self,
        user: &UserId,
        client_order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        Ok(self.with(|t| {
            t.client_ids
                .get(&(user.clone(), client_order_id.to_owned()))
                .and_then(|id| t.orders.get(id).cloned())
        }))
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError> {
        let n = page_size(query.limit);
        Ok(self.with(|t| {
            t.orders
                .values()
                .rev()
                .filter(|o| order_matches(o, query))
                .take(n)
                .cloned()
                .collect()
        }))
    }

    async fn open_orders(&self, user: Option<&UserId>) -> Result<Vec<Order>, StoreError> {
        Ok(self.with(|t| {
            t.orders
                .values()
                .filter(|o| o.is_open() && user.is_none_or(|u| *u == o.user_id))
                .cloned()
                .collect()
        }))
    }

    async fn get_orders(&self, ids: &[OrderId]) -> Result<Vec<Order>, StoreError> {
        Ok(self.with(|t| {
            ids.iter()
                .filter_map(|id| t.orders.get(id).cloned())
                .collect()
        }))
    }

    async fn get_orders_by_client_ids(
        &self,
        keys: &[(UserId, ClientOrderId)],
    ) -> Result<Vec<Order>, StoreError> {
        Ok(self.with(|t| {
            keys.iter()
                .filter_map(|(u, c)| {
                    let id = t.client_ids.get(&(u.clone(), c.as_str().to_owned()))?;
                    t.orders.get(id).cloned()
                })
                .collect()
        }))
    }
}

#[async_trait]
impl FillRepository for MemoryStore {
    async fn list_fills(&self, query: &FillQuery) -> Result<Vec<(i64, Fill)>, StoreError> {
        let n = page_size(query.limit);
        Ok(self.with(|t| {
            let upper = query.before.unwrap_or(i64::MAX);
            t.fills
                .range(..upper)
                .rev()
                .filter(|(_, f)| {
                    query.user_id.as_ref().is_none_or(|u| *u == f.user_id)
                        && query.order_id.is_none_or(|o| o == f.order_id)
                        && query
                            .instrument_id
                            .as_ref()
                            .is_none_or(|i| *i == f.instrument_id)
                })
                .take(n)
                .map(|(k, f)| (*k, f.clone()))
                .collect()
        }))
    }
}

#[async_trait]
impl PositionRepository for MemoryStore {
    async fn get_position(
        &self,
        user: &UserId,
        instrument: &InstrumentId,
    ) -> Result<Option<Position>, StoreError> {
        Ok(self.with(|t| {
            t.positions
                .get(&(user.clone(), instrument.clone()))
                .cloned()
        }))
    }

    async fn list_positions(&self, user: &UserId) -> Result<Vec<Position>, StoreError> {
        let pivot = InstrumentId::new("A.A").ok();
        Ok(self.with(|t| of_user(&t.positions, user, pivot.as_ref())))
    }
}

#[async_trait]
impl AccountRepository for MemoryStore {
    async fn get_account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.with(|t| t.accounts.get(user).cloned()))
    }
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.with(|t| t.users.get(id).cloned()))
    }

    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let n = page_size(limit);
        Ok(self.with(|t| {
            t.users
                .values()
                .filter(|u| after.is_none_or(|a| u.id > *a))
                .take(n)
                .cloned()
                .collect()
        }))
    }

    async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError> {
        Ok(self.with(|t| t.users.values().map(|u| (u.id.clone(), u.status)).collect()))
    }

    async fn user_status_stamp(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.with(|t| t.user_status_changes)))
    }
}

#[async_trait]
impl StrategyRepository for MemoryStore {
    async fn get_strategy(
        &self,
        user: &UserId,
        id: &StrategyId,
    ) -> Result<Option<Strategy>, StoreError> {
        Ok(self.with(|t| t.strategies.get(&(user.clone(), id.clone())).cloned()))
    }

    async fn list_strategies(&self, user: &UserId) -> Result<Vec<Strategy>, StoreError> {
        let pivot = StrategyId::new("a").ok();
        Ok(self.with(|t| of_user(&t.strategies, user, pivot.as_ref())))
    }

    async fn strategy_statuses(
        &self,
    ) -> Result<Vec<(StrategyId, UserId, StrategyStatus, u64)>, StoreError> {
        Ok(self.with(|t| {
            t.strategies
                .values()
                .map(|s| (s.id.clone(), s.user_id.clone(), s.status, s.version))
                .collect()
        }))
    }

    async fn strategy_stamp(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.with(|t| t.strategy_changes)))
    }
}

#[async_trait]
impl InstrumentRepository for MemoryStore {
    async fn get_instrument(&self, id: &InstrumentId) -> Result<Option<Instrument>, StoreError> {
        Ok(self.with(|t| t.instruments.get(id).cloned()))
    }

    async fn list_instruments(&self) -> Result<Vec<Instrument>, StoreError> {
        Ok(self.with(|t| t.instruments.values().cloned().collect()))
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn aggregate_events(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.with(|t| {
            let key = (aggregate_type.as_str(), aggregate_id.to_owned());
            t.streams.get(&key).map_or_else(Vec::new, |stream| {
                stream
                    .iter()
                    .filter_map(|(_, pos)| {
                        t.events.get(*pos).map(|e| StoredEvent {
                            position: *pos,
                            event: e.clone(),
                        })
                    })
                    .collect()
            })
        }))
    }

    async fn events_after(
        &self,
        after: i64,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let n = page_size(limit);
        Ok(self.with(|t| {
            t.events
                .from(after.saturating_add(1))
                .filter(|(_, e)| user.is_none_or(|u| e.user_id.as_ref() == Some(u)))
                .take(n)
                .map(|(position, e)| StoredEvent {
                    position,
                    event: e.clone(),
                })
                .collect()
        }))
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxRecord>, StoreError> {
        let n = page_size(limit);
        self.with(|t| {
            t.outbox_pending
                .iter()
                .take(n)
                .filter_map(|id| {
                    t.outbox.get(id).map(|(row, _)| {
                        row.message(&t.events)
                            .map(|message| OutboxRecord { id: *id, message })
                    })
                })
                .collect()
        })
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let now = chrono::Utc::now();
        Ok(self.with(|t| {
            let mut marked = 0;
            for id in ids {
                if let Some((_, sent)) = t.outbox.get_mut(id)
                    && sent.is_none()
                {
                    *sent = Some(now);
                    t.outbox_pending.remove(id);
                    marked += 1;
                }
            }
            marked
        }))
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.with(|t| t.outbox_pending.len() as u64))
    }

    async fn purge_sent(
        &self,
        sent_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            let below = t.outbox_pending.first().copied().unwrap_or(i64::MAX);
            let before = t.outbox.len();
            t.outbox
                .retain(|id, (_, sent)| *id >= below || sent.is_none_or(|at| at >= sent_before));
            (before - t.outbox.len()) as u64
        }))
    }
}

#[async_trait]
impl BarRepository for MemoryStore {
    async fn upsert_bars(&self, bars: &[Bar]) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            for bar in bars {
                let key = (
                    bar.instrument_id.clone(),
                    bar.interval.as_str(),
                    bar.open_time,
                );
                t.bars.insert(key, bar.clone());
            }
            bars.len() as u64
        }))
    }

    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, StoreError> {
        let n = page_size(limit);
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self.with(|t| {
            let lo = (instrument.clone(), interval.as_str(), from);
            let hi = (instrument.clone(), interval.as_str(), to);
            t.bars
                .range(lo..hi)
                .take(n)
                .map(|(_, b)| b.clone())
                .collect()
        }))
    }
}

/// The values of `map` whose key starts with `user`, in key order: the
/// entries on either side of `(user, pivot)` (any second part), found in
/// `O(log n + k)` rather than by scanning every user's entries. Without a
/// pivot, by a scan.
fn of_user<K: Ord + Clone, V: Clone>(
    map: &std::collections::BTreeMap<(UserId, K), V>,
    user: &UserId,
    pivot: Option<&K>,
) -> Vec<V> {
    let Some(pivot) = pivot else {
        return map
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|(_, v)| v.clone())
            .collect();
    };
    let at = (user.clone(), pivot.clone());
    let mut out: Vec<V> = map
        .range(..at.clone())
        .rev()
        .take_while(|((u, _), _)| u == user)
        .map(|(_, v)| v.clone())
        .collect();
    out.reverse();
    out.extend(
        map.range(at..)
            .take_while(|((u, _), _)| u == user)
            .map(|(_, v)| v.clone()),
    );
    out
}

#[cfg(test)]
mod of_user_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_exactly_a_users_entries_on_both_sides_of_the_pivot() {
        let u = |s: &str| UserId::new(s).unwrap();
        let s = |s: &str| StrategyId::new(s).unwrap();
        let mut map = std::collections::BTreeMap::new();
        for (user, id) in [
            ("alice", "0-first"),
            ("alice", "a"),
            ("alice", "zz"),
            ("al", "m"),
            ("alicf", "b"),
            ("bob", "a"),
        ] {
            map.insert((u(user), s(id)), format!("{user}/{id}"));
        }
        let pivot = s("a");
        assert_eq!(
            of_user(&map, &u("alice"), Some(&pivot)),
            ["alice/0-first", "alice/a", "alice/zz"]
        );
        assert_eq!(
            of_user(&map, &u("alice"), None),
            of_user(&map, &u("alice"), Some(&pivot))
        );
        assert_eq!(of_user(&map, &u("bob"), Some(&s("zzz"))), ["bob/a"]);
        assert!(of_user(&map, &u("carol"), Some(&pivot)).is_empty());
        assert!(
            InstrumentId::new("A.A").is_ok(),
            "the positions' pivot is a valid id"
        );
    }
}
