//! The execution venue port and the execution reports venues send back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fill::LiquiditySide;
use crate::ids::{InstrumentId, OrderId, TradeId, UserId};
use crate::order::Order;
use crate::values::{Money, Price, Quantity};

/// A requested modification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderChange {
    /// New total quantity.
    #[serde(default)]
    pub quantity: Option<Quantity>,
    /// New limit price.
    #[serde(default)]
    pub price: Option<Price>,
    /// New trigger price.
    #[serde(default)]
    pub trigger_price: Option<Price>,
}

/// What a venue reports about an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutionReportKind {
    /// Acknowledged.
    Accepted {
        /// The venue's id.
        #[serde(default)]
        venue_order_id: Option<String>,
    },
    /// Refused.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Canceled.
    Canceled,
    /// Expired.
    Expired,
    /// Stop triggered.
    Triggered,
    /// Modification confirmed.
    Updated {
        /// New change.
        #[serde(flatten)]
        change: OrderChange,
    },
    /// Modification refused.
    ModifyRejected {
        /// Why.
        reason: String,
    },
    /// Cancel refused.
    CancelRejected {
        /// Why.
        reason: String,
    },
    /// An execution.
    Fill {
        /// Execution id.
        trade_id: TradeId,
        /// Quantity.
        quantity: Quantity,
        /// Price.
        price: Price,
        /// Commission.
        commission: Money,
        /// Maker/taker.
        liquidity_side: LiquiditySide,
    },
}

/// One report from a venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Our order id.
    pub order_id: OrderId,
    /// Its user.
    pub user_id: UserId,
    /// What happened.
    #[serde(flatten)]
    pub kind: ExecutionReportKind,
    /// When it happened at the venue.
    pub ts_event: DateTime<Utc>,
}

/// Why a venue request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    /// Not connected.
    #[error("venue unavailable: {0}")]
    Unavailable(String),
    /// The venue refused the request outright.
    #[error("venue refused: {0}")]
    Refused(String),
}

/// What a venue made of the open orders handed back to it
/// ([`ExecutionVenue::adopt`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Orders it took back: resting again, or handled now.
    pub taken: usize,
    /// Orders it does not know and cannot take back, with why; each is
    /// reported expired through the sink.
    pub unknown: Vec<(OrderId, String)>,
}

/// Where venues deliver their reports (the application's order owners).
#[async_trait]
pub trait ExecutionReportSink: Send + Sync {
    /// Takes one report. Waits when the receiver is busy (backpressure).
    async fn report(&self, report: ExecutionReport);
}

/// A trading venue (paper, or an external gateway).
#[async_trait]
pub trait ExecutionVenue: Send + Sync + std::fmt::Debug {
    /// Venue name.
    fn name(&self) -> &str;
    /// Sends a new order. Returns the reports the venue knows at once (e.g. an
    /// immediate ack and fills of a paper venue with no latency); later reports
    /// arrive through the sink.
    ///
    /// # Errors
    /// See [`VenueError`].
    async fn submit(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError>;
    /// Requests a modification; returns immediate reports as for `submit`.
    ///
    /// # Errors
    /// See [`VenueError`].
    async fn modify(
        &self,
        order: &Order,
        change: &OrderChange,
    ) -> Result<Vec<ExecutionReport>, VenueError>;
    /// Requests a cancel; returns immediate reports as for `submit`.
    ///
    /// # Errors
    /// See [`VenueError`].
    async fn cancel(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError>;
    /// The user's net position in `instrument` (signed: long positive) as
    /// the owner holds it: after applying `trade`, a fill this venue reported,
    /// or, with `None`, before sending a `reduce_only` order. A venue that
    /// honours `reduce_only` at fill time keeps it; others ignore it.
    fn position_changed(
        &self,
        _user: &UserId,
        _instrument: &InstrumentId,
        _net: rust_decimal::Decimal,
        _trade: Option<&TradeId>,
    ) {
    }
    /// Reconciliation after a restart or an owner move: the orders the store
    /// holds open for one user, handed to the venue when the user's owner
    /// starts. A venue that forgot them (an in-process paper venue after a
    /// restart) takes them back as they were and answers what was left
    /// pending; a venue that kept them changes nothing. Reports go through
    /// the sink, never back to the caller (the owner is not listening yet).
    /// Returns what the venue took back and what it does not know: an order
    /// it cannot work any more is reported expired through the sink, and
    /// named in [`Adoption::unknown`] with why.
    ///
    /// # Errors
    /// See [`VenueError`].
    async fn adopt(&self, _orders: &[Order]) -> Result<Adoption, VenueError> {
        Ok(Adoption::default())
    }
}
