//! The paper venue's state: working orders, their indexes, and the size left on
//! each instrument's latest quote.
//!
//! Every method is synchronous and runs under the venue's lock; it only collects
//! reports, which the venue sends after releasing the lock.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::ids::{InstrumentId, OrderId, TradeId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{Order, OrderType};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, OrderChange, VenueError};
use ordermon_domain::values::Price;
use rust_decimal::Decimal;

use super::matching::{
    Aggression, Finish, Liquidity, Resting, crosses, execution, fill_report, stop_reached,
};
use super::positions::Positions;

/// Why a post-only order was refused.
pub(super) const POST_ONLY_WOULD_CROSS: &str = "post_only would cross";
/// Why a cancel or modify was refused.
pub(super) const NOT_WORKING: &str = "order not working";

/// The time and pricing settings one operation runs with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    pub(super) now: DateTime<Utc>,
    pub(super) slippage_bps: Decimal,
    pub(super) fee_rate: Decimal,
}

#[derive(Debug, Default)]
struct Counters {
    orders: u64,
    trades: u64,
    seq: u64,
}

/// Working orders and quote liquidity.
#[derive(Debug, Default)]
pub(super) struct Book {
    counters: Counters,
    working: HashMap<OrderId, Resting>,
    by_instrument: HashMap<InstrumentId, Vec<OrderId>>,
    expiries: BTreeSet<(DateTime<Utc>, OrderId)>,
    quotes: HashMap<InstrumentId, Liquidity>,
    positions: Positions,
}

pub(super) fn order_report(
    order: &Order,
    kind: ExecutionReportKind,
    ts: DateTime<Utc>,
) -> ExecutionReport {
    ExecutionReport {
        order_id: order.id,
        user_id: order.user_id.clone(),
        kind,
        ts_event: ts,
    }
}

fn on_tick(instrument: &Instrument, price: Option<Price>) -> bool {
    price.is_none_or(|p| instrument.check_price(p).is_ok())
}

/// The liquidity of the newest quote known for the instrument, and whether
/// `quote` is that newest one (an older quote arriving late is not matched).
/// The same quote seen twice (at submit, then from the broadcast) keeps the
/// size already taken from it.
fn refresh(quotes: &mut HashMap<InstrumentId, Liquidity>, quote: Quote) -> (&mut Liquidity, bool) {
    match quotes.entry(quote.instrument_id.clone()) {
        Entry::Vacant(e) => (e.insert(Liquidity::new(quote)), true),
        Entry::Occupied(e) => {
            let known = e.into_mut();
            if quote.ts < known.quote.ts {
                return (known, false);
            }
            if known.quote != quote {
                *known = Liquidity::new(quote);
            }
            (known, true)
        }
    }
}

/// Lets `order` meet the quote once: triggers a stop whose price traded, then
/// executes what the rules allow.
fn work(
    order: &mut Resting,
    liquidity: &mut Liquidity,
    counters: &mut Counters,
    positions: &mut Positions,
    ctx: Ctx,
    mut aggression: Aggression,
    out: &mut Vec<ExecutionReport>,
) {
    if order.is_stop() && !order.triggered {
        let Some(trigger) = order.trigger_price else {
            return;
        };
        if !stop_reached(order.side, trigger.get(), &liquidity.quote) {
            return;
        }
        order.triggered = true;
        out.push(order.report(ExecutionReportKind::Triggered, ctx.now));
        // A stop-market becomes a market order, a stop-limit a new limit order.
        aggression = Aggression::Taker;
    }
    // A reduce-only order fills no further than flat; with nothing left to
    // reduce it is canceled rather than left to open a position later.
    let reducible = order
        .reduce_only
        .then(|| positions.reducible(&order.user_id, &order.instrument.id, order.side));
    if reducible.is_some_and(|r| r <= Decimal::ZERO) {
        order.nothing_to_reduce = true;
        return;
    }
    let Some(exec) = execution(order, liquidity, ctx.slippage_bps, aggression, reducible) else {
        return;
    };
    counters.trades += 1;
    let Ok(trade_id) = TradeId::new(format!("T-{}", counters.trades)) else {
        return;
    };
    let Some(report) = fill_report(order, &exec, trade_id.clone(), ctx.fee_rate, ctx.now) else {
        tracing::warn!(order_id = %order.id, "paper fill skipped: amount out of range");
        return;
    };
    liquidity.take(order.side, exec.quantity);
    order.filled += exec.quantity;
    positions.filled(
        &order.user_id,
        &order.instrument.id,
        trade_id,
        order.side,
        exec.quantity,
    );
    if order.reduce_only
        && positions.reducible(&order.user_id, &order.instrument.id, order.side) <= Decimal::ZERO
    {
        order.nothing_to_reduce = true;
    }
    out.push(report);
}

impl Book {
    /// The owner's figure of a user's net position (see [`Positions`]).
    pub(super) fn confirm_position(
        &mut self,
        user: &ordermon_domain::ids::UserId,
        instrument: &InstrumentId,
        net: Decimal,
        trade: Option<&TradeId>,
    ) {
        self.positions.confirm(user, instrument, net, trade);
    }

    /// Number of working orders.
    pub(super) fn len(&self) -> usize {
        self.working.len()
    }

    /// True when the order is working.
    pub(super) fn contains(&self, id: &OrderId) -> bool {
        self.working.contains_key(id)
    }

    /// Accepts (or rejects) a new order and executes what it can at once.
    pub(super) fn submit(
        &mut self,
        order: &Order,
        instrument: Option<Arc<Instrument>>,
        quote: Option<Quote>,
        ctx: Ctx,
    ) -> Result<Vec<ExecutionReport>, VenueError> {
        if self.working.contains_key(&order.id) {
            return Err(VenueError::Refused(format!(
                "order {} is already working",
                order.id
            )));
        }
        let reject = |reason: &str| {
            let kind = ExecutionReportKind::Rejected {
                reason: reason.to_owned(),
            };
            Ok(vec![order_report(order, kind, ctx.now)])
        };
        let Some(instrument) = instrument else {
            return reject("unknown instrument");
        };
        if !on_tick(&instrument, order.price) || !on_tick(&instrument, order.trigger_price) {
            return reject("price not on tick");
        }
        let mut resting = Resting::new(order, instrument, self.counters.seq);
        if resting.leaves() <= Decimal::ZERO {
            return reject("nothing left to fill");
        }
        let liquidity = quote.map(|q| refresh(&mut self.quotes, q).0);
        if order.order_type == OrderType::Market && liquidity.is_none() {
            return reject("no market data");
        }
        if let (true, Some(limit), Some(l)) = (resting.post_only, resting.limit(), &liquidity)
            && crosses(resting.side, limit.get(), &l.quote)
        {
            return reject(POST_ONLY_WOULD_CROSS);
        }
        self.counters.seq += 1;
        self.counters.orders += 1;
        let venue_order_id = format!("P-{}", self.counters.orders);
        let mut out = vec![order_report(
            order,
            ExecutionReportKind::Accepted {
                venue_order_id: Some(venue_order_id),
            },
            ctx.now,
        )];
        if let Some(l) = liquidity {
            let aggression = Aggression::Taker;
            work(
                &mut resting,
                l,
                &mut self.counters,
                &mut self.positions,
                ctx,
                aggression,
                &mut out,
            );
        }
        match resting.finish() {
            Finish::Done => {}
            Finish::Cancel => out.push(resting.report(ExecutionReportKind::Canceled, ctx.now)),
            Finish::Rest => self.rest(resting),
        }
        Ok(out)
    }

    /// Takes back an order the venue acknowledged before it forgot it (a
    /// restart): it rests as it was, filled quantity and trigger included,
    /// with no report. False when it is already working or has nothing left.
    pub(super) fn restore(&mut self, order: &Order, instrument: Arc<Instrument>) -> bool {
        if self.working.contains_key(&order.id) {
            return false;
        }
        let mut resting = Resting::new(order, instrument, self.counters.seq);
        if resting.leaves() <= Decimal::ZERO {
            return false;
        }
        resting.triggered = order.status == ordermon_domain::order::OrderStatus::Triggered;
        self.counters.seq += 1;
        self.rest(resting);
        true
    }

    /// Cancels a working order.
    pub(super) fn cancel(&mut self, order: &Order, now: DateTime<Utc>) -> Vec<ExecutionReport> {
        let report = match self.forget(&order.id) {
            Some(resting) => resting.report(ExecutionReportKind::Canceled, now),
            None => order_report(
                order,
                ExecutionReportKind::CancelRejected {
                    reason: NOT_WORKING.to_owned(),
                },
                now,
            ),
        };
        vec![report]
    }

    /// Changes a working order's quantity, price or trigger, then lets it meet
    /// the latest quote as an arriving order.
    pub(super) fn modify(
        &mut self,
        order: &Order,
        change: &OrderChange,
        quote: Option<Quote>,
        ctx: Ctx,
    ) -> Vec<ExecutionReport> {
        let refuse = |reason: String| {
            let kind = ExecutionReportKind::ModifyRejected { reason };
            vec![order_report(order, kind, ctx.now)]
        };
        let Some(resting) = self.working.get_mut(&order.id) else {
            return refuse(NOT_WORKING.to_owned());
        };
        let liquidity = quote.map(|q| refresh(&mut self.quotes, q).0);
        if let Err(reason) = check_change(resting, change, liquidity.as_deref()) {
            return refuse(reason);
        }
        if let Some(q) = change.quantity {
            resting.quantity = q.get();
        }
        if change.price.is_some() {
            resting.price = change.price;
        }
        if change.trigger_price.is_some() {
            resting.trigger_price = change.trigger_price;
        }
        let kind = ExecutionReportKind::Updated {
            change: change.clone(),
        };
        let mut out = vec![resting.report(kind, ctx.now)];
        if let Some(l) = liquidity {
            work(
                resting,
                l,
                &mut self.counters,
                &mut self.positions,
                ctx,
                Aggression::Taker,
                &mut out,
            );
        }
        let finish = resting.finish();
        self.conclude(order.id, finish, ctx.now, &mut out);
        out
    }

    /// Expires due orders, then matches the instrument's working orders against
    /// a new quote in priority order.
    pub(super) fn on_quote(&mut self, quote: Quote, ctx: Ctx) -> Vec<ExecutionReport> {
        let mut out = Vec::new();
        self.expire_due(ctx.now, &mut out);
        let instrument = quote.instrument_id.clone();
        if !refresh(&mut self.quotes, quote).1 {
            return out;
        }
        let mut ids = self
            .by_instrument
            .get(&instrument)
            .cloned()
            .unwrap_or_default();
        ids.sort_by_cached_key(|id| self.working.get(id).map(Resting::priority));
        for id in ids {
            let (Some(resting), Some(liquidity)) =
                (self.working.get_mut(&id), self.quotes.get_mut(&instrument))
            else {
                continue;
            };
            let aggression = Aggression::Resting;
            work(
                resting,
                liquidity,
                &mut self.counters,
                &mut self.positions,
                ctx,
                aggression,
                &mut out,
            );
            let finish = resting.finish();
            self.conclude(id, finish, ctx.now, &mut out);
        }
        out
    }

    /// Expires every order whose DAY or GTD expiry is at or before `now`.
    pub(super) fn expire_due(&mut self, now: DateTime<Utc>, out: &mut Vec<ExecutionReport>) {
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(resting) = self.forget(&id) {
                out.push(resting.report(ExecutionReportKind::Expired, now));
            }
        }
    }

    fn conclude(
        &mut self,
        id: OrderId,
        finish: Finish,
        now: DateTime<Utc>,
        out: &mut Vec<ExecutionReport>,
    ) {
        match finish {
            Finish::Rest => {}
            Finish::Done => {
                self.forget(&id);
            }
            Finish::Cancel => {
                if let Some(resting) = self.forget(&id) {
                    out.push(resting.report(ExecutionReportKind::Canceled, now));
                }
            }
        }
    }

    fn rest(&mut self, resting: Resting) {
        let id = resting.id;
        self.by_instrument
            .entry(resting.instrument.id.clone())
            .or_default()
            .push(id);
        if let Some(at) = resting.expires_at {
            self.expiries.insert((at, id));
        }
        self.working.insert(id, resting);
    }

    fn forget(&mut self, id: &OrderId) -> Option<Resting> {
        let resting = self.working.remove(id)?;
        if let Entry::Occupied(mut e) = self.by_instrument.entry(resting.instrument.id.clone()) {
            e.get_mut().retain(|other| other != id);
            if e.get().is_empty() {
                e.remove();
            }
        }
        if let Some(at) = resting.expires_at {
            self.expiries.remove(&(at, *id));
        }
        Some(resting)
    }
}

/// Checks a modification against the working order; the error is the reason
/// reported to the trader.
fn check_change(
    resting: &Resting,
    change: &OrderChange,
    liquidity: Option<&Liquidity>,
) -> Result<(), String> {
    if *change == OrderChange::default() {
        return Err("nothing to change".to_owned());
    }
    if change.price.is_some() && !resting.order_type.has_price() {
        return Err("this order type has no price".to_owned());
    }
    if change.trigger_price.is_some() && !resting.is_stop() {
        return Err("this order type has no trigger_price".to_owned());
    }
    if change.trigger_price.is_some() && resting.triggered {
        return Err("the stop has already triggered".to_owned());
    }
    if let Some(q) = change.quantity
        && (q.get() <= resting.filled || q.is_zero())
    {
        return Err(format!(
            "quantity must stay above the filled quantity {}",
            resting.filled
        ));
    }
    if !on_tick(&resting.instrument, change.price)
        || !on_tick(&resting.instrument, change.trigger_price)
    {
        return Err("price not on tick".to_owned());
    }
    if let (true, Some(price), Some(l)) = (resting.post_only, change.price, liquidity)
        && crosses(resting.side, price.get(), &l.quote)
    {
        return Err(POST_ONLY_WOULD_CROSS.to_owned());
    }
    Ok(())
}
