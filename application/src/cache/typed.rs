//! Typed reads of what the engine caches: orders, the client-id alias, the
//! account/portfolio state, users, strategies, instruments and quotes.

use std::future::Future;

use chrono::NaiveDate;
use ordermon_domain::Decimal;
use ordermon_domain::account::Account;
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::Order;
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::user::User;
use ordermon_domain::values::decimal_string;
use serde::{Deserialize, Serialize};

use super::{ReadCache, keys};
use crate::error::AppError;
use crate::views::Snapshot;

/// An owner's snapshot as cached, with the day its "today" figures belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSnapshot {
    /// The user.
    pub user: User,
    /// The account.
    pub account: Account,
    /// Every position.
    pub positions: Vec<Position>,
    /// Open orders.
    pub open_orders: Vec<Order>,
    /// Realized PnL on `day`.
    #[serde(with = "decimal_string")]
    pub day_realized: Decimal,
    /// The UTC day of `day_realized`; on another day the entry is not used.
    pub day: NaiveDate,
}

impl CachedSnapshot {
    /// Wraps a snapshot taken on `day`.
    #[must_use]
    pub fn new(s: Snapshot, day: NaiveDate) -> Self {
        Self {
            user: s.user,
            account: s.account,
            positions: s.positions,
            open_orders: s.open_orders,
            day_realized: s.day_realized,
            day,
        }
    }

    /// The snapshot.
    #[must_use]
    pub fn into_snapshot(self) -> Snapshot {
        Snapshot {
            user: self.user,
            account: self.account,
            positions: self.positions,
            open_orders: self.open_orders,
            day_realized: self.day_realized,
        }
    }
}

impl ReadCache {
    /// An order by id as `viewer` may see it (`None` = any user); another
    /// user's order is cached for that viewer as "not found".
    ///
    /// # Errors
    /// The loader's.
    pub async fn order<F, Fut>(
        &self,
        viewer: Option<&UserId>,
        id: OrderId,
        load: F,
    ) -> Result<Option<Order>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Order>, AppError>>,
    {
        let owner = viewer.cloned();
        self.get_or_load(keys::order(viewer, id), || async move {
            Ok(load()
                .await?
                .filter(|o| owner.as_ref().is_none_or(|v| *v == o.user_id)))
        })
        .await
    }

    /// The order id of a user's client order id.
    ///
    /// # Errors
    /// The loader's.
    pub async fn order_id_by_client_id<F, Fut>(
        &self,
        user: &UserId,
        cid: &str,
        load: F,
    ) -> Result<Option<OrderId>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<OrderId>, AppError>>,
    {
        self.get_or_load(keys::order_cid(user, cid), load).await
    }

    /// A user's account and portfolio state, from the owner's snapshot taken on
    /// `today` (an entry of another day is reloaded: "today" figures reset).
    ///
    /// # Errors
    /// NotFound for an unknown user (cached briefly), or the loader's error.
    pub async fn snapshot<F, Fut>(
        &self,
        user: &UserId,
        today: NaiveDate,
        load: F,
    ) -> Result<Snapshot, AppError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Snapshot, AppError>>,
    {
        let key = keys::portfolio(user);
        let wrap = || async {
            match load().await {
                Ok(s) => Ok(Some(CachedSnapshot::new(s, today))),
                Err(AppError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let cached = self.get_or_load(key.clone(), &wrap).await?;
        let fresh = match cached {
            Some(c) if c.day == today => Some(c),
            Some(_) => {
                self.invalidate(std::slice::from_ref(&key)).await;
                self.get_or_load(key, &wrap).await?
            }
            None => None,
        };
        fresh
            .map(CachedSnapshot::into_snapshot)
            .ok_or(AppError::NotFound("user"))
    }

    /// A user.
    ///
    /// # Errors
    /// The loader's.
    pub async fn user<F, Fut>(&self, id: &UserId, load: F) -> Result<Option<User>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<User>, AppError>>,
    {
        self.get_or_load(keys::user(id), load).await
    }

    /// A strategy as `viewer` may see it (`None` = any user).
    ///
    /// # Errors
    /// The loader's.
    pub async fn strategy<F, Fut>(
        &self,
        user: &UserId,
        id: &StrategyId,
        load: F,
    ) -> Result<Option<Strategy>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Strategy>, AppError>>,
    {
        self.get_or_load(keys::strategy(user, id), load).await
    }

    /// An instrument.
    ///
    /// # Errors
    /// The loader's.
    pub async fn instrument<F, Fut>(
        &self,
        id: &InstrumentId,
        load: F,
    ) -> Result<Option<Instrument>, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Instrument>, AppError>>,
    {
        self.get_or_load(keys::instrument(id), load).await
    }

    /// The latest quote another instance shared, if any (and not expired).
    pub async fn quote(&self, id: &InstrumentId) -> Option<Quote> {
        self.peek(&keys::quote(id)).await
    }

    /// Shares a quote with the other instances.
    pub async fn put_quote(&self, quote: &Quote) {
        self.put(&keys::quote(&quote.instrument_id), quote).await;
    }
}
