//! The order lifecycle as one table: `(status, event kind) -> outcome`.
//!
//! Every arm for a status is listed together, and each status ends with its own
//! `(Status, _) => Refused` row instead of one global wildcard: adding a thirteenth
//! status fails to compile until someone decides its row. `docs/architecture.md`
//! renders the same table for readers.

use super::event::OrderEventKind as E;
use super::status::OrderStatus::{self, *};

/// What the table says an event does to an order in a given status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to the given status (pending memory is cleared).
    To(OrderStatus),
    /// Enter a pending status, remembering the current (non-pending) status.
    Pending(OrderStatus),
    /// Leave a pending status, returning to the remembered one.
    Back,
    /// Stay in the pending status but change what it remembers (e.g. the venue's
    /// ack arrives while a cancel of a submitted order is in flight).
    Remember(OrderStatus),
    /// Stay in the current status (a repeated request, or a venue-side amend).
    Stay,
    /// A fill: the new status is decided by the quantities (partially filled or
    /// filled; a pending status stays pending; `Canceled` stays canceled unless the
    /// late fill completes the order; `Filled` records an overfill).
    Fill,
    /// Not allowed: the caller gets a typed `InvalidTransition` error.
    Refused,
}

/// Looks up the transition for `event` on an order in `status`.
///
/// `is_stop` says whether the order is a stop type (only those can trigger) and
/// `previous` is the status a pending order remembers.
#[must_use]
pub fn transition(
    status: OrderStatus,
    previous: Option<OrderStatus>,
    event: E,
    is_stop: bool,
) -> Transition {
    use Transition::*;
    match (status, event) {
        // Fresh order: risk denies it or it is sent. In `external` venue mode the
        // gateway may report an order we never sent, so accept/reject/cancel are
        // valid straight from initialized. A fill is not: the order must be
        // submitted or acknowledged first.
        (Initialized, E::Denied) => To(Denied),
        (Initialized, E::Submitted) => To(Submitted),
        (Initialized, E::Accepted) => To(Accepted),
        (Initialized, E::Rejected) => To(Rejected),
        (Initialized, E::Canceled) => To(Canceled),
        (Initialized, _) => Refused,

        (Denied, _) => Refused,

        (Submitted, E::Accepted) => To(Accepted),
        (Submitted, E::Rejected) => To(Rejected),
        // IOC/FOK orders can be canceled by the venue before any ack is sent.
        (Submitted, E::Canceled) => To(Canceled),
        (Submitted, E::Expired) => To(Expired),
        (Submitted, E::PendingUpdate) => Pending(PendingUpdate),
        (Submitted, E::PendingCancel) => Pending(PendingCancel),
        // A fill may overtake the ack on the wire.
        (Submitted, E::Filled) => Fill,
        (Submitted, _) => Refused,

        (Accepted, E::Rejected) => To(Rejected),
        (Accepted, E::Canceled) => To(Canceled),
        (Accepted, E::Expired) => To(Expired),
        (Accepted, E::Triggered) if is_stop => To(Triggered),
        (Accepted, E::PendingUpdate) => Pending(PendingUpdate),
        (Accepted, E::PendingCancel) => Pending(PendingCancel),
        // A venue may amend a working order on its own (e.g. a corporate action).
        (Accepted, E::Updated) => Stay,
        (Accepted, E::Filled) => Fill,
        (Accepted, _) => Refused,

        // A triggered stop-limit can still be rejected by the venue.
        (Triggered, E::Rejected) => To(Rejected),
        (Triggered, E::Canceled) => To(Canceled),
        (Triggered, E::Expired) => To(Expired),
        (Triggered, E::PendingUpdate) => Pending(PendingUpdate),
        (Triggered, E::PendingCancel) => Pending(PendingCancel),
        (Triggered, E::Updated) => Stay,
        (Triggered, E::Filled) => Fill,
        (Triggered, _) => Refused,

        (PendingUpdate, E::Updated) => Back,
        (PendingUpdate, E::ModifyRejected) => Back,
        // A second modify while one is in flight keeps waiting.
        (PendingUpdate, E::PendingUpdate) => Stay,
        // Cancel requested while a modify is in flight: wait for the cancel,
        // keep remembering the working status.
        (PendingUpdate, E::PendingCancel) => Pending(PendingCancel),
        (PendingUpdate, E::Accepted) if previous == Some(Submitted) => Remember(Accepted),
        (PendingUpdate, E::Triggered) if is_stop && previous == Some(Accepted) => {
            Remember(Triggered)
        }
        (PendingUpdate, E::Rejected) => To(Rejected),
        (PendingUpdate, E::Canceled) => To(Canceled),
        (PendingUpdate, E::Expired) => To(Expired),
        (PendingUpdate, E::Filled) => Fill,
        (PendingUpdate, _) => Refused,

        (PendingCancel, E::CancelRejected) => Back,
        (PendingCancel, E::Canceled) => To(Canceled),
        // A repeated cancel request is idempotent.
        (PendingCancel, E::PendingCancel) => Stay,
        // Replies to a modify sent before the cancel: apply them, keep waiting.
        (PendingCancel, E::Updated) => Stay,
        (PendingCancel, E::ModifyRejected) => Stay,
        (PendingCancel, E::Accepted) if previous == Some(Submitted) => Remember(Accepted),
        (PendingCancel, E::Triggered) if is_stop && previous == Some(Accepted) => {
            Remember(Triggered)
        }
        (PendingCancel, E::Rejected) => To(Rejected),
        (PendingCancel, E::Expired) => To(Expired),
        (PendingCancel, E::Filled) => Fill,
        (PendingCancel, _) => Refused,

        (PartiallyFilled, E::Canceled) => To(Canceled),
        (PartiallyFilled, E::Expired) => To(Expired),
        (PartiallyFilled, E::PendingUpdate) => Pending(PendingUpdate),
        (PartiallyFilled, E::PendingCancel) => Pending(PendingCancel),
        (PartiallyFilled, E::Updated) => Stay,
        (PartiallyFilled, E::Filled) => Fill,
        (PartiallyFilled, _) => Refused,

        // The documented exception to terminal statuses: a fill that executed at
        // the venue before our cancel reached the book arrives after the cancel
        // confirmation. Real venues do this; dropping it would lose a trade.
        (Canceled, E::Filled) => Fill,
        (Canceled, _) => Refused,

        // A fill with a new trade id on a filled order is an overfill: recorded on
        // the order (and alerted by the application), status stays filled.
        (Filled, E::Filled) => Fill,
        (Filled, _) => Refused,

        (Rejected, _) => Refused,
        (Expired, _) => Refused,
    }
}
