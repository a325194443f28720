//! The inputs of pre-trade risk as the owner holds them: the submission
//! rate, positions, the day's result and the trading state in force; the
//! checks themselves are the domain's (`ordermon_domain::risk`).

use chrono::Duration;
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::Order;
use ordermon_domain::risk::{self, DeniedReason, RiskContext};
use ordermon_domain::user::UserStatus;

use crate::owner::Owner;

impl Owner {
    pub(super) fn note_submission(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let cutoff = now - Duration::seconds(1);
        while self
            .state
            .recent_submits
            .front()
            .is_some_and(|t| *t <= cutoff)
        {
            self.state.recent_submits.pop_front();
        }
        self.state.recent_submits.push_back(now);
    }

    pub(super) fn position_qty(&self, instrument: &InstrumentId) -> Decimal {
        self.state
            .positions
            .get(instrument)
            .map_or(Decimal::ZERO, |p| p.quantity)
    }

    fn daily_pnl(&mut self) -> Decimal {
        let today = self.now().date_naive();
        if today != self.state.day {
            self.state.day = today;
            self.state.day_realized = Decimal::ZERO;
        }
        let unrealized: Decimal = self
            .state
            .positions
            .values()
            .map(|p| p.unrealized_pnl(self.ctx.quotes.last_price(&p.instrument_id)))
            .sum();
        self.state.day_realized + unrealized
    }

    pub(super) fn risk_check(
        &mut self,
        id: OrderId,
        instrument: &Instrument,
    ) -> Result<ordermon_domain::account::ReservationRequest, DeniedReason> {
        if self.state.user.status == UserStatus::Disabled {
            return Err(DeniedReason::UserDisabled);
        }
        let daily_pnl = self.daily_pnl();
        // The submission just noted is this order; it does not count against itself.
        let orders_last_second =
            u32::try_from(self.state.recent_submits.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let open_orders = self.state.open_order_count();
        let trading_state = self.trading_state();
        let Some(order) = self.state.orders.get(&id) else {
            return Err(DeniedReason::NoMarketPrice);
        };
        let ctx = RiskContext {
            order,
            instrument,
            account: &self.state.account,
            position: self.state.positions.get(&instrument.id),
            limits: &self.state.user.limits,
            params: &self.ctx.config.risk,
            last_price: self.ctx.quotes.last_price(&instrument.id),
            trading_state,
            open_orders,
            orders_last_second,
            daily_pnl,
        };
        risk::check_order(&ctx)
    }

    /// The trading state in force: the stricter of the user's and the global one.
    fn trading_state(&self) -> ordermon_domain::risk::TradingState {
        self.state
            .user
            .trading_state
            .stricter(self.ctx.global.state())
    }

    /// Pre-trade risk of changing `before` into `after` (see
    /// [`risk::check_modify`]); a disabled user may only lower quantities.
    pub(super) fn modify_risk(
        &mut self,
        before: &Order,
        after: &Order,
        instrument: &Instrument,
    ) -> Result<(), DeniedReason> {
        if self.state.user.status == UserStatus::Disabled && !risk::lessens(before, after) {
            return Err(DeniedReason::UserDisabled);
        }
        let daily_pnl = self.daily_pnl();
        let mut account = self.state.account.clone();
        account.release(before.id);
        let trading_state = self.trading_state();
        let ctx = RiskContext {
            order: after,
            instrument,
            account: &account,
            position: self.state.positions.get(&instrument.id),
            limits: &self.state.user.limits,
            params: &self.ctx.config.risk,
            last_price: self.ctx.quotes.last_price(&instrument.id),
            trading_state,
            open_orders: self.state.open_order_count(),
            orders_last_second: 0,
            daily_pnl,
        };
        risk::check_modify(&ctx, before).map(|_| ())
    }
}
