//! Every cell of the transition table, checked on real orders, and the table
//! rendered for `docs/architecture.md` (which must contain it verbatim).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rstest::rstest;

use super::*;
use OrderEventKind as E;
use OrderStatus as S;

/// One row per `(status, event kind)` pair, applied to a real stop-limit order in
/// that status (pending statuses entered from `accepted`, fills of one unit).
/// `Some(s)`: accepted and the order is now in `s`; `None`: refused with
/// `InvalidTransition` and the order is left exactly as it was.
#[rstest]
#[case::initialized_on_initialized(S::Initialized, E::Initialized, None)]
#[case::denied_on_initialized(S::Initialized, E::Denied, Some(S::Denied))]
#[case::submitted_on_initialized(S::Initialized, E::Submitted, Some(S::Submitted))]
#[case::accepted_on_initialized(S::Initialized, E::Accepted, Some(S::Accepted))]
#[case::rejected_on_initialized(S::Initialized, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_initialized(S::Initialized, E::Canceled, Some(S::Canceled))]
#[case::expired_on_initialized(S::Initialized, E::Expired, None)]
#[case::triggered_on_initialized(S::Initialized, E::Triggered, None)]
#[case::pending_update_on_initialized(S::Initialized, E::PendingUpdate, None)]
#[case::pending_cancel_on_initialized(S::Initialized, E::PendingCancel, None)]
#[case::modify_rejected_on_initialized(S::Initialized, E::ModifyRejected, None)]
#[case::cancel_rejected_on_initialized(S::Initialized, E::CancelRejected, None)]
#[case::updated_on_initialized(S::Initialized, E::Updated, None)]
#[case::filled_on_initialized(S::Initialized, E::Filled, None)]
#[case::initialized_on_denied(S::Denied, E::Initialized, None)]
#[case::denied_on_denied(S::Denied, E::Denied, None)]
#[case::submitted_on_denied(S::Denied, E::Submitted, None)]
#[case::accepted_on_denied(S::Denied, E::Accepted, None)]
#[case::rejected_on_denied(S::Denied, E::Rejected, None)]
#[case::canceled_on_denied(S::Denied, E::Canceled, None)]
#[case::expired_on_denied(S::Denied, E::Expired, None)]
#[case::triggered_on_denied(S::Denied, E::Triggered, None)]
#[case::pending_update_on_denied(S::Denied, E::PendingUpdate, None)]
#[case::pending_cancel_on_denied(S::Denied, E::PendingCancel, None)]
#[case::modify_rejected_on_denied(S::Denied, E::ModifyRejected, None)]
#[case::cancel_rejected_on_denied(S::Denied, E::CancelRejected, None)]
#[case::updated_on_denied(S::Denied, E::Updated, None)]
#[case::filled_on_denied(S::Denied, E::Filled, None)]
#[case::initialized_on_submitted(S::Submitted, E::Initialized, None)]
#[case::denied_on_submitted(S::Submitted, E::Denied, None)]
#[case::submitted_on_submitted(S::Submitted, E::Submitted, None)]
#[case::accepted_on_submitted(S::Submitted, E::Accepted, Some(S::Accepted))]
#[case::rejected_on_submitted(S::Submitted, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_submitted(S::Submitted, E::Canceled, Some(S::Canceled))]
#[case::expired_on_submitted(S::Submitted, E::Expired, Some(S::Expired))]
#[case::triggered_on_submitted(S::Submitted, E::Triggered, None)]
#[case::pending_update_on_submitted(S::Submitted, E::PendingUpdate, Some(S::PendingUpdate))]
#[case::pending_cancel_on_submitted(S::Submitted, E::PendingCancel, Some(S::PendingCancel))]
#[case::modify_rejected_on_submitted(S::Submitted, E::ModifyRejected, None)]
#[case::cancel_rejected_on_submitted(S::Submitted, E::CancelRejected, None)]
#[case::updated_on_submitted(S::Submitted, E::Updated, None)]
#[case::filled_on_submitted(S::Submitted, E::Filled, Some(S::PartiallyFilled))]
#[case::initialized_on_accepted(S::Accepted, E::Initialized, None)]
#[case::denied_on_accepted(S::Accepted, E::Denied, None)]
#[case::submitted_on_accepted(S::Accepted, E::Submitted, None)]
#[case::accepted_on_accepted(S::Accepted, E::Accepted, None)]
#[case::rejected_on_accepted(S::Accepted, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_accepted(S::Accepted, E::Canceled, Some(S::Canceled))]
#[case::expired_on_accepted(S::Accepted, E::Expired, Some(S::Expired))]
#[case::triggered_on_accepted(S::Accepted, E::Triggered, Some(S::Triggered))]
#[case::pending_update_on_accepted(S::Accepted, E::PendingUpdate, Some(S::PendingUpdate))]
#[case::pending_cancel_on_accepted(S::Accepted, E::PendingCancel, Some(S::PendingCancel))]
#[case::modify_rejected_on_accepted(S::Accepted, E::ModifyRejected, None)]
#[case::cancel_rejected_on_accepted(S::Accepted, E::CancelRejected, None)]
#[case::updated_on_accepted(S::Accepted, E::Updated, Some(S::Accepted))]
#[case::filled_on_accepted(S::Accepted, E::Filled, Some(S::PartiallyFilled))]
#[case::initialized_on_rejected(S::Rejected, E::Initialized, None)]
#[case::denied_on_rejected(S::Rejected, E::Denied, None)]
#[case::submitted_on_rejected(S::Rejected, E::Submitted, None)]
#[case::accepted_on_rejected(S::Rejected, E::Accepted, None)]
#[case::rejected_on_rejected(S::Rejected, E::Rejected, None)]
#[case::canceled_on_rejected(S::Rejected, E::Canceled, None)]
#[case::expired_on_rejected(S::Rejected, E::Expired, None)]
#[case::triggered_on_rejected(S::Rejected, E::Triggered, None)]
#[case::pending_update_on_rejected(S::Rejected, E::PendingUpdate, None)]
#[case::pending_cancel_on_rejected(S::Rejected, E::PendingCancel, None)]
#[case::modify_rejected_on_rejected(S::Rejected, E::ModifyRejected, None)]
#[case::cancel_rejected_on_rejected(S::Rejected, E::CancelRejected, None)]
#[case::updated_on_rejected(S::Rejected, E::Updated, None)]
#[case::filled_on_rejected(S::Rejected, E::Filled, None)]
#[case::initialized_on_canceled(S::Canceled, E::Initialized, None)]
#[case::denied_on_canceled(S::Canceled, E::Denied, None)]
#[case::submitted_on_canceled(S::Canceled, E::Submitted, None)]
#[case::accepted_on_canceled(S::Canceled, E::Accepted, None)]
#[case::rejected_on_canceled(S::Canceled, E::Rejected, None)]
#[case::canceled_on_canceled(S::Canceled, E::Canceled, None)]
#[case::expired_on_canceled(S::Canceled, E::Expired, None)]
#[case::triggered_on_canceled(S::Canceled, E::Triggered, None)]
#[case::pending_update_on_canceled(S::Canceled, E::PendingUpdate, None)]
#[case::pending_cancel_on_canceled(S::Canceled, E::PendingCancel, None)]
#[case::modify_rejected_on_canceled(S::Canceled, E::ModifyRejected, None)]
#[case::cancel_rejected_on_canceled(S::Canceled, E::CancelRejected, None)]
#[case::updated_on_canceled(S::Canceled, E::Updated, None)]
#[case::filled_on_canceled(S::Canceled, E::Filled, Some(S::Canceled))]
#[case::initialized_on_expired(S::Expired, E::Initialized, None)]
#[case::denied_on_expired(S::Expired, E::Denied, None)]
#[case::submitted_on_expired(S::Expired, E::Submitted, None)]
#[case::accepted_on_expired(S::Expired, E::Accepted, None)]
#[case::rejected_on_expired(S::Expired, E::Rejected, None)]
#[case::canceled_on_expired(S::Expired, E::Canceled, None)]
#[case::expired_on_expired(S::Expired, E::Expired, None)]
#[case::triggered_on_expired(S::Expired, E::Triggered, None)]
#[case::pending_update_on_expired(S::Expired, E::PendingUpdate, None)]
#[case::pending_cancel_on_expired(S::Expired, E::PendingCancel, None)]
#[case::modify_rejected_on_expired(S::Expired, E::ModifyRejected, None)]
#[case::cancel_rejected_on_expired(S::Expired, E::CancelRejected, None)]
#[case::updated_on_expired(S::Expired, E::Updated, None)]
#[case::filled_on_expired(S::Expired, E::Filled, None)]
#[case::initialized_on_triggered(S::Triggered, E::Initialized, None)]
#[case::denied_on_triggered(S::Triggered, E::Denied, None)]
#[case::submitted_on_triggered(S::Triggered, E::Submitted, None)]
#[case::accepted_on_triggered(S::Triggered, E::Accepted, None)]
#[case::rejected_on_triggered(S::Triggered, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_triggered(S::Triggered, E::Canceled, Some(S::Canceled))]
#[case::expired_on_triggered(S::Triggered, E::Expired, Some(S::Expired))]
#[case::triggered_on_triggered(S::Triggered, E::Triggered, None)]
#[case::pending_update_on_triggered(S::Triggered, E::PendingUpdate, Some(S::PendingUpdate))]
#[case::pending_cancel_on_triggered(S::Triggered, E::PendingCancel, Some(S::PendingCancel))]
#[case::modify_rejected_on_triggered(S::Triggered, E::ModifyRejected, None)]
#[case::cancel_rejected_on_triggered(S::Triggered, E::CancelRejected, None)]
#[case::updated_on_triggered(S::Triggered, E::Updated, Some(S::Triggered))]
#[case::filled_on_triggered(S::Triggered, E::Filled, Some(S::PartiallyFilled))]
#[case::initialized_on_pending_update(S::PendingUpdate, E::Initialized, None)]
#[case::denied_on_pending_update(S::PendingUpdate, E::Denied, None)]
#[case::submitted_on_pending_update(S::PendingUpdate, E::Submitted, None)]
#[case::accepted_on_pending_update(S::PendingUpdate, E::Accepted, None)]
#[case::rejected_on_pending_update(S::PendingUpdate, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_pending_update(S::PendingUpdate, E::Canceled, Some(S::Canceled))]
#[case::expired_on_pending_update(S::PendingUpdate, E::Expired, Some(S::Expired))]
#[case::triggered_on_pending_update(S::PendingUpdate, E::Triggered, Some(S::PendingUpdate))]
#[case::pending_update_on_pending_update(
    S::PendingUpdate,
    E::PendingUpdate,
    Some(S::PendingUpdate)
)]
#[case::pending_cancel_on_pending_update(
    S::PendingUpdate,
    E::PendingCancel,
    Some(S::PendingCancel)
)]
#[case::modify_rejected_on_pending_update(S::PendingUpdate, E::ModifyRejected, Some(S::Accepted))]
#[case::cancel_rejected_on_pending_update(S::PendingUpdate, E::CancelRejected, None)]
#[case::updated_on_pending_update(S::PendingUpdate, E::Updated, Some(S::Accepted))]
#[case::filled_on_pending_update(S::PendingUpdate, E::Filled, Some(S::PendingUpdate))]
#[case::initialized_on_pending_cancel(S::PendingCancel, E::Initialized, None)]
#[case::denied_on_pending_cancel(S::PendingCancel, E::Denied, None)]
#[case::submitted_on_pending_cancel(S::PendingCancel, E::Submitted, None)]
#[case::accepted_on_pending_cancel(S::PendingCancel, E::Accepted, None)]
#[case::rejected_on_pending_cancel(S::PendingCancel, E::Rejected, Some(S::Rejected))]
#[case::canceled_on_pending_cancel(S::PendingCancel, E::Canceled, Some(S::Canceled))]
#[case::expired_on_pending_cancel(S::PendingCancel, E::Expired, Some(S::Expired))]
#[case::triggered_on_pending_cancel(S::PendingCancel, E::Triggered, Some(S::PendingCancel))]
#[case::pending_update_on_pending_cancel(S::PendingCancel, E::PendingUpdate, None)]
#[case::pending_cancel_on_pending_cancel(
    S::PendingCancel,
    E::PendingCancel,
    Some(S::PendingCancel)
)]
#[case::modify_rejected_on_pending_cancel(
    S::PendingCancel,
    E::ModifyRejected,
    Some(S::PendingCancel)
)]
#[case::cancel_rejected_on_pending_cancel(S::PendingCancel, E::CancelRejected, Some(S::Accepted))]
#[case::updated_on_pending_cancel(S::PendingCancel, E::Updated, Some(S::PendingCancel))]
#[case::filled_on_pending_cancel(S::PendingCancel, E::Filled, Some(S::PendingCancel))]
#[case::initialized_on_partially_filled(S::PartiallyFilled, E::Initialized, None)]
#[case::denied_on_partially_filled(S::PartiallyFilled, E::Denied, None)]
#[case::submitted_on_partially_filled(S::PartiallyFilled, E::Submitted, None)]
#[case::accepted_on_partially_filled(S::PartiallyFilled, E::Accepted, None)]
#[case::rejected_on_partially_filled(S::PartiallyFilled, E::Rejected, None)]
#[case::canceled_on_partially_filled(S::PartiallyFilled, E::Canceled, Some(S::Canceled))]
#[case::expired_on_partially_filled(S::PartiallyFilled, E::Expired, Some(S::Expired))]
#[case::triggered_on_partially_filled(S::PartiallyFilled, E::Triggered, None)]
#[case::pending_update_on_partially_filled(
    S::PartiallyFilled,
    E::PendingUpdate,
    Some(S::PendingUpdate)
)]
#[case::pending_cancel_on_partially_filled(
    S::PartiallyFilled,
    E::PendingCancel,
    Some(S::PendingCancel)
)]
#[case::modify_rejected_on_partially_filled(S::PartiallyFilled, E::ModifyRejected, None)]
#[case::cancel_rejected_on_partially_filled(S::PartiallyFilled, E::CancelRejected, None)]
#[case::updated_on_partially_filled(S::PartiallyFilled, E::Updated, Some(S::PartiallyFilled))]
#[case::filled_on_partially_filled(S::PartiallyFilled, E::Filled, Some(S::PartiallyFilled))]
#[case::initialized_on_filled(S::Filled, E::Initialized, None)]
#[case::denied_on_filled(S::Filled, E::Denied, None)]
#[case::submitted_on_filled(S::Filled, E::Submitted, None)]
#[case::accepted_on_filled(S::Filled, E::Accepted, None)]
#[case::rejected_on_filled(S::Filled, E::Rejected, None)]
#[case::canceled_on_filled(S::Filled, E::Canceled, None)]
#[case::expired_on_filled(S::Filled, E::Expired, None)]
#[case::triggered_on_filled(S::Filled, E::Triggered, None)]
#[case::pending_update_on_filled(S::Filled, E::PendingUpdate, None)]
#[case::pending_cancel_on_filled(S::Filled, E::PendingCancel, None)]
#[case::modify_rejected_on_filled(S::Filled, E::ModifyRejected, None)]
#[case::cancel_rejected_on_filled(S::Filled, E::CancelRejected, None)]
#[case::updated_on_filled(S::Filled, E::Updated, None)]
#[case::filled_on_filled(S::Filled, E::Filled, Some(S::Filled))]
fn every_cell(
    #[case] from: OrderStatus,
    #[case] kind: OrderEventKind,
    #[case] to: Option<OrderStatus>,
) {
    let mut order = order_in(from);
    let before = order.clone();
    let event = event_of(kind, &order);
    assert_eq!(event.kind(), kind);
    let result = order.apply(&event, at(60));
    match to {
        Some(expected) => {
            assert_eq!(result, Ok(Applied::Changed));
            assert_eq!(order.status, expected);
            assert_eq!(order.sequence, before.sequence + 1);
            assert_eq!(order.updated_at, at(60));
        }
        None => {
            let refused = Err(OrderError::InvalidTransition { from, event: kind });
            assert_eq!(result, refused);
            assert_eq!(before.can_apply(kind).map(|_| ()), refused.map(|_| ()));
            assert_eq!(order, before, "a refused event must change nothing");
        }
    }
}

/// The fixture's parameters: a stop order, pending statuses entered from accepted.
fn fixture_previous(status: OrderStatus) -> Option<OrderStatus> {
    status.is_pending().then_some(S::Accepted)
}

/// The case table above lists 53 allowed cells. If the real table gains or loses
/// one, this fails so the case table (and the architecture doc) get updated too.
#[test]
fn allowed_cell_count_matches_the_case_table() {
    let allowed = S::ALL
        .iter()
        .flat_map(|s| E::ALL.iter().map(move |e| (*s, *e)))
        .filter(|(s, e)| transition(*s, fixture_previous(*s), *e, true) != Transition::Refused)
        .count();
    assert_eq!(allowed, 53);
}

#[test]
fn terminal_statuses_refuse_everything_but_fills() {
    for status in S::ALL.into_iter().filter(|s| s.is_terminal()) {
        for kind in E::ALL {
            for is_stop in [false, true] {
                let t = transition(status, None, kind, is_stop);
                let documented = kind == E::Filled && matches!(status, S::Canceled | S::Filled);
                assert_eq!(t == Transition::Refused, !documented, "{status} + {kind}");
            }
        }
    }
}

/// What a pending order may remember, for rendering the conditional cells.
const REMEMBERED: [Option<OrderStatus>; 4] = [
    Some(S::Submitted),
    Some(S::Accepted),
    Some(S::Triggered),
    Some(S::PartiallyFilled),
];

fn outcome_text(status: OrderStatus, t: Transition) -> String {
    match t {
        Transition::To(s) | Transition::Pending(s) => s.as_str().to_owned(),
        Transition::Back => "previous".to_owned(),
        Transition::Remember(s) => format!("{status} (remembers {s})"),
        Transition::Stay => status.as_str().to_owned(),
        Transition::Fill => match status {
            S::Filled => "filled (overfill)".to_owned(),
            s if s.is_pending() || s == S::Canceled => format!("{s} / filled"),
            _ => "partially_filled / filled".to_owned(),
        },
        Transition::Refused => "—".to_owned(),
    }
}

/// One cell: the outcome, with the condition in brackets when it only holds for
/// stop orders or for some remembered statuses.
fn cell(status: OrderStatus, kind: OrderEventKind) -> String {
    let previous: &[Option<OrderStatus>] = if status.is_pending() {
        &REMEMBERED
    } else {
        &[None]
    };
    let mut combos = 0;
    let mut allowed = Vec::new();
    for is_stop in [false, true] {
        for prev in previous {
            combos += 1;
            let t = transition(status, *prev, kind, is_stop);
            if t != Transition::Refused {
                allowed.push((is_stop, *prev, t));
            }
        }
    }
    let Some(&(_, _, t)) = allowed.first() else {
        return "—".to_owned();
    };
    assert!(
        allowed.iter().all(|a| a.2 == t),
        "{status} + {kind} has several outcomes; the renderer needs to learn them"
    );
    let mut text = outcome_text(status, t);
    if allowed.len() < combos {
        let mut conditions = Vec::new();
        if allowed.iter().all(|a| a.0) {
            conditions.push("stop".to_owned());
        }
        let prevs: BTreeSet<OrderStatus> = allowed.iter().filter_map(|a| a.1).collect();
        if status.is_pending() && prevs.len() < previous.len() {
            let names: Vec<&str> = prevs.iter().map(|s| s.as_str()).collect();
            conditions.push(format!("was {}", names.join("/")));
        }
        assert!(
            !conditions.is_empty(),
            "{status} + {kind}: unexplained condition"
        );
        let _ = write!(text, " [{}]", conditions.join(", "));
    }
    text
}

/// The table as markdown: rows are statuses, columns are event kinds.
pub(super) fn render_table() -> String {
    let mut out = String::from("| status \\ event |");
    for kind in E::ALL {
        let _ = write!(out, " {kind} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(E::ALL.len()));
    out.push('\n');
    for status in S::ALL {
        let _ = write!(out, "| **{status}** |");
        for kind in E::ALL {
            let _ = write!(out, " {} |", cell(status, kind));
        }
        out.push('\n');
    }
    out
}

#[test]
fn rendered_cells_explain_the_conditional_edges() {
    assert_eq!(cell(S::Accepted, E::Triggered), "triggered [stop]");
    assert_eq!(
        cell(S::PendingCancel, E::Accepted),
        "pending_cancel (remembers accepted) [was submitted]"
    );
    assert_eq!(
        cell(S::PendingUpdate, E::Triggered),
        "pending_update (remembers triggered) [stop, was accepted]"
    );
    assert_eq!(cell(S::Canceled, E::Filled), "canceled / filled");
    assert_eq!(cell(S::Denied, E::Submitted), "—");
}

/// `docs/architecture.md` shows the real table, so the document cannot drift
/// from the code. On failure, paste the table printed below into the document.
#[test]
fn architecture_doc_contains_the_rendered_table() {
    let table = render_table();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/architecture.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        doc.contains(&table),
        "docs/architecture.md must contain the order state table verbatim:\n\n{table}"
    );
}
