//! The owner's side of a strategy parked in its lane.
//!
//! A strategy that decided in its lane (or panicked there) is parked
//! (`SlotState::parks`, counted by the lane): the lane stops calling it and
//! keeps the latest quote of each instrument for it. The owner unparks it
//! once it has executed the decision: the strategy first catches up, in the
//! owner, on the quotes that arrived meanwhile, one by one
//! ([`next_catch_up`], and [`catch_up_decided`] when one of them led to a
//! decision the owner executed at once), and the lane takes over with the
//! view of the state that resulted. A park with another decision still on
//! its way to the owner is only counted down: that decision's unpark catches
//! up. So a strategy never decides twice on a state that does not show what
//! it last asked for.

use std::sync::Arc;

use ordermon_domain::market::Quote;

use crate::owner::lanes::{Slot, UserView};

/// The next quote a parked strategy catches up on, or `None` when this park
/// is over (the lane then shows the strategy `view`).
pub(super) fn next_catch_up(slot: &Slot, view: Arc<UserView>) -> Option<Arc<Quote>> {
    let mut st = slot.state.lock();
    if st.parks > 1 {
        // Another decision is still on its way to this owner.
        st.parks -= 1;
        return None;
    }
    match st.pending.pop_front() {
        Some(q) if !st.stopped => Some(q),
        _ => {
            st.pending.clear();
            st.parks = 0;
            st.show(view, &slot.strategy_id);
            None
        }
    }
}

/// The quote caught up on led to a decision the owner executed: the park
/// that decision took is already over.
pub(super) fn catch_up_decided(slot: &Slot) {
    let mut st = slot.state.lock();
    st.parks = st.parks.saturating_sub(1).max(1);
}

/// Still behind after the most quotes the owner catches a strategy up on:
/// the quotes left are superseded, and the park ends with the lane showing
/// `view`.
pub(super) fn supersede(slot: &Slot, view: Arc<UserView>) {
    let mut st = slot.state.lock();
    st.pending.clear();
    st.parks = st.parks.saturating_sub(1);
    st.show(view, &slot.strategy_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::monitor::tests::{quote, slot};

    #[test]
    fn a_park_catches_up_on_what_was_missed_then_hands_the_lane_the_view() {
        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.parks = 1;
            st.pending.push_back(Arc::new(quote("A.V")));
            st.pending.push_back(Arc::new(quote("B.V")));
        }
        let view = Arc::new(UserView::default());
        let first = next_catch_up(&slot, view.clone()).unwrap();
        assert_eq!(first.instrument_id.as_str(), "A.V");
        // It acted on A.V and the owner executed that at once: still one park.
        catch_up_decided(&slot);
        assert_eq!(slot.state.lock().parks, 1);
        let second = next_catch_up(&slot, view.clone()).unwrap();
        assert_eq!(second.instrument_id.as_str(), "B.V");
        assert!(next_catch_up(&slot, view.clone()).is_none());
        let st = slot.state.lock();
        assert_eq!(st.parks, 0);
        assert!(Arc::ptr_eq(st.view(), &view));
    }

    #[test]
    fn a_park_with_another_decision_on_its_way_is_only_counted_down() {
        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.parks = 2;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        assert!(next_catch_up(&slot, Arc::default()).is_none());
        let st = slot.state.lock();
        assert_eq!(st.parks, 1);
        assert_eq!(st.pending.len(), 1, "the next unpark catches up on it");
    }

    #[test]
    fn a_stopped_strategy_catches_up_on_nothing_and_a_superseded_park_ends() {
        let (stopped, _rx) = slot();
        {
            let mut st = stopped.state.lock();
            st.parks = 1;
            st.stopped = true;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        assert!(next_catch_up(&stopped, Arc::default()).is_none());
        assert!(stopped.state.lock().pending.is_empty());

        let (slot, _rx) = slot();
        {
            let mut st = slot.state.lock();
            st.parks = 1;
            st.pending.push_back(Arc::new(quote("A.V")));
        }
        supersede(&slot, Arc::default());
        let st = slot.state.lock();
        assert_eq!((st.parks, st.pending.len()), (0, 0));
    }
}
