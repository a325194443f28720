//! Turns committed domain events into the series rules read. Every event of
//! this instance's commit feed passes here once, in commit order per user; the
//! users it touched are marked for evaluation at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::account::Account;
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, MonitorEvent, PositionEvent, StrategyEvent,
    SystemEvent, UserEvent, parse_strategy_aggregate,
};
use ordermon_domain::ids::{InstrumentId, OrderId, UserId};
use ordermon_domain::order::{Order, OrderEvent};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{DeniedReason, TradingState};
use ordermon_domain::strategy::StrategyStatus;
use ordermon_domain::user::User;

use super::series::{Holding, OpenOrder, StrategyAlert, UserSeries, Waiting, order_signature};

/// What the alerting service has observed.
#[derive(Debug, Default)]
pub struct Observed {
    /// Per user.
    pub users: HashMap<UserId, UserSeries>,
    /// The global kill switch.
    pub global_state: TradingState,
    /// Users whose series changed since the last evaluation.
    pub dirty: HashSet<UserId>,
    /// The global state changed since the last evaluation.
    pub system_dirty: bool,
}

impl Observed {
    /// The series of a user (created on first sight).
    pub fn user(&mut self, id: &UserId) -> &mut UserSeries {
        self.users.entry(id.clone()).or_default()
    }

    /// Applies one committed event.
    pub fn apply(&mut self, e: &DomainEvent) {
        match &e.payload {
            EventPayload::System(SystemEvent::TradingStateChanged { state, .. }) => {
                self.global_state = *state;
                self.system_dirty = true;
                return;
            }
            EventPayload::System(_) | EventPayload::Instrument(_) | EventPayload::Alert(_) => {
                return;
            }
            _ => {}
        }
        let Some(user_id) = e.user_id.clone() else {
            return;
        };
        let at = e.occurred_at;
        let u = self.users.entry(user_id.clone()).or_default();
        match &e.payload {
            EventPayload::Order(ev) => {
                let Ok(order_id) = e.aggregate_id.parse::<OrderId>() else {
                    return;
                };
                order_event(u, order_id, ev, at);
                u.sync_waiting(order_id);
            }
            EventPayload::Account(ev) => account_event(u, e.sequence, ev),
            EventPayload::Position(PositionEvent::FillApplied { price, change, .. }) => {
                let Some((_, instrument)) = e.aggregate_id.split_once('/') else {
                    return;
                };
                let Ok(instrument) = InstrumentId::new(instrument) else {
                    return;
                };
                u.positions.insert(
                    instrument,
                    Holding {
                        quantity: change.quantity_after,
                        last_price: price.get(),
                    },
                );
            }
            EventPayload::User(ev) => {
                u.user_seq = u.user_seq.max(e.sequence);
                match ev {
                    UserEvent::Created { user } => {
                        u.limits = user.limits.clone();
                        u.trading_state = user.trading_state;
                    }
                    UserEvent::LimitsChanged { limits } => u.limits = limits.clone(),
                    UserEvent::TradingStateChanged { state, .. } => u.trading_state = *state,
                    UserEvent::StatusChanged { .. }
                    | UserEvent::RoleChanged { .. }
                    | UserEvent::TokensRevoked { .. } => {}
                }
            }
            EventPayload::Strategy(ev) => {
                let Some((_, id)) = parse_strategy_aggregate(&e.aggregate_id, e.user_id.as_ref())
                else {
                    return;
                };
                let stopped = matches!(
                    ev,
                    StrategyEvent::Deleted
                        | StrategyEvent::StatusChanged {
                            status: StrategyStatus::Disabled
                        }
                );
                if stopped {
                    u.strategies.remove(&id);
                    u.strategy_alerts.retain(|a| a.strategy != id);
                }
            }
            EventPayload::Monitor(ev) => monitor_event(u, ev, at),
            EventPayload::System(_) | EventPayload::Instrument(_) | EventPayload::Alert(_) => {}
        }
        u.last_activity = Some(at);
        self.dirty.insert(user_id);
    }

    /// Records a disagreement with the venue that left no event (an
    /// execution report the engine refused).
    pub fn mismatch(&mut self, user: &UserId, at: DateTime<Utc>) {
        let u = self.user(user);
        u.flow_mut().bump(at, |c| c.mismatches += 1.0);
        u.last_activity = Some(at);
        self.dirty.insert(user.clone());
    }

    /// Installs a user as stored: limits and trading state (unless events
    /// read meanwhile are newer than what was read).
    pub fn seed_user(&mut self, user: &User) {
        let u = self.user(&user.id);
        if user.sequence > u.user_seq {
            u.limits = user.limits.clone();
            u.trading_state = user.trading_state;
            u.user_seq = user.sequence;
        }
        self.dirty.insert(user.id.clone());
    }

    /// Installs a user's account and positions as stored.
    pub fn seed_book(&mut self, user: &UserId, account: &Account, positions: &[Position]) {
        let u = self.user(user);
        let totals: BTreeMap<_, _> = account
            .balances
            .iter()
            .map(|(c, b)| (c.clone(), b.total))
            .collect();
        u.seed_account(account.sequence, totals);
        for p in positions {
            u.positions
                .entry(p.instrument_id.clone())
                .or_insert(Holding {
                    quantity: p.quantity,
                    last_price: p.last_mark.map_or(Decimal::ZERO, |m| m.get()),
                });
        }
        self.dirty.insert(user.clone());
    }

    /// Installs an open order as stored (unless events read meanwhile
    /// completed it).
    pub fn seed_order(&mut self, o: &Order) {
        let u = self.user(&o.user_id);
        if u.done.iter().any(|(id, _, _)| *id == o.id) {
            return;
        }
        self.dirty.insert(o.user_id.clone());
        let u = self.user(&o.user_id);
        u.open.entry(o.id).or_insert_with(|| OpenOrder {
            instrument: o.instrument_id.clone(),
            strategy: o.strategy_id.clone(),
            quantity: o.quantity.get(),
            filled: o.filled_qty.get(),
            waiting: waiting_of(o),
            since: o.updated_at,
            submitted_at: None,
        });
        u.sync_waiting(o.id);
    }
}

fn waiting_of(o: &Order) -> Waiting {
    use ordermon_domain::order::OrderStatus as S;
    match o.status {
        S::Initialized => Waiting::New,
        S::Submitted => Waiting::Ack,
        S::PendingCancel => Waiting::Cancel,
        _ => Waiting::Working,
    }
}

fn order_event(u: &mut UserSeries, id: OrderId, ev: &OrderEvent, at: DateTime<Utc>) {
    match ev {
        OrderEvent::Initialized { order } => {
            let price = order.price.map(|p| p.get());
            let sig = order_signature(
                &order.instrument_id,
                order.side,
                order.order_type,
                order.quantity.get(),
                price,
            );
            let dup = u.note_signature(sig, at);
            let notional = price
                .and_then(|p| p.checked_mul(order.quantity.get()))
                .and_then(|n| f64::try_from(n).ok())
                .unwrap_or(0.0);
            u.flow_mut().bump(at, |c| {
                c.orders += 1.0;
                c.notional += notional;
                if dup {
                    c.duplicates += 1.0;
                }
            });
            u.open.insert(
                id,
                OpenOrder {
                    instrument: order.instrument_id.clone(),
                    strategy: order.strategy_id.clone(),
                    quantity: order.quantity.get(),
                    filled: Decimal::ZERO,
                    waiting: Waiting::New,
                    since: at,
                    submitted_at: None,
                },
            );
        }
        OrderEvent::Denied { reason } => {
            let throttled = *reason == DeniedReason::RateLimited;
            u.flow_mut().bump(at, |c| {
                c.rejects += 1.0;
                if throttled {
                    c.throttled += 1.0;
                }
            });
            u.complete(id);
        }
        OrderEvent::Rejected { .. } => {
            u.flow_mut().bump(at, |c| c.rejects += 1.0);
            u.complete(id);
        }
        OrderEvent::Submitted => {
            if let Some(o) = u.open.get_mut(&id) {
                o.waiting = Waiting::Ack;
                o.since = at;
                o.submitted_at = Some(at);
            }
        }
        OrderEvent::Accepted { .. } => {
            let latency = u.open.get_mut(&id).and_then(|o| {
                let l = o.submitted_at.take().map(|s| (at - s).num_milliseconds());
                if o.waiting == Waiting::Ack || o.waiting == Waiting::New {
                    o.waiting = Waiting::Working;
                    o.since = at;
                }
                l
            });
            if let Some(ms) = latency {
                let ms = ms.max(0) as f64;
                u.flow_mut().bump(at, |c| {
                    c.acks += 1.0;
                    c.ack_max_ms = c.ack_max_ms.max(ms);
                });
            }
        }
        OrderEvent::Canceled => {
            u.flow_mut().bump(at, |c| c.cancels += 1.0);
            u.complete(id);
        }
        OrderEvent::Expired => u.complete(id),
        OrderEvent::PendingCancel => {
            if let Some(o) = u.open.get_mut(&id) {
                o.waiting = Waiting::Cancel;
                o.since = at;
            }
        }
        OrderEvent::CancelRejected { .. } => {
            if let Some(o) = u.open.get_mut(&id) {
                o.waiting = Waiting::Working;
                o.since = at;
            }
        }
        OrderEvent::Triggered | OrderEvent::PendingUpdate | OrderEvent::ModifyRejected { .. } => {
            if let Some(o) = u.open.get_mut(&id)
                && o.waiting == Waiting::Ack
            {
                o.waiting = Waiting::Working;
                o.since = at;
            }
        }
        OrderEvent::Updated { quantity, .. } => {
            if let (Some(o), Some(q)) = (u.open.get_mut(&id), quantity) {
                o.quantity = q.get();
            }
        }
        OrderEvent::Filled { fill } => {
            let qty = fill.quantity.get();
            if let Some(o) = u.open.get_mut(&id) {
                let first = o.filled.is_zero();
                o.filled = o.filled.checked_add(qty).unwrap_or(o.filled);
                if o.waiting == Waiting::Ack {
                    o.waiting = Waiting::Working;
                    o.since = at;
                }
                let over = o.filled > o.quantity;
                let done = o.filled >= o.quantity;
                u.flow_mut().bump(at, |c| {
                    c.fills += 1.0;
                    if first {
                        c.first_fills += 1.0;
                    }
                    if over {
                        c.mismatches += 1.0;
                    }
                });
                if done {
                    u.complete(id);
                }
            } else if let Some(done) = u.done.iter_mut().find(|(d, _, _)| *d == id) {
                // A fill on an order already complete: beyond its quantity
                // when it was filled (a late fill on a canceled order is not).
                done.2 = done.2.checked_add(qty).unwrap_or(done.2);
                let over = done.2 > done.1;
                u.flow_mut().bump(at, |c| {
                    c.fills += 1.0;
                    if over {
                        c.mismatches += 1.0;
                    }
                });
            }
        }
    }
}

fn account_event(u: &mut UserSeries, seq: u64, ev: &AccountEvent) {
    if matches!(ev, AccountEvent::Opened { .. }) {
        u.open_account(seq);
        return;
    }
    let deltas = match ev {
        AccountEvent::CashAdjusted { amount, .. } => {
            vec![(amount.currency.clone(), amount.amount)]
        }
        AccountEvent::FillSettled {
            quote_currency,
            settlement,
            ..
        } => vec![
            (quote_currency.clone(), settlement.cash_flow),
            (
                settlement.commission.currency.clone(),
                -settlement.commission.amount,
            ),
        ],
        // Reservations move no cash; the sequence still advances.
        AccountEvent::Opened { .. }
        | AccountEvent::Reserved { .. }
        | AccountEvent::Released { .. } => Vec::new(),
    };
    u.account_change(seq, deltas);
}

fn monitor_event(u: &mut UserSeries, ev: &MonitorEvent, at: DateTime<Utc>) {
    match ev {
        MonitorEvent::StrategyHeartbeatMissing { strategy_id, .. } => {
            u.strategies
                .entry(strategy_id.clone())
                .or_default()
                .heartbeat_missing = true;
        }
        MonitorEvent::StrategyHeartbeatResumed { strategy_id } => {
            if let Some(s) = u.strategies.get_mut(strategy_id) {
                s.heartbeat_missing = false;
            }
        }
        MonitorEvent::Restarted {
            strategy_id: Some(id),
            ..
        } => {
            u.strategies
                .entry(id.clone())
                .or_default()
                .restarts
                .push_back(at);
        }
        MonitorEvent::StrategyAlert {
            strategy_id,
            rule,
            severity,
            summary,
            labels,
        } => {
            match u
                .strategy_alerts
                .iter_mut()
                .find(|a| &a.strategy == strategy_id && &a.rule == rule && &a.labels == labels)
            {
                Some(a) => {
                    a.last = at;
                    a.summary.clone_from(summary);
                    a.severity = *severity;
                }
                None => u.strategy_alerts.push(StrategyAlert {
                    strategy: strategy_id.clone(),
                    rule: rule.clone(),
                    severity: *severity,
                    summary: summary.clone(),
                    labels: labels.clone(),
                    last: at,
                }),
            }
        }
        MonitorEvent::Stopped { .. } => {
            u.strategies.clear();
        }
        MonitorEvent::ReconciliationMismatch { .. } => {
            u.flow_mut().bump(at, |c| c.mismatches += 1.0);
        }
        MonitorEvent::Started
        | MonitorEvent::Restarted {
            strategy_id: None, ..
        }
        | MonitorEvent::StuckOrder { .. }
        | MonitorEvent::StaleMarketData { .. } => {}
    }
}
