//! Pre-trade risk: one test per denial reason, and the reservation an accepted
//! order asks for (limit, market band, stops, sells on cash and margin accounts).

use chrono::{TimeZone, Utc};
use rstest::rstest;
use rust_decimal_macros::dec;

use super::*;
use crate::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use crate::instrument::tests::acme;
use crate::order::{NewOrder, OrderEvent, TimeInForce};
use crate::values::{Currency, Money, Quantity};

/// Everything a check needs, owned, with sensible defaults: a funded cash account,
/// no position, no limits, active trading, a last price of 10.
struct Setup {
    order: Order,
    instrument: Instrument,
    account: Account,
    position: Option<Position>,
    limits: RiskLimits,
    params: RiskParams,
    last_price: Option<Price>,
    trading_state: TradingState,
    open_orders: u32,
    orders_last_second: u32,
    daily_pnl: Decimal,
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn new_order(side: Side, order_type: OrderType, quantity: Decimal) -> Order {
    let new = NewOrder {
        client_order_id: ClientOrderId::new("c-1").unwrap(),
        user_id: UserId::new("alice").unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side,
        order_type,
        quantity: Quantity::new(quantity).unwrap(),
        price: order_type
            .has_price()
            .then(|| Price::new(dec!(10)).unwrap()),
        trigger_price: order_type
            .has_trigger()
            .then(|| Price::new(dec!(12)).unwrap()),
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let now = Utc.with_ymd_and_hms(2024, 1, 2, 9, 30, 0).unwrap();
    Order::create(OrderId::generate(), new, now).unwrap().0
}

impl Setup {
    fn new(side: Side, order_type: OrderType, quantity: Decimal) -> Self {
        let mut account = Account::new(UserId::new("alice").unwrap(), AccountType::Cash);
        account
            .adjust_cash(&Money::new(dec!(100000), usd()).unwrap())
            .unwrap();
        Self {
            order: new_order(side, order_type, quantity),
            instrument: acme(),
            account,
            position: None,
            limits: RiskLimits::default(),
            params: RiskParams::default(),
            last_price: Some(Price::new(dec!(10)).unwrap()),
            trading_state: TradingState::Active,
            open_orders: 0,
            orders_last_second: 0,
            daily_pnl: Decimal::ZERO,
        }
    }

    fn buy_limit(quantity: Decimal) -> Self {
        Self::new(Side::Buy, OrderType::Limit, quantity)
    }

    fn sell_limit(quantity: Decimal) -> Self {
        Self::new(Side::Sell, OrderType::Limit, quantity)
    }

    fn holding(mut self, quantity: Decimal) -> Self {
        let mut p = Position::flat(
            self.order.user_id.clone(),
            self.order.instrument_id.clone(),
            usd(),
            self.instrument.multiplier,
            self.order.created_at,
        );
        p.quantity = quantity;
        p.cost = quantity * dec!(10) * self.instrument.multiplier;
        self.position = Some(p);
        self
    }

    fn margin(mut self) -> Self {
        self.account.account_type = AccountType::Margin;
        self
    }

    /// The risk context of this setup.
    fn ctx(&self) -> RiskContext<'_> {
        RiskContext {
            order: &self.order,
            instrument: &self.instrument,
            account: &self.account,
            position: self.position.as_ref(),
            limits: &self.limits,
            params: &self.params,
            last_price: self.last_price,
            trading_state: self.trading_state,
            open_orders: self.open_orders,
            orders_last_second: self.orders_last_second,
            daily_pnl: self.daily_pnl,
        }
    }

    fn check(&self) -> Result<ReservationRequest, DeniedReason> {
        check_order(&self.ctx())
    }

    /// Submits this setup's order and fills `quantity` of it at 10.
    fn fill_at_10(&mut self, quantity: Decimal) {
        let o = self.order.clone();
        self.order
            .apply(&OrderEvent::Submitted, o.created_at)
            .unwrap();
        let fill = crate::fill::Fill {
            trade_id: crate::ids::TradeId::new("t-1").unwrap(),
            order_id: o.id,
            user_id: o.user_id.clone(),
            instrument_id: o.instrument_id.clone(),
            side: o.side,
            quantity: Quantity::new(quantity).unwrap(),
            price: Price::new(dec!(10)).unwrap(),
            commission: Money::zero(usd()),
            liquidity_side: crate::fill::LiquiditySide::Maker,
            ts_event: o.created_at,
        };
        self.order
            .apply(&OrderEvent::Filled { fill }, o.created_at)
            .unwrap();
    }

    /// [`check_modify`] of `before` changed into this setup's order.
    fn check_modify(&self, before: &Order) -> Result<ReservationRequest, DeniedReason> {
        check_modify(&self.ctx(), before)
    }

    /// This setup's order resized to `quantity` (and re-priced to `price`).
    fn modified(mut self, quantity: Decimal, price: Option<Decimal>) -> (Self, Order) {
        let before = self.order.clone();
        self.order.quantity = Quantity::new(quantity).unwrap();
        if let Some(p) = price {
            self.order.price = Some(Price::new(p).unwrap());
        }
        (self, before)
    }
}

fn cash(amount: Decimal, quantity: Decimal) -> ReservationRequest {
    ReservationRequest {
        hold: Hold::Cash {
            currency: usd(),
            amount,
        },
        quantity: Quantity::new(quantity).unwrap(),
    }
}

// ---- one test per denial reason ------------------------------------------------

#[test]
fn insufficient_funds() {
    let mut s = Setup::buy_limit(dec!(10));
    // 10 × 10 plus the 0.1 % fee estimate is 100.10; only 100.09 is free.
    let to_withdraw = s.account.free(&usd()) - dec!(100.09);
    s.account
        .adjust_cash(&Money::new(-to_withdraw, usd()).unwrap())
        .unwrap();
    assert_eq!(s.check(), Err(DeniedReason::InsufficientFunds));
    s.account
        .adjust_cash(&Money::new(dec!(0.01), usd()).unwrap())
        .unwrap();
    assert_eq!(s.check(), Ok(cash(dec!(100.10), dec!(10))));
}

#[test]
fn insufficient_position() {
    let s = Setup::sell_limit(dec!(10)).holding(dec!(9));
    assert_eq!(s.check(), Err(DeniedReason::InsufficientPosition));
    // Open sells already hold part of the position.
    let mut t = Setup::sell_limit(dec!(10)).holding(dec!(15));
    let other = ReservationRequest {
        hold: Hold::Position {
            instrument_id: t.order.instrument_id.clone(),
            quantity: dec!(6),
        },
        quantity: Quantity::new(dec!(6)).unwrap(),
    };
    t.account
        .reserve(OrderId::generate(), &other, dec!(15))
        .unwrap();
    assert_eq!(t.check(), Err(DeniedReason::InsufficientPosition));
}

#[test]
fn max_order_notional() {
    let mut s = Setup::buy_limit(dec!(10));
    s.limits.max_order_notional = Some(dec!(99.99));
    assert_eq!(s.check(), Err(DeniedReason::MaxOrderNotional));
    s.limits.max_order_notional = Some(dec!(100));
    assert!(s.check().is_ok(), "the limit itself is allowed");
    // The multiplier counts: one contract at 10 × 50 is 500.
    let mut f = Setup::buy_limit(dec!(1));
    f.instrument.multiplier = dec!(50);
    f.limits.max_order_notional = Some(dec!(499));
    assert_eq!(f.check(), Err(DeniedReason::MaxOrderNotional));
}

#[test]
fn max_open_orders() {
    let mut s = Setup::buy_limit(dec!(1));
    s.limits.max_open_orders = Some(3);
    s.open_orders = 2;
    assert!(s.check().is_ok());
    s.open_orders = 3;
    assert_eq!(s.check(), Err(DeniedReason::MaxOpenOrders));
}

#[test]
fn max_position() {
    let mut s = Setup::buy_limit(dec!(5)).holding(dec!(8));
    s.limits.max_position = Some(dec!(12));
    assert_eq!(s.check(), Err(DeniedReason::MaxPosition));
    // A short that would end beyond the limit is refused as well.
    let mut short = Setup::sell_limit(dec!(13)).margin();
    short.limits.max_position = Some(dec!(12));
    assert_eq!(short.check(), Err(DeniedReason::MaxPosition));
    // Already above the limit (say, the limit was lowered): reducing still passes.
    let mut over = Setup::sell_limit(dec!(5)).holding(dec!(20));
    over.limits.max_position = Some(dec!(12));
    assert!(over.check().is_ok());
}

#[test]
fn max_daily_loss() {
    let mut s = Setup::buy_limit(dec!(1)).holding(dec!(10));
    s.limits.max_daily_loss = Some(dec!(500));
    s.daily_pnl = dec!(-499.99);
    assert!(s.check().is_ok());
    s.daily_pnl = dec!(-500);
    assert_eq!(s.check(), Err(DeniedReason::MaxDailyLoss));
    // Reducing the position is how the user gets out: allowed.
    let mut out = Setup::sell_limit(dec!(10)).holding(dec!(10));
    out.limits.max_daily_loss = Some(dec!(500));
    out.daily_pnl = dec!(-800);
    assert!(out.check().is_ok());
}

#[test]
fn rate_limited() {
    let mut s = Setup::buy_limit(dec!(1));
    s.limits.max_orders_per_second = Some(5);
    s.orders_last_second = 4;
    assert!(s.check().is_ok());
    s.orders_last_second = 5;
    assert_eq!(s.check(), Err(DeniedReason::RateLimited));
}

#[test]
fn trading_halted_denies_even_reductions() {
    let mut s = Setup::sell_limit(dec!(1)).holding(dec!(10));
    s.trading_state = TradingState::Halted;
    assert_eq!(s.check(), Err(DeniedReason::TradingHalted));
    // The kill switch wins over every other reason.
    s.limits.max_orders_per_second = Some(0);
    assert_eq!(s.check(), Err(DeniedReason::TradingHalted));
}

#[rstest]
#[case::buy_when_flat(Side::Buy, dec!(1), dec!(0), false)]
#[case::buy_adds_to_long(Side::Buy, dec!(1), dec!(10), false)]
#[case::sell_part_of_long(Side::Sell, dec!(4), dec!(10), true)]
#[case::sell_all_of_long(Side::Sell, dec!(10), dec!(10), true)]
#[case::sell_beyond_flat(Side::Sell, dec!(11), dec!(10), false)]
#[case::buy_covers_short(Side::Buy, dec!(3), dec!(-5), true)]
#[case::sell_adds_to_short(Side::Sell, dec!(1), dec!(-5), false)]
fn reduce_only_and_reducing_state(
    #[case] side: Side,
    #[case] quantity: Decimal,
    #[case] position: Decimal,
    #[case] reduces: bool,
) {
    let base = Setup::new(side, OrderType::Limit, quantity)
        .holding(position)
        .margin();
    let expect = |r: Result<ReservationRequest, DeniedReason>| {
        if reduces {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert_eq!(r, Err(DeniedReason::ReduceOnly));
        }
    };
    let mut flagged = base;
    flagged.order.reduce_only = true;
    expect(flagged.check());
    flagged.order.reduce_only = false;
    assert!(
        flagged.check().is_ok(),
        "active and unflagged: no restriction"
    );
    flagged.trading_state = TradingState::Reducing;
    expect(flagged.check());
}

#[test]
fn no_market_price() {
    let mut s = Setup::new(Side::Buy, OrderType::Market, dec!(1));
    s.last_price = None;
    assert_eq!(s.check(), Err(DeniedReason::NoMarketPrice));
    // A stop-market order can be sized from its trigger alone.
    let mut stop = Setup::new(Side::Buy, OrderType::StopMarket, dec!(1));
    stop.last_price = None;
    assert!(stop.check().is_ok());
}

#[rstest]
#[case(DeniedReason::InsufficientFunds, "insufficient_funds")]
#[case(DeniedReason::InsufficientPosition, "insufficient_position")]
#[case(DeniedReason::MaxOrderNotional, "max_order_notional")]
#[case(DeniedReason::MaxOpenOrders, "max_open_orders")]
#[case(DeniedReason::MaxPosition, "max_position")]
#[case(DeniedReason::MaxDailyLoss, "max_daily_loss")]
#[case(DeniedReason::RateLimited, "rate_limited")]
#[case(DeniedReason::TradingHalted, "trading_halted")]
#[case(DeniedReason::ReduceOnly, "reduce_only")]
#[case(DeniedReason::NoMarketPrice, "no_market_price")]
// Disabled users are denied by the application before risk runs; the reason is
// still part of the machine-readable vocabulary.
#[case(DeniedReason::UserDisabled, "user_disabled")]
fn denial_codes(#[case] reason: DeniedReason, #[case] code: &str) {
    assert_eq!(reason.as_str(), code);
    assert_eq!(reason.to_string(), code);
    let json = serde_json::to_string(&reason).unwrap();
    assert_eq!(json, format!("\"{code}\""));
    assert_eq!(serde_json::from_str::<DeniedReason>(&json).unwrap(), reason);
}

// ---- the accept path: what gets reserved ------------------------------------------

#[test]
fn limit_buy_reserves_price_times_quantity_plus_fees() {
    let s = Setup::buy_limit(dec!(10));
    let request = s.check().unwrap();
    assert_eq!(request, cash(dec!(100.10), dec!(10)));
    // What risk approves, the account accepts.
    let mut account = s.account.clone();
    account.reserve(s.order.id, &request, dec!(0)).unwrap();
    assert_eq!(account.balance(&usd()).reserved, dec!(100.10));
}

#[test]
fn market_buy_reserves_at_last_price_plus_band_plus_fees() {
    let mut s = Setup::new(Side::Buy, OrderType::Market, dec!(10));
    s.last_price = Some(Price::new(dec!(20)).unwrap());
    // 10 × 20 × 1.05 = 210, plus 0.1 %.
    assert_eq!(s.check(), Ok(cash(dec!(210.21), dec!(10))));
    s.params.market_band = dec!(0.10);
    s.params.fee_rate = dec!(0.002);
    // 10 × 20 × 1.10 = 220, plus 0.2 %.
    assert_eq!(s.check(), Ok(cash(dec!(220.44), dec!(10))));
}

#[test]
fn stop_market_buy_uses_the_higher_of_trigger_and_last() {
    let mut s = Setup::new(Side::Buy, OrderType::StopMarket, dec!(10));
    // Trigger 12 above last 10: 10 × 12 × 1.05 × 1.001.
    assert_eq!(s.check(), Ok(cash(dec!(126.126), dec!(10))));
    s.last_price = Some(Price::new(dec!(13)).unwrap());
    assert_eq!(s.check(), Ok(cash(dec!(136.6365), dec!(10))));
}

#[test]
fn stop_limit_buy_reserves_at_its_limit() {
    let s = Setup::new(Side::Buy, OrderType::StopLimit, dec!(10));
    assert_eq!(s.check(), Ok(cash(dec!(100.10), dec!(10))));
}

#[test]
fn cash_account_sell_holds_the_position() {
    let s = Setup::sell_limit(dec!(10)).holding(dec!(25));
    let request = s.check().unwrap();
    assert_eq!(
        request.hold,
        Hold::Position {
            instrument_id: s.order.instrument_id.clone(),
            quantity: dec!(10),
        }
    );
    assert_eq!(request.quantity.get(), dec!(10));
}

#[rstest]
// A naked short holds collateral on all of it: 10 × 10 × 1 + 0.1 %.
#[case::naked_short(dec!(0), dec!(100.10))]
// Selling 10 out of a long of 4 opens a short of 6.
#[case::through_flat(dec!(4), dec!(60.06))]
// Closing a long needs no collateral.
#[case::closing_long(dec!(10), dec!(0))]
// Adding to a short holds on the whole order.
#[case::adding_to_short(dec!(-5), dec!(100.10))]
fn margin_sell_holds_collateral_on_the_opening_part(
    #[case] position: Decimal,
    #[case] collateral: Decimal,
) {
    let s = Setup::sell_limit(dec!(10)).holding(position).margin();
    assert_eq!(s.check(), Ok(cash(collateral, dec!(10))));
}

#[test]
fn margin_ratio_scales_collateral() {
    let mut s = Setup::sell_limit(dec!(10)).margin();
    s.params.margin_ratio = dec!(0.5);
    assert_eq!(s.check(), Ok(cash(dec!(50.05), dec!(10))));
}

#[test]
fn futures_reservations_use_the_multiplier() {
    let mut s = Setup::buy_limit(dec!(2));
    s.instrument.multiplier = dec!(50);
    assert_eq!(s.check(), Ok(cash(dec!(1001), dec!(2))));
}

#[test]
fn a_partly_filled_order_reserves_for_what_is_left() {
    let mut s = Setup::buy_limit(dec!(10));
    s.fill_at_10(dec!(4));
    let request = reservation_for(
        &s.order,
        &s.instrument,
        AccountType::Cash,
        Decimal::ZERO,
        &s.params,
        dec!(10),
    );
    assert_eq!(request, cash(dec!(60.06), dec!(6)));
}

#[test]
fn stricter_trading_state_wins() {
    use TradingState::*;
    assert_eq!(Active.stricter(Active), Active);
    assert_eq!(Active.stricter(Reducing), Reducing);
    assert_eq!(Halted.stricter(Reducing), Halted);
    assert_eq!(Reducing.stricter(Halted), Halted);
}

#[test]
fn account_errors_map_to_reasons() {
    let funds = AccountError::InsufficientFunds {
        currency: usd(),
        needed: dec!(1),
        free: dec!(0),
    };
    let position = AccountError::InsufficientPosition {
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        needed: dec!(1),
        free: dec!(0),
    };
    assert_eq!(DeniedReason::from(&funds), DeniedReason::InsufficientFunds);
    assert_eq!(
        DeniedReason::from(&position),
        DeniedReason::InsufficientPosition
    );
}

#[rstest]
#[case::limit_buy(Side::Buy, OrderType::Limit, false)]
#[case::market_buy(Side::Buy, OrderType::Market, false)]
#[case::margin_short(Side::Sell, OrderType::Limit, true)]
fn absurd_sizes_are_denied_without_panicking(
    #[case] side: Side,
    #[case] order_type: OrderType,
    #[case] margin: bool,
) {
    // Both within what a quantity and a price may hold (< 1e20), but their
    // product is beyond what a decimal can: bad input must never panic.
    let huge = dec!(99999999999999999999);
    let mut s = Setup::new(side, order_type, huge);
    if margin {
        s = s.margin();
    }
    if order_type.has_price() {
        s.order.price = Some(Price::new(huge).unwrap());
    }
    s.last_price = Some(Price::new(huge).unwrap());
    assert_eq!(s.check(), Err(DeniedReason::MaxOrderNotional));
    assert_eq!(
        s.instrument
            .notional(s.order.quantity, Price::new(huge).unwrap()),
        Decimal::MAX
    );
    // Re-sizing a hold (as a modify does) saturates and then fails the funds check.
    let request = reservation_for(
        &s.order,
        &s.instrument,
        s.account.account_type,
        Decimal::ZERO,
        &s.params,
        huge,
    );
    assert_eq!(
        request.hold,
        Hold::Cash {
            currency: usd(),
            amount: Decimal::MAX
        }
    );
    assert!(
        s.account
            .can_reserve(s.order.id, &request, Decimal::ZERO)
            .is_err()
    );
    assert!(
        s.instrument
            .check_notional(s.order.quantity, Price::new(huge).unwrap())
            .is_ok()
    );
}

// ---- modifications -----------------------------------------------------------

#[test]
fn enlarging_past_the_notional_limit_is_refused() {
    let mut s = Setup::buy_limit(dec!(10));
    s.limits.max_order_notional = Some(dec!(500));
    assert!(s.check().is_ok(), "100 of notional fits");
    let (s, before) = s.modified(dec!(60), None);
    assert_eq!(s.check_modify(&before), Err(DeniedReason::MaxOrderNotional));
    // Re-pricing counts too: 10 at 60 is 600.
    let (s, before) = Setup {
        limits: RiskLimits {
            max_order_notional: Some(dec!(500)),
            ..RiskLimits::default()
        },
        ..Setup::buy_limit(dec!(10))
    }
    .modified(dec!(10), Some(dec!(60)));
    assert_eq!(s.check_modify(&before), Err(DeniedReason::MaxOrderNotional));
}

#[test]
fn enlarging_past_the_position_limit_is_refused() {
    let mut s = Setup::buy_limit(dec!(5)).holding(dec!(10));
    s.limits.max_position = Some(dec!(20));
    let (s, before) = s.modified(dec!(11), None);
    assert_eq!(s.check_modify(&before), Err(DeniedReason::MaxPosition));
    let (s, before) = Setup {
        limits: RiskLimits {
            max_position: Some(dec!(20)),
            ..RiskLimits::default()
        },
        ..Setup::buy_limit(dec!(5)).holding(dec!(10))
    }
    .modified(dec!(10), None);
    assert!(s.check_modify(&before).is_ok(), "10 + 10 is the limit");
}

#[test]
fn halted_lets_only_quantity_decreases_through() {
    let mut s = Setup::buy_limit(dec!(10));
    s.trading_state = TradingState::Halted;
    let (up, before) = Setup { ..s }.modified(dec!(11), None);
    assert_eq!(up.check_modify(&before), Err(DeniedReason::TradingHalted));
    let mut s = Setup::buy_limit(dec!(10));
    s.trading_state = TradingState::Halted;
    let (repriced, before) = s.modified(dec!(5), Some(dec!(11)));
    assert_eq!(
        repriced.check_modify(&before),
        Err(DeniedReason::TradingHalted),
        "a smaller order at a new price is a new risk"
    );
    let mut s = Setup::buy_limit(dec!(10));
    s.trading_state = TradingState::Halted;
    s.limits.max_order_notional = Some(dec!(1));
    s.account = Account::new(UserId::new("alice").unwrap(), AccountType::Cash);
    let (down, before) = s.modified(dec!(4), None);
    assert_eq!(
        down.check_modify(&before),
        Ok(cash(dec!(40.04), dec!(4))),
        "lowering the quantity passes state, limits and funds"
    );
}

#[test]
fn reducing_lets_through_only_changes_that_still_reduce() {
    let mut s = Setup::sell_limit(dec!(4)).holding(dec!(10));
    s.trading_state = TradingState::Reducing;
    let (within, before) = s.modified(dec!(10), None);
    assert!(
        within.check_modify(&before).is_ok(),
        "selling all of a long reduces"
    );
    let mut s = Setup::sell_limit(dec!(4)).holding(dec!(10)).margin();
    s.trading_state = TradingState::Reducing;
    let (beyond, before) = s.modified(dec!(11), None);
    assert_eq!(beyond.check_modify(&before), Err(DeniedReason::ReduceOnly));
    let mut s = Setup::buy_limit(dec!(4));
    s.order.reduce_only = true;
    let (flagged, before) = s.modified(dec!(5), Some(dec!(9)));
    assert_eq!(flagged.check_modify(&before), Err(DeniedReason::ReduceOnly));
}

#[test]
fn a_modification_is_not_a_new_order() {
    let mut s = Setup::buy_limit(dec!(10));
    s.open_orders = 5;
    s.limits.max_open_orders = Some(5);
    s.orders_last_second = 9;
    s.limits.max_orders_per_second = Some(1);
    let (s, before) = s.modified(dec!(12), None);
    assert_eq!(s.check_modify(&before), Ok(cash(dec!(120.12), dec!(12))));
}

#[test]
fn enlarging_beyond_the_funds_left_is_refused() {
    let mut s = Setup::buy_limit(dec!(10));
    s.account = Account::new(UserId::new("alice").unwrap(), AccountType::Cash);
    s.account
        .adjust_cash(&Money::new(dec!(150), usd()).unwrap())
        .unwrap();
    let (s, before) = s.modified(dec!(20), None);
    assert_eq!(
        s.check_modify(&before),
        Err(DeniedReason::InsufficientFunds)
    );
}

#[test]
fn a_partly_filled_order_is_checked_on_what_it_leaves() {
    let mut s = Setup::buy_limit(dec!(10)).holding(dec!(4));
    s.fill_at_10(dec!(4));
    // Position 4 (the fill) + 8 left of the enlarged 12 = 12: within 12.
    s.limits.max_position = Some(dec!(12));
    let (s, before) = s.modified(dec!(12), None);
    assert_eq!(s.check_modify(&before), Ok(cash(dec!(80.08), dec!(8))));
}
