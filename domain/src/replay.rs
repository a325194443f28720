//! Rebuilding aggregates from their events: the event log is the source of
//! truth, and replaying it must give back the state that was committed.

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountError};
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

fn refused(index: usize, e: &AccountError) -> ReplayError {
    ReplayError::Refused {
        index,
        reason: e.to_string(),
    }
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
            let index = i + 1;
            match e {
                AccountEvent::Opened { .. } => {
                    return Err(ReplayError::Refused {
                        index,
                        reason: "opened twice".to_owned(),
                    });
                }
                AccountEvent::CashAdjusted { amount, .. } => {
                    account
                        .adjust_cash(amount)
                        .map_err(|e| refused(index, &e))?;
                }
                AccountEvent::Reserved {
                    order_id,
                    request,
                    position_qty,
                } => account
                    .reserve(*order_id, request, *position_qty)
                    .map_err(|e| refused(index, &e))?,
                AccountEvent::Released { order_id, .. } => {
                    account.release(*order_id);
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
                    account.settle_fill(
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
            account.sequence += 1;
        }
        Ok(account)
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
