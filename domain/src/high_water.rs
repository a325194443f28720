//! The portfolio high-water mark: the highest equity a user's account has been
//! seen at, in its first currency, from which drawdown is measured.
//!
//! Equity is cash plus positions valued at market marks, and marks are quotes,
//! not events: the mark is therefore *observed* state, kept as its own
//! projection (one row per user) rather than rebuilt from the event log. It
//! only ever rises, so instances that observe different equities converge on
//! the highest one through ordinary version-checked writes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::values::{Currency, decimal_string};

/// A user's high-water mark as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWaterMark {
    /// The owner.
    pub user_id: UserId,
    /// The currency equity is measured in (the account's first currency).
    pub currency: Currency,
    /// The highest equity observed.
    #[serde(with = "decimal_string")]
    pub value: Decimal,
    /// When it was last raised.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    pub version: u64,
}

impl HighWaterMark {
    /// The mark after observing `equity` in `currency` at `now`: raised (with
    /// the next version) when the equity is higher or the currency changed,
    /// `None` when the stored mark already covers it.
    #[must_use]
    pub fn raised(
        current: Option<&Self>,
        user_id: &UserId,
        currency: &Currency,
        equity: Decimal,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        match current {
            Some(c) if &c.currency == currency && c.value >= equity => None,
            _ => Some(Self {
                user_id: user_id.clone(),
                currency: currency.clone(),
                value: equity,
                updated_at: now,
                version: current.map_or(1, |c| c.version + 1),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_rises_and_follows_a_currency_change() {
        let user = UserId::new("alice").unwrap();
        let usd = Currency::new("USD").unwrap();
        let now = Utc::now();
        let first = HighWaterMark::raised(None, &user, &usd, Decimal::from(100), now).unwrap();
        assert_eq!((first.value, first.version), (Decimal::from(100), 1));
        assert!(HighWaterMark::raised(Some(&first), &user, &usd, Decimal::from(90), now).is_none());
        assert!(
            HighWaterMark::raised(Some(&first), &user, &usd, Decimal::from(100), now).is_none()
        );
        let up = HighWaterMark::raised(Some(&first), &user, &usd, Decimal::from(120), now).unwrap();
        assert_eq!((up.value, up.version), (Decimal::from(120), 2));
        let hkd = Currency::new("HKD").unwrap();
        let moved = HighWaterMark::raised(Some(&up), &user, &hkd, Decimal::from(5), now).unwrap();
        assert_eq!((moved.value, moved.version), (Decimal::from(5), 3));
    }
}
