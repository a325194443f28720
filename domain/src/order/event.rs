//! Order events: every change to an order is one of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{DeniedReason, Order};
use crate::fill::Fill;
use crate::values::{Price, Quantity};

/// A change to an order. Applying the events of an order in sequence rebuilds it.
///
/// Written internally tagged (`{"type": "filled", "fill": …}`); read through
/// [`crate::tagged`], which decodes the variant straight from the input when
/// the tag comes first, as it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderEvent {
    /// The order was created; carries its initial state.
    Initialized {
        /// The order as created (status `initialized`).
        order: Box<Order>,
    },
    /// Pre-trade risk refused the order.
    Denied {
        /// Why.
        reason: DeniedReason,
    },
    /// The order was sent to the venue.
    Submitted,
    /// The venue acknowledged the order.
    Accepted {
        /// The venue's own id for the order, if it gave one.
        #[serde(default)]
        venue_order_id: Option<String>,
    },
    /// The venue refused the order.
    Rejected {
        /// The venue's reason.
        reason: String,
    },
    /// The order was canceled.
    Canceled,
    /// The order's time in force ran out.
    Expired,
    /// A stop order's trigger price traded.
    Triggered,
    /// A modify request was sent.
    PendingUpdate,
    /// A cancel request was sent.
    PendingCancel,
    /// The venue refused a modify request.
    ModifyRejected {
        /// The venue's reason.
        reason: String,
    },
    /// The venue refused a cancel request.
    CancelRejected {
        /// The venue's reason.
        reason: String,
    },
    /// The venue confirmed a modification.
    Updated {
        /// New total quantity.
        #[serde(default)]
        quantity: Option<Quantity>,
        /// New limit price.
        #[serde(default)]
        price: Option<Price>,
        /// New trigger price.
        #[serde(default)]
        trigger_price: Option<Price>,
    },
    /// An execution.
    Filled {
        /// The execution.
        fill: Fill,
    },
}

impl<'de> Deserialize<'de> for OrderEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::tagged::read(d, "an order event")
    }
}

impl<'de> crate::tagged::Mirror<'de> for OrderEvent {
    fn external<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OrderEventDef::deserialize(d)
    }
}

/// [`OrderEvent`] externally tagged, for [`crate::tagged`]: the same
/// variants and fields (the test build derives `Serialize` too, whose match
/// fails to compile when a variant is missing here).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(remote = "OrderEvent", rename_all = "snake_case")]
enum OrderEventDef {
    Initialized {
        order: Box<Order>,
    },
    Denied {
        reason: DeniedReason,
    },
    Submitted,
    Accepted {
        #[serde(default)]
        venue_order_id: Option<String>,
    },
    Rejected {
        reason: String,
    },
    Canceled,
    Expired,
    Triggered,
    PendingUpdate,
    PendingCancel,
    ModifyRejected {
        reason: String,
    },
    CancelRejected {
        reason: String,
    },
    Updated {
        #[serde(default)]
        quantity: Option<Quantity>,
        #[serde(default)]
        price: Option<Price>,
        #[serde(default)]
        trigger_price: Option<Price>,
    },
    Filled {
        fill: Fill,
    },
}

/// The kind of an [`OrderEvent`], without its data; the columns of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// See [`OrderEvent::Initialized`].
    Initialized,
    /// See [`OrderEvent::Denied`].
    Denied,
    /// See [`OrderEvent::Submitted`].
    Submitted,
    /// See [`OrderEvent::Accepted`].
    Accepted,
    /// See [`OrderEvent::Rejected`].
    Rejected,
    /// See [`OrderEvent::Canceled`].
    Canceled,
    /// See [`OrderEvent::Expired`].
    Expired,
    /// See [`OrderEvent::Triggered`].
    Triggered,
    /// See [`OrderEvent::PendingUpdate`].
    PendingUpdate,
    /// See [`OrderEvent::PendingCancel`].
    PendingCancel,
    /// See [`OrderEvent::ModifyRejected`].
    ModifyRejected,
    /// See [`OrderEvent::CancelRejected`].
    CancelRejected,
    /// See [`OrderEvent::Updated`].
    Updated,
    /// See [`OrderEvent::Filled`].
    Filled,
}

impl OrderEventKind {
    /// Every kind.
    pub const ALL: [Self; 14] = [
        Self::Initialized,
        Self::Denied,
        Self::Submitted,
        Self::Accepted,
        Self::Rejected,
        Self::Canceled,
        Self::Expired,
        Self::Triggered,
        Self::PendingUpdate,
        Self::PendingCancel,
        Self::ModifyRejected,
        Self::CancelRejected,
        Self::Updated,
        Self::Filled,
    ];

    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "initialized",
            Self::Denied => "denied",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Triggered => "triggered",
            Self::PendingUpdate => "pending_update",
            Self::PendingCancel => "pending_cancel",
            Self::ModifyRejected => "modify_rejected",
            Self::CancelRejected => "cancel_rejected",
            Self::Updated => "updated",
            Self::Filled => "filled",
        }
    }
}

impl std::fmt::Display for OrderEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OrderEvent {
    /// The event's kind.
    #[must_use]
    pub fn kind(&self) -> OrderEventKind {
        match self {
            Self::Initialized { .. } => OrderEventKind::Initialized,
            Self::Denied { .. } => OrderEventKind::Denied,
            Self::Submitted => OrderEventKind::Submitted,
            Self::Accepted { .. } => OrderEventKind::Accepted,
            Self::Rejected { .. } => OrderEventKind::Rejected,
            Self::Canceled => OrderEventKind::Canceled,
            Self::Expired => OrderEventKind::Expired,
            Self::Triggered => OrderEventKind::Triggered,
            Self::PendingUpdate => OrderEventKind::PendingUpdate,
            Self::PendingCancel => OrderEventKind::PendingCancel,
            Self::ModifyRejected { .. } => OrderEventKind::ModifyRejected,
            Self::CancelRejected { .. } => OrderEventKind::CancelRejected,
            Self::Updated { .. } => OrderEventKind::Updated,
            Self::Filled { .. } => OrderEventKind::Filled,
        }
    }
}

/// An order event with the time it happened, as stored in an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedOrderEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: OrderEvent,
}

#[cfg(test)]
mod mirror_tests {
    use super::OrderEventDef;

    #[test]
    fn the_mirror_reads_what_it_writes() {
        // The mirror's own external form round-trips; its Serialize (derived
        // for tests only) does not compile when a variant is missing.
        for e in crate::tagged::tests::order_events() {
            let v = OrderEventDef::serialize(&e, serde_json::value::Serializer).unwrap();
            assert_eq!(OrderEventDef::deserialize(v).unwrap(), e);
        }
    }
}
