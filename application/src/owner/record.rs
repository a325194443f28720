//! How the owner records a change in the cycle: the first touch of an
//! order, the account, a position or the user takes the version the commit
//! will expect and bumps it (so replies built during the cycle already carry
//! the stored version), and every change is an event in its aggregate's
//! sequence.

use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, PositionEvent, UserEvent, position_aggregate_id,
};
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::order::{Applied, OrderError, OrderEvent};

use super::Owner;

impl Owner {
    pub(super) fn touch_order(&mut self, id: OrderId) {
        if let Some(order) = self.state.orders.get_mut(&id)
            && let std::collections::hash_map::Entry::Vacant(e) = self.cycle.orders.entry(id)
        {
            e.insert(order.version);
            order.version += 1;
            self.cycle.order_seq.push(id);
        }
    }

    fn touch_account(&mut self) {
        if self.cycle.account.is_none() {
            self.cycle.account = Some(self.state.account.version);
            self.state.account.version += 1;
        }
    }

    fn touch_user(&mut self) {
        if self.cycle.user.is_none() {
            self.cycle.user = Some(self.state.user.version);
            self.state.user.version += 1;
        }
    }

    fn touch_position(&mut self, instrument: &InstrumentId) {
        if let Some(p) = self.state.positions.get_mut(instrument)
            && !self.cycle.positions.contains_key(instrument)
        {
            self.cycle.positions.insert(instrument.clone(), p.version);
            p.version += 1;
        }
    }

    pub(super) fn envelope(&self, id: String, sequence: u64, payload: EventPayload) -> DomainEvent {
        DomainEvent::new(
            id,
            sequence,
            Some(self.state.user.id.clone()),
            self.now(),
            self.correlation,
            payload,
        )
    }

    /// Applies an order event to an order held in state and records it.
    pub(super) fn order_event(
        &mut self,
        id: OrderId,
        event: OrderEvent,
    ) -> Result<Applied, OrderError> {
        let now = self.now();
        let Some(order) = self.state.orders.get_mut(&id) else {
            return Err(OrderError::ForeignFill);
        };
        let applied = order.apply(&event, now)?;
        if applied == Applied::Changed {
            let seq = order.sequence;
            if order.strategy_id.is_some() && self.monitor.is_some() {
                self.cycle.strategy_events.push((id, event.clone()));
            }
            self.touch_order(id);
            let e = self.envelope(id.to_string(), seq, EventPayload::Order(event));
            self.cycle.events.push(e);
        }
        Ok(applied)
    }

    pub(super) fn account_event(&mut self, event: AccountEvent) {
        self.touch_account();
        if let AccountEvent::Reserved { order_id, .. }
        | AccountEvent::Released { order_id, .. }
        | AccountEvent::FillSettled { order_id, .. } = &event
        {
            self.cycle.reservations.push(*order_id);
        }
        self.state.account.sequence += 1;
        let seq = self.state.account.sequence;
        let e = self.envelope(
            self.state.user.id.to_string(),
            seq,
            EventPayload::Account(event),
        );
        self.cycle.events.push(e);
    }

    pub(super) fn position_event(&mut self, instrument: &InstrumentId, event: PositionEvent) {
        self.touch_position(instrument);
        let Some(p) = self.state.positions.get_mut(instrument) else {
            return;
        };
        p.sequence += 1;
        let seq = p.sequence;
        let id = position_aggregate_id(&self.state.user.id, instrument);
        let e = self.envelope(id, seq, EventPayload::Position(event));
        self.cycle.events.push(e);
    }

    pub(super) fn user_event(&mut self, event: UserEvent) {
        self.touch_user();
        self.state.user.sequence += 1;
        let seq = self.state.user.sequence;
        let e = self.envelope(
            self.state.user.id.to_string(),
            seq,
            EventPayload::User(event),
        );
        self.cycle.events.push(e);
    }
}
