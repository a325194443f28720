//! The comparison a threshold, a detector's floor or a baseline makes: as
//! written in configuration (`>=`) and applied to decimals and statistics.

use ordermon_domain::Decimal;
use serde::{Deserialize, Serialize};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `>`.
    #[serde(rename = ">")]
    Gt,
    /// `>=`.
    #[serde(rename = ">=")]
    Ge,
    /// `<`.
    #[serde(rename = "<")]
    Lt,
    /// `<=`.
    #[serde(rename = "<=")]
    Le,
    /// `==`.
    #[serde(rename = "==")]
    Eq,
    /// `!=`.
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// Applies the comparison to statistics (`false` for NaN).
    #[must_use]
    pub fn holds_f64(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            #[allow(clippy::float_cmp)]
            Self::Eq => value == threshold,
            #[allow(clippy::float_cmp)]
            Self::Ne => value != threshold,
        }
    }

    /// Applies the comparison.
    #[must_use]
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }

    /// As written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}
