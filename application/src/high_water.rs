//! The portfolio high-water mark, persisted: the highest equity a user's
//! account was valued at (in its first currency), from which drawdown is
//! measured.
//!
//! Equity depends on market marks, so the mark is observed when a portfolio
//! is valued rather than rebuilt from events. Each observation that beats the
//! stored mark raises it through an ordinary version-checked write; a
//! conflict means another instance raised it first, so the stored mark is
//! read back and the higher of the two kept. Drawdown therefore survives a
//! restart and is the same on every instance. A failed write never fails the
//! read that observed it (the mark is raised again at the next valuation).

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{ChangeSet, StateChange, StoreError};

use crate::committer::GroupCommitter;
use crate::persistence::Persistence;
use crate::views::PortfolioView;

/// The stored marks, cached per user once read.
#[derive(Debug)]
pub(crate) struct HighWaterMarks {
    persistence: Persistence,
    committer: GroupCommitter,
    /// `None`: the user has no stored mark yet.
    known: DashMap<UserId, Option<HighWaterMark>>,
}

impl HighWaterMarks {
    pub(crate) fn new(persistence: Persistence, committer: GroupCommitter) -> Self {
        Self {
            persistence,
            committer,
            known: DashMap::new(),
        }
    }

    async fn current(&self, user: &UserId) -> Result<Option<HighWaterMark>, StoreError> {
        if let Some(m) = self.known.get(user) {
            return Ok(m.clone());
        }
        let stored = self.persistence.high_water.get_high_water(user).await?;
        self.known.insert(user.clone(), stored.clone());
        Ok(stored)
    }

    /// Applies the stored mark to a freshly valued portfolio (its high-water
    /// mark and drawdown), and raises the stored mark when the portfolio's
    /// equity beats it.
    pub(crate) async fn observe(
        &self,
        user: &UserId,
        view: &mut PortfolioView,
        now: DateTime<Utc>,
    ) {
        let Some(first) = view.account.balances.first() else {
            return;
        };
        let (currency, equity) = (first.currency.clone(), first.equity);
        let mut current = match self.current(user).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "high-water mark not read; drawdown from this valuation only");
                return;
            }
        };
        // Two tries: a conflict means another instance raised it meanwhile.
        for _ in 0..2 {
            let stored = current
                .as_ref()
                .filter(|m| m.currency == currency)
                .map(|m| m.value);
            if let Some(value) = stored {
                let hwm = value.max(equity);
                view.account.high_water_mark = hwm;
                view.account.drawdown = hwm - equity;
            }
            let Some(raised) =
                HighWaterMark::raised(current.as_ref(), user, &currency, equity, now)
            else {
                return;
            };
            let expected = current.as_ref().map_or(0, |m| m.version);
            let batch = ChangeSet {
                changes: vec![StateChange::HighWater {
                    mark: Box::new(raised.clone()),
                    expected,
                }],
                ..ChangeSet::default()
            };
            match self.committer.commit(batch).await {
                Ok(_) => {
                    self.known.insert(user.clone(), Some(raised));
                    return;
                }
                Err(StoreError::Conflict { .. } | StoreError::Duplicate { .. }) => {
                    self.known.remove(user);
                    match self.current(user).await {
                        Ok(c) => current = c,
                        Err(_) => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(user_id = %user, error = %e, "high-water mark not saved; raised again at the next valuation");
                    return;
                }
            }
        }
    }
}
