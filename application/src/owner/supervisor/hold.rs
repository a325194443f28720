//! The owner's side of a strategy's hold on its lane.
//!
//! A strategy that decided in its lane (or panicked there) holds it
//! (`SlotState::holds`, counted by the lane): the lane stops calling it and
//! keeps the latest quote of each instrument for it. The owner ends a hold
//! once it has executed the decision: the quotes that arrived meanwhile are
//! replayed to the strategy in the owner, one by one ([`next_replay`], and
//! [`replay_decided`] when one of them led to a decision the owner executed
//! at once), and the lane takes over with the view of the state that
//! resulted. A hold with another decision still on its way to the owner is
//! only counted down: that decision's release replays. So a strategy never
//! decides twice on a state that does not show what it last asked for.

use std::sync::Arc;

use ordermon_domain::market::Quote;

use crate::owner::lanes::{Slot, UserView};

/// The next quote to replay to a held strategy, or `None` when this hold is
/// over (the lane then shows the strategy `view`).
pub(super) fn next_replay(slot: &Slot, view: Arc<UserView>) -> Option<Arc<Quote>> {
    let mut st = slot.state.lock();
    if st.holds > 1 {
        // Another decision is still on its way to this owner.
        st.holds -= 1;
        return None;
    }
    match st.pending.pop_front() {
        Some(q) if !st.stopped => Some(q),
        _ => {
            st.pending.clear();
            st.holds = 0;
            st.view = view;
            None
        }
    }
}

/// The replayed quote led to a decision the owner executed: the hold that
/// decision took is already over.
pub(super) fn replay_decided(slot: &Slot) {
    let mut st = slot.state.lock();
    st.holds = st.holds.saturating_sub(1).max(1);
}

/// Still behind after the most replays the owner makes: the quotes left are
/// superseded, and the hold ends with the lane showing `view`.
pub(super) fn supersede(slot: &Slot, view: Arc<UserView>) {
    let mut st = slot.state.lock();
    st.pending.clear();
    st.holds = st.holds.saturating_sub(1);
    st.view = view;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::supervisor::tests::{quote, slot};

    #[test]
    fn a_hold_replays_what_was_missed_then_hands_the_lane_the_view() {
        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.holds = 1;
            st.pending.push_back(Arc::new(quote("A.V")));
            st.pending.push_back(Arc::new(quote("B.V")));
        }
        let view = Arc::new(UserView::default());
        let first = next_replay(&slot, view.clone()).unwrap();
        assert_eq!(first.instrument_id.as_str(), "A.V");
        // It acted on A.V and the owner executed that at once: still one hold.
        replay_decided(&slot);
        assert_eq!(slot.state.lock().holds, 1);
        let second = next_replay(&slot, view.clone()).unwrap();
        assert_eq!(second.instrument_id.as_str(), "B.V");
        assert!(next_replay(&slot, view.clone()).is_none());
        let st = slot.state.lock();
        assert_eq!(st.holds, 0);
        assert!(Arc::ptr_eq(&st.view, &view));
    }

    #[test]
    fn a_hold_with_another_decision_on_its_way_is_only_counted_down() {
        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.holds = 2;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        assert!(next_replay(&slot, Arc::default()).is_none());
        let st = slot.state.lock();
        assert_eq!(st.holds, 1);
        assert_eq!(st.pending.len(), 1, "the next release replays it");
    }

    #[test]
    fn a_stopped_strategy_is_replayed_nothing_and_a_superseded_hold_ends() {
        let (stopped, _rx) = slot();
        {
            let mut st = stopped.state.lock();
            st.holds = 1;
            st.stopped = true;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        assert!(next_replay(&stopped, Arc::default()).is_none());
        assert!(stopped.state.lock().pending.is_empty());

        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.holds = 1;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        supersede(&slot, Arc::default());
        let st = slot.state.lock();
        assert_eq!((st.holds, st.pending.len()), (0, 0));
    }
}
