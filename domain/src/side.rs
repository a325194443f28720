//! Buy or sell: the side of an order, of a fill, of the trade a position
//! books and of the reservation an order holds. Below every aggregate, so
//! each can name it without depending on the order.

use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells.
    #[must_use]
    pub fn sign(self) -> rust_decimal::Decimal {
        match self {
            Self::Buy => rust_decimal::Decimal::ONE,
            Self::Sell => rust_decimal::Decimal::NEGATIVE_ONE,
        }
    }

    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
