//! Market data values: quotes and bars.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::InstrumentId;
use crate::values::{Price, Quantity, decimal_string};

/// Best bid and ask at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Instrument.
    pub instrument_id: InstrumentId,
    /// Best bid.
    pub bid: Price,
    /// Best ask.
    pub ask: Price,
    /// Size at the bid.
    pub bid_size: Quantity,
    /// Size at the ask.
    pub ask_size: Quantity,
    /// Time of the quote.
    pub ts: DateTime<Utc>,
}

impl Quote {
    /// `(bid + ask) / 2`.
    #[must_use]
    pub fn mid(&self) -> Decimal {
        (self.bid.get() + self.ask.get()) / Decimal::TWO
    }
}

/// Bar width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BarInterval {
    /// One minute.
    #[serde(rename = "1m")]
    M1,
    /// Five minutes.
    #[serde(rename = "5m")]
    M5,
    /// Fifteen minutes.
    #[serde(rename = "15m")]
    M15,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// One day.
    #[serde(rename = "1d")]
    D1,
}

impl BarInterval {
    /// Width in seconds.
    #[must_use]
    pub fn seconds(self) -> i64 {
        match self {
            Self::M1 => 60,
            Self::M5 => 300,
            Self::M15 => 900,
            Self::H1 => 3600,
            Self::D1 => 86_400,
        }
    }

    /// The short name (`1m`, `1h`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::H1 => "1h",
            Self::D1 => "1d",
        }
    }
}

impl std::str::FromStr for BarInterval {
    type Err = crate::user::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1m" => Ok(Self::M1),
            "5m" => Ok(Self::M5),
            "15m" => Ok(Self::M15),
            "1h" => Ok(Self::H1),
            "1d" => Ok(Self::D1),
            _ => Err(crate::user::UnknownName(s.to_owned())),
        }
    }
}

/// An OHLCV bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    /// Instrument.
    pub instrument_id: InstrumentId,
    /// Width.
    pub interval: BarInterval,
    /// Start of the bar.
    pub open_time: DateTime<Utc>,
    /// Open.
    pub open: Price,
    /// High.
    pub high: Price,
    /// Low.
    pub low: Price,
    /// Close.
    pub close: Price,
    /// Volume.
    #[serde(with = "decimal_string")]
    pub volume: Decimal,
}
