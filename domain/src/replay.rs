//! Rebuilding aggregates from their events: the event log is the source of
//! truth, and replaying it must give back the state that was committed.

use chrono::{DateTime, Utc};

use crate::account::Account;
use crate::event::{AccountEvent, PositionEvent};
use crate::ids::UserId;
use crate::position::Position;

/// Why a replay failed: the log holds a step the aggregate refuses, which means
/// the log and the projection disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The first account event was not `Opened`.
    #[error("account history must start with opened")]
    NotOpened,
    /// A step was refused.
    #[error("event {index} refused: {reason}")]
    Refused {
        /// Position of the event in the history.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl Account {
    /// Rebuilds an account from its events, oldest first. The result's
    /// `sequence` is the number of events; `version` is left at 0 (it counts
    /// commits, not events).
    ///
    /// # Errors
    /// [`ReplayError`] when the history does not start with `Opened` or a step is refused.
    pub fn replay<'a>(
        user_id: &UserId,
        events: impl IntoIterator<Item = &'a AccountEvent>,
    ) -> Result<Self, ReplayError> {
        let mut iter = events.into_iter();
        let Some(AccountEvent::Opened { account_type }) = iter.next() else {
            return Err(ReplayError::NotOpened);
        };
        let mut account = Self::new(user_id.clone(), *account_type);
        account.sequence = 1;
        for (i, e) in iter.enumerate() {
            account
                .apply_event(e)
                .map_err(|reason| ReplayError::Refused {
                    index: i + 1,
                    reason,
                })?;
        }
        Ok(account)
    }

    /// Applies one event of the account's history after `Opened`, as the
    /// engine did when it recorded it, and counts it in `sequence`.
    ///
    /// # Errors
    /// The reason when the step is refused (a second `Opened`, or a
    /// reservation or withdrawal the account cannot cover), which means the
    /// log and the state it is replayed onto disagree. Nothing changes then.
    pub fn apply_event(&mut self, e: &AccountEvent) -> Result<(), String> {
        match e {
            AccountEvent::Opened { .. } => return Err("opened twice".to_owned()),
            AccountEvent::CashAdjusted { amount, .. } => {
                self.adjust_cash(amount).map_err(|e| e.to_string())?;
            }
            AccountEvent::Reserved {
                order_id,
                request,
                position_qty,
            } => self
                .reserve(*order_id, request, *position_qty)
                .map_err(|e| e.to_string())?,
            AccountEvent::Released { order_id, .. } => {
                self.release(*order_id);
            }
            AccountEvent::FillSettled {
                order_id,
                side,
                quantity,
                price,
                multiplier,
                quote_currency,
                commission,
                ..
            } => {
                self.settle_fill(
                    *order_id,
                    *side,
                    *quantity,
                    *price,
                    *multiplier,
                    quote_currency,
                    commission,
                );
            }
        }
        self.sequence += 1;
        Ok(())
    }
}

impl Position {
    /// Rebuilds a position from its events over a flat starting position
    /// (which carries the instrument's currency and multiplier).
    #[must_use]
    pub fn replay<'a>(
        mut start: Self,
        events: impl IntoIterator<Item = (&'a PositionEvent, DateTime<Utc>)>,
    ) -> Self {
        for (e, at) in events {
            match e {
                PositionEvent::FillApplied {
                    side,
                    quantity,
                    price,
                    commission,
                    ..
                } => {
                    start.apply_fill(*side, *quantity, *price, commission, at);
                }
            }
            start.sequence += 1;
        }
        start
    }
}
