//! Quote lanes: where running strategies see quotes.
//!
//! A quote of a busy instrument concerns hundreds of strategies. Waking each of
//! their users' owners for it costs a task switch and a dozen cache misses per
//! owner; at 1,000 quotes/s over 10,000 users that tail, not the strategies,
//! made the decision latency. So quotes do not go through the owners: a few
//! lanes (one per core by default) each take every quote from the quote book
//! and call, one after another, the strategies of their share of the users
//! (a user's strategies are all in one lane, so each strategy sees its quotes
//! in order). Each lane runs on a thread of its own (`owner::lane_threads`),
//! not on the runtime's workers.
//!
//! A strategy lives in a [`Slot`] shared by its lane and its user's owner. The
//! owner stays the only writer of the user's state: a lane calls `on_quote`
//! with the owner's last published [`UserView`] (positions and open orders)
//! and, when the strategy asks for something, hands the commands to the owner
//! and *parks* the slot. A parked strategy sees no quote until its owner has
//! executed the commands and published the state they produced; quotes that
//! arrive meanwhile wait in the slot (the latest of each instrument) and the
//! owner feeds them before unparking. So a strategy never decides twice on a
//! state that does not yet show what it last asked for. A panic parks the slot
//! the same way and the owner restarts the strategy.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::Order;
use ordermon_domain::position::Position;
use parking_lot::{Mutex, RwLock};

use crate::strategy::{Strategy, StrategyCommand, StrategyContext};

/// Quotes kept for a parked strategy, at most (one per instrument).
const MAX_PENDING: usize = 16;

/// What a strategy sees of its user's state outside the owner: published by
/// the owner whenever the state changed.
#[derive(Debug, Default)]
pub(crate) struct UserView {
    pub(crate) positions: HashMap<InstrumentId, Position>,
    /// The user's open orders.
    pub(crate) open_orders: Vec<Order>,
}

impl UserView {
    /// Whether one strategy has open orders.
    fn has_orders_of(&self, strategy: &StrategyId) -> bool {
        self.open_orders
            .iter()
            .any(|o| o.strategy_id.as_ref() == Some(strategy))
    }

    /// The open orders of one strategy.
    pub(crate) fn orders_of<'a>(&'a self, strategy: &StrategyId) -> Vec<&'a Order> {
        self.open_orders
            .iter()
            .filter(|o| o.strategy_id.as_ref() == Some(strategy))
            .collect()
    }
}

/// A strategy instance and its health.
pub(crate) struct Running {
    pub(crate) instance: Box<dyn Strategy>,
    pub(crate) last_beat: DateTime<Utc>,
    pub(crate) restarts: VecDeque<DateTime<Utc>>,
    pub(crate) suspended_until: Option<DateTime<Utc>>,
    pub(crate) heartbeat_reported: bool,
}

impl Running {
    pub(crate) fn new(instance: Box<dyn Strategy>, now: DateTime<Utc>) -> Self {
        Self {
            instance,
            last_beat: now,
            restarts: VecDeque::new(),
            suspended_until: None,
            heartbeat_reported: false,
        }
    }

    /// A callback completed. A missing heartbeat that was reported stays
    /// reported until the owner's next check records that it resumed.
    pub(crate) fn beat(&mut self, now: DateTime<Utc>) {
        self.last_beat = now;
        self.suspended_until = None;
    }

    pub(crate) fn suspended(&self, now: DateTime<Utc>) -> bool {
        self.suspended_until.is_some_and(|t| t > now)
    }
}

/// A running strategy, its view of the user and its lane-side state.
pub(crate) struct SlotState {
    pub(crate) run: Running,
    /// The view the lane shows the strategy; set with [`SlotState::show`].
    view: Arc<UserView>,
    /// Whether `view` holds open orders of this strategy. Most quotes reach
    /// strategies with none, and the lane then need not read the view at all:
    /// at tens of thousands of slots each view is one more cache miss per call.
    has_orders: bool,
    /// Parks: decisions (or a failure) the owner has not finished dealing
    /// with; the lane calls the strategy only when there are none.
    pub(crate) parks: u32,
    /// Stopped: the lane must not call it any more.
    pub(crate) stopped: bool,
    /// Quotes that arrived while parked (the latest per instrument).
    pub(crate) pending: VecDeque<Arc<Quote>>,
}

impl SlotState {
    /// From now on the lane shows strategy `id` the state `view`.
    pub(crate) fn show(&mut self, view: Arc<UserView>, id: &StrategyId) {
        if Arc::ptr_eq(&self.view, &view) {
            return;
        }
        self.has_orders = view.has_orders_of(id);
        self.view = view;
    }

    /// The view the lane shows.
    #[cfg(test)]
    pub(crate) fn view(&self) -> &Arc<UserView> {
        &self.view
    }
}

/// One running strategy, shared by its owner and its lane.
pub(crate) struct Slot {
    pub(crate) strategy_id: StrategyId,
    pub(crate) user_id: UserId,
    /// Where the lane sends the strategy's decisions (the owner's mailbox).
    owner: Box<dyn Handover>,
    pub(crate) state: Mutex<SlotState>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("strategy_id", &self.strategy_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Slot {
    pub(crate) fn new(
        strategy_id: StrategyId,
        user_id: UserId,
        owner: impl Handover + 'static,
        run: Running,
        view: Arc<UserView>,
    ) -> Arc<Self> {
        let has_orders = view.has_orders_of(&strategy_id);
        Arc::new(Self {
            strategy_id,
            user_id,
            owner: Box::new(owner),
            state: Mutex::new(SlotState {
                run,
                view,
                has_orders,
                parks: 0,
                stopped: false,
                pending: VecDeque::new(),
            }),
        })
    }

    /// Calls `on_quote` in the lane; returns whether the strategy was called.
    pub(super) fn on_quote(self: &Arc<Self>, quote: &Arc<Quote>, now: DateTime<Utc>) -> bool {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if st.stopped {
            return false;
        }
        if st.parks > 0 {
            if let Some(p) = st
                .pending
                .iter_mut()
                .find(|p| p.instrument_id == quote.instrument_id)
            {
                *p = quote.clone();
            } else if st.pending.len() < MAX_PENDING {
                st.pending.push_back(quote.clone());
            }
            return false;
        }
        if st.run.suspended(now) {
            return false;
        }
        let orders = if st.has_orders {
            st.view.orders_of(&self.strategy_id)
        } else {
            Vec::new()
        };
        let ctx = StrategyContext {
            strategy_id: &self.strategy_id,
            user_id: &self.user_id,
            now,
            positions: &st.view.positions,
            open_orders: &orders,
        };
        let instance = &mut st.run.instance;
        let result = catch_unwind(AssertUnwindSafe(|| instance.on_quote(&ctx, quote)));
        drop(orders);
        let outcome = match result {
            Ok(cmds) if cmds.is_empty() => {
                st.run.beat(now);
                return true;
            }
            Ok(cmds) => {
                st.run.beat(now);
                Outcome::Decided(cmds)
            }
            Err(panic) => Outcome::Failed(super::panic_text(panic.as_ref())),
        };
        st.parks += 1;
        drop(guard);
        if !self.owner.hand_over(self.clone(), outcome) {
            // The owner is gone without stopping the strategy (a new owner
            // makes new slots): nobody will unpark it.
            self.state.lock().stopped = true;
        }
        true
    }
}

/// What a lane hands a slot's owner: what the strategy asked for, or that
/// it panicked (the owner then restarts it). Either way the slot is parked
/// until the owner has dealt with it.
#[derive(Debug)]
pub(crate) enum Outcome {
    Decided(Vec<StrategyCommand>),
    Failed(String),
}

/// Where a slot hands its [`Outcome`]: the owner's mailbox (implemented
/// beside the owner's commands). It must arrive: a full mailbox is waited
/// for in a task of its own on the lane's runtime, which runs it between
/// quotes, not by the lane.
pub(crate) trait Handover: Send + Sync {
    /// Delivers `outcome` of `slot`; false when the owner is gone and
    /// nobody will unpark the slot.
    fn hand_over(&self, slot: Arc<Slot>, outcome: Outcome) -> bool;
}

/// The decision a lane handed to an owner.
pub(crate) type Decision = (Arc<Slot>, Vec<StrategyCommand>);

/// One lane's subscriptions, by instrument and by user.
#[derive(Debug, Default)]
struct Index {
    /// The slots called for each instrument's quotes. Shared with the lane
    /// while it calls them; changed in place when nobody holds them
    /// (`Arc::make_mut`), copied only when the lane does.
    by_instrument: HashMap<InstrumentId, Arc<Vec<Arc<Slot>>>>,
    /// The instruments each user has slots for: replacing a user's
    /// subscriptions touches those lists only, so starting `n` monitors costs
    /// `O(n)`, not `O(n²)`.
    by_user: HashMap<UserId, Vec<InstrumentId>>,
}

impl Index {
    /// Whether the user's subscriptions are exactly `slots` (each under its
    /// instruments). False whenever unsure (a slot listed twice): the caller
    /// then replaces them.
    fn holds_exactly(&self, user: &UserId, slots: &[(Arc<Slot>, Vec<InstrumentId>)]) -> bool {
        let mut wanted = 0_usize;
        for (i, (slot, list)) in slots.iter().enumerate() {
            if slots[..i].iter().any(|(s, _)| Arc::ptr_eq(s, slot)) {
                return false;
            }
            for (k, inst) in list.iter().enumerate() {
                if list[..k].contains(inst) {
                    continue;
                }
                let Some(subscribed) = self.by_instrument.get(inst) else {
                    return false;
                };
                if !subscribed.iter().any(|s| Arc::ptr_eq(s, slot)) {
                    return false;
                }
                wanted += 1;
            }
        }
        let held: usize = self.by_user.get(user).map_or(0, |instruments| {
            instruments
                .iter()
                .filter_map(|i| self.by_instrument.get(i))
                .map(|subscribed| subscribed.iter().filter(|s| s.user_id == *user).count())
                .sum()
        });
        held == wanted
    }
}

/// The lanes' subscriptions: which slots each lane calls for an instrument.
#[derive(Debug)]
pub struct QuoteLanes {
    lanes: Box<[RwLock<Index>]>,
    lagged: AtomicU64,
}

impl QuoteLanes {
    /// `n` lanes (at least one).
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            lanes: (0..n.max(1))
                .map(|_| RwLock::new(Index::default()))
                .collect(),
            lagged: AtomicU64::new(0),
        }
    }

    /// Number of lanes.
    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }

    fn lane_of(&self, user: &UserId) -> usize {
        // FNV-1a: stable, cheap, spreads sequential ids.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in user.as_str().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        usize::try_from(h % self.lanes.len() as u64).unwrap_or(0)
    }

    /// Replaces a user's subscriptions by `slots`, each with the instruments
    /// it trades.
    ///
    /// An owner resubscribes after every round of order events, and usually
    /// nothing changed: that is found under the read lock, and the lane's
    /// lists are left alone (changing one the lane is calling copies it).
    pub(crate) fn set(&self, user: &UserId, slots: &[(Arc<Slot>, Vec<InstrumentId>)]) {
        let Some(lane) = self.lanes.get(self.lane_of(user)) else {
            return;
        };
        if lane.read().holds_exactly(user, slots) {
            return;
        }
        let mut index = lane.write();
        let Index {
            by_instrument,
            by_user,
        } = &mut *index;
        for inst in by_user.remove(user).unwrap_or_default() {
            if let Some(list) = by_instrument.get_mut(&inst) {
                Arc::make_mut(list).retain(|s| s.user_id != *user);
                if list.is_empty() {
                    by_instrument.remove(&inst);
                }
            }
        }
        let mut added: std::collections::HashSet<(&InstrumentId, *const Slot)> =
            std::collections::HashSet::new();
        let mut instruments: Vec<InstrumentId> = Vec::new();
        for (slot, list) in slots {
            for inst in list {
                if !added.insert((inst, Arc::as_ptr(slot))) {
                    continue;
                }
                Arc::make_mut(by_instrument.entry(inst.clone()).or_default()).push(slot.clone());
                if !instruments.contains(inst) {
                    instruments.push(inst.clone());
                }
            }
        }
        if !instruments.is_empty() {
            by_user.insert(user.clone(), instruments);
        }
    }

    pub(super) fn slots(
        &self,
        lane: usize,
        instrument: &InstrumentId,
    ) -> Option<Arc<Vec<Arc<Slot>>>> {
        self.lanes
            .get(lane)?
            .read()
            .by_instrument
            .get(instrument)
            .cloned()
    }

    /// Number of (instrument, strategy) subscriptions.
    #[must_use]
    pub fn subscriptions(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| {
                l.read()
                    .by_instrument
                    .values()
                    .map(|s| s.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Counts `n` quotes a lane missed.
    pub(super) fn count_lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Quotes a lane missed because it fell behind the quote book.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::owner::Command;

    fn i(s: &str) -> InstrumentId {
        InstrumentId::new(s).unwrap()
    }
    fn u(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[derive(Debug)]
    struct Nop;
    impl Strategy for Nop {
        fn update_params(
            &mut self,
            _: &serde_json::Value,
        ) -> Result<(), Vec<crate::error::FieldError>> {
            Ok(())
        }
    }

    fn slot(user: &str, id: &str, mailbox: &mpsc::WeakSender<Command>) -> Arc<Slot> {
        Slot::new(
            StrategyId::new(id).unwrap(),
            u(user),
            mailbox.clone(),
            Running::new(Box::new(Nop), Utc::now()),
            Arc::default(),
        )
    }

    #[test]
    fn setting_the_same_subscriptions_again_leaves_the_lanes_lists_alone() {
        let (tx, _rx) = mpsc::channel::<Command>(1);
        let m = tx.downgrade();
        let lanes = QuoteLanes::new(1);
        let a1 = slot("a", "a1", &m);
        let a2 = slot("a", "a2", &m);
        let b1 = slot("b", "b1", &m);
        let same = [
            (a1.clone(), vec![i("X.V"), i("Y.V")]),
            (a2.clone(), vec![i("X.V")]),
        ];
        lanes.set(&u("a"), &same);
        lanes.set(&u("b"), &[(b1.clone(), vec![i("X.V")])]);
        // The lane is calling X's list.
        let calling = lanes.slots(0, &i("X.V")).unwrap();
        lanes.set(&u("a"), &same);
        assert!(
            Arc::ptr_eq(&calling, &lanes.slots(0, &i("X.V")).unwrap()),
            "nothing changed: not copied"
        );
        let index = lanes.lanes[0].read();
        assert!(index.holds_exactly(&u("a"), &same));
        assert!(index.holds_exactly(&u("b"), &[(b1, vec![i("X.V")])]));
        assert!(!index.holds_exactly(&u("a"), &same[..1]), "one fewer slot");
        assert!(
            !index.holds_exactly(
                &u("a"),
                &[(a1.clone(), vec![i("X.V")]), (a2.clone(), vec![i("X.V")])]
            ),
            "one fewer instrument"
        );
        assert!(
            !index.holds_exactly(
                &u("a"),
                &[
                    (a1.clone(), vec![i("X.V"), i("Y.V"), i("Z.V")]),
                    (a2.clone(), vec![i("X.V")])
                ]
            ),
            "one more instrument"
        );
        let restarted = slot("a", "a2", &m);
        assert!(
            !index.holds_exactly(
                &u("a"),
                &[
                    (a1.clone(), vec![i("X.V"), i("Y.V")]),
                    (restarted, vec![i("X.V")])
                ]
            ),
            "a new slot for the same strategy"
        );
        assert!(
            !index.holds_exactly(
                &u("a"),
                &[(a1.clone(), vec![i("X.V")]), (a1, vec![i("Y.V")])]
            ),
            "a slot listed twice: unsure"
        );
        assert!(!index.holds_exactly(&u("c"), &[(a2, vec![i("X.V")])]));
        assert!(
            index.holds_exactly(&u("c"), &[]),
            "no subscriptions, none wanted"
        );
    }

    #[test]
    fn set_replaces_a_users_subscriptions() {
        let (tx, _rx) = mpsc::channel::<Command>(1);
        let m = tx.downgrade();
        let lanes = QuoteLanes::new(3);
        let a1 = slot("a", "a1", &m);
        let b1 = slot("b", "b1", &m);
        lanes.set(&u("a"), &[(a1.clone(), vec![i("X.V"), i("Y.V")])]);
        lanes.set(&u("b"), &[(b1, vec![i("X.V")])]);
        assert_eq!(lanes.subscriptions(), 3);
        lanes.set(&u("a"), &[(a1.clone(), vec![i("Y.V")])]);
        assert_eq!(lanes.subscriptions(), 2);
        // Setting again replaces rather than duplicates.
        lanes.set(&u("a"), &[(a1, vec![i("Y.V"), i("Y.V")])]);
        assert_eq!(lanes.subscriptions(), 2);
        lanes.set(&u("b"), &[]);
        lanes.set(&u("a"), &[]);
        assert_eq!(lanes.subscriptions(), 0);
    }

    #[test]
    fn a_users_slots_share_one_lane() {
        let lanes = QuoteLanes::new(4);
        let mut used = std::collections::HashSet::new();
        for n in 0..64 {
            let user = u(&format!("u{n}"));
            let lane = lanes.lane_of(&user);
            assert_eq!(lane, lanes.lane_of(&user));
            used.insert(lane);
        }
        // Sequential ids spread over every lane.
        assert_eq!(used.len(), 4);
    }
}
