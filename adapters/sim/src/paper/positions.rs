//! What the paper venue knows of its users' net positions, so that a
//! `reduce_only` order never fills past flat: the owner's figure (sent after
//! each fill it applies and before each `reduce_only` order it sends) plus
//! this venue's own fills the owner has not applied yet.
//!
//! The owner applies fills in its own order, which need not be the order the
//! venue made them in (fills returned from a submission overtake fills
//! delivered through the sink): each confirmation names the fill it follows,
//! and only that fill leaves the pending list.

use std::collections::{HashMap, VecDeque};

use ordermon_domain::ids::{InstrumentId, TradeId, UserId};
use ordermon_domain::order::Side;
use rust_decimal::Decimal;

/// Own fills remembered per position while the owner catches up; beyond
/// this the oldest are taken as applied (an owner that far behind has
/// reloaded, and its next figure is the truth).
const MAX_PENDING: usize = 4096;

#[derive(Debug, Default)]
struct Net {
    /// The owner's last figure.
    confirmed: Decimal,
    /// This venue's fills since, signed, not yet applied by the owner.
    pending: VecDeque<(TradeId, Decimal)>,
}

impl Net {
    fn current(&self) -> Decimal {
        self.pending
            .iter()
            .fold(self.confirmed, |n, (_, q)| n.saturating_add(*q))
    }
}

/// Net positions by user and instrument.
#[derive(Debug, Default)]
pub(super) struct Positions {
    nets: HashMap<(UserId, InstrumentId), Net>,
}

impl Positions {
    /// The owner's figure after applying `trade` (or before sending an order).
    pub(super) fn confirm(
        &mut self,
        user: &UserId,
        instrument: &InstrumentId,
        net: Decimal,
        trade: Option<&TradeId>,
    ) {
        let key = (user.clone(), instrument.clone());
        let entry = self.nets.entry(key).or_default();
        entry.confirmed = net;
        if let Some(trade) = trade {
            entry.pending.retain(|(t, _)| t != trade);
        }
        if entry.confirmed.is_zero() && entry.pending.is_empty() {
            // Flat and settled: the absence of an entry says as much.
            self.nets.remove(&(user.clone(), instrument.clone()));
        }
    }

    /// A fill this venue made: `side` bought or sold `quantity`.
    pub(super) fn filled(
        &mut self,
        user: &UserId,
        instrument: &InstrumentId,
        trade: TradeId,
        side: Side,
        quantity: Decimal,
    ) {
        let signed = match side {
            Side::Buy => quantity,
            Side::Sell => -quantity,
        };
        let entry = self
            .nets
            .entry((user.clone(), instrument.clone()))
            .or_default();
        entry.pending.push_back((trade, signed));
        while entry.pending.len() > MAX_PENDING {
            if let Some((_, q)) = entry.pending.pop_front() {
                entry.confirmed = entry.confirmed.saturating_add(q);
            }
        }
    }

    /// How much an order on `side` may fill and still only reduce the
    /// position: the long quantity for a sell, the short one for a buy.
    pub(super) fn reducible(
        &self,
        user: &UserId,
        instrument: &InstrumentId,
        side: Side,
    ) -> Decimal {
        let net = self
            .nets
            .get(&(user.clone(), instrument.clone()))
            .map_or(Decimal::ZERO, Net::current);
        match side {
            Side::Sell => net.max(Decimal::ZERO),
            Side::Buy => (-net).max(Decimal::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn ids() -> (UserId, InstrumentId) {
        (
            UserId::new("alice").unwrap_or_else(|_| unreachable!()),
            InstrumentId::new("ACME.SIM").unwrap_or_else(|_| unreachable!()),
        )
    }

    fn trade(n: u32) -> TradeId {
        TradeId::new(format!("T-{n}")).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn own_fills_count_until_the_owner_applies_them_in_any_order() {
        let (u, i) = ids();
        let mut p = Positions::default();
        assert_eq!(p.reducible(&u, &i, Side::Sell), Decimal::ZERO);
        p.confirm(&u, &i, dec!(10), None);
        assert_eq!(p.reducible(&u, &i, Side::Sell), dec!(10));
        assert_eq!(p.reducible(&u, &i, Side::Buy), Decimal::ZERO);
        p.filled(&u, &i, trade(1), Side::Sell, dec!(4));
        p.filled(&u, &i, trade(2), Side::Sell, dec!(3));
        assert_eq!(p.reducible(&u, &i, Side::Sell), dec!(3));
        // The owner applies the second fill first: 10 - 3 = 7.
        p.confirm(&u, &i, dec!(7), Some(&trade(2)));
        assert_eq!(p.reducible(&u, &i, Side::Sell), dec!(3));
        p.confirm(&u, &i, dec!(3), Some(&trade(1)));
        assert_eq!(p.reducible(&u, &i, Side::Sell), dec!(3));
        // Short: a buy reduces.
        p.confirm(&u, &i, dec!(-5), None);
        assert_eq!(p.reducible(&u, &i, Side::Buy), dec!(5));
        assert_eq!(p.reducible(&u, &i, Side::Sell), Decimal::ZERO);
        // Flat and settled leaves nothing behind.
        p.confirm(&u, &i, Decimal::ZERO, None);
        assert!(p.nets.is_empty());
    }
}
