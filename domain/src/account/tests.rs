//! Reservation arithmetic: deposits and withdrawals, holds for buys and sells,
//! release, proportional consumption by fills, and the errors that change nothing.

use rust_decimal_macros::dec;

use super::*;

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn money(amount: Decimal, currency: &Currency) -> Money {
    Money::new(amount, currency.clone()).unwrap()
}

fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

fn account_with(kind: AccountType, usd_cash: Decimal) -> Account {
    let mut a = Account::new(UserId::new("alice").unwrap(), kind);
    if !usd_cash.is_zero() {
        a.adjust_cash(&money(usd_cash, &usd())).unwrap();
    }
    a
}

fn cash_hold(amount: Decimal, quantity: Decimal) -> ReservationRequest {
    ReservationRequest {
        hold: Hold::Cash {
            currency: usd(),
            amount,
        },
        quantity: Quantity::new(quantity).unwrap(),
    }
}

fn position_hold(quantity: Decimal) -> ReservationRequest {
    ReservationRequest {
        hold: Hold::Position {
            instrument_id: acme(),
            quantity,
        },
        quantity: Quantity::new(quantity).unwrap(),
    }
}

/// Settles a fill of ACME.SIM (multiplier 1, USD) with a USD commission.
fn settle(
    a: &mut Account,
    order: OrderId,
    side: Side,
    q: Decimal,
    px: Decimal,
    commission: Decimal,
) -> Settlement {
    a.settle_fill(
        order,
        side,
        Quantity::new(q).unwrap(),
        Price::new(px).unwrap(),
        Decimal::ONE,
        &usd(),
        &money(commission, &usd()),
    )
}

/// (total, reserved, free) of USD.
fn usd_balance(a: &Account) -> (Decimal, Decimal, Decimal) {
    let b = a.balance(&usd());
    (b.total, b.reserved, b.free())
}

#[test]
fn deposit_and_withdraw_free_cash_only() {
    let mut a = account_with(AccountType::Cash, dec!(1000));
    assert_eq!(usd_balance(&a), (dec!(1000), dec!(0), dec!(1000)));
    a.adjust_cash(&money(dec!(-300), &usd())).unwrap();
    assert_eq!(usd_balance(&a), (dec!(700), dec!(0), dec!(700)));

    a.reserve(OrderId::generate(), &cash_hold(dec!(600), dec!(6)), dec!(0))
        .unwrap();
    assert_eq!(usd_balance(&a), (dec!(700), dec!(600), dec!(100)));
    // Reserved cash cannot be withdrawn.
    let before = a.clone();
    assert_eq!(
        a.adjust_cash(&money(dec!(-100.01), &usd())),
        Err(AccountError::InsufficientFunds {
            currency: usd(),
            needed: dec!(100.01),
            free: dec!(100),
        })
    );
    assert_eq!(a, before);
    a.adjust_cash(&money(dec!(-100), &usd())).unwrap();
    assert_eq!(usd_balance(&a), (dec!(600), dec!(600), dec!(0)));
    assert!(a.invariants_hold());
}

#[test]
fn an_unfunded_currency_is_zero_and_cannot_be_withdrawn() {
    let mut a = account_with(AccountType::Cash, dec!(0));
    let hkd = Currency::new("HKD").unwrap();
    assert_eq!(a.free(&hkd), dec!(0));
    assert_eq!(a.balance(&hkd).total, dec!(0));
    assert!(a.adjust_cash(&money(dec!(-1), &hkd)).is_err());
    assert!(
        a.balances.is_empty(),
        "a refused withdrawal opens no balance"
    );
}

#[test]
fn reserve_buy_then_release_on_cancel() {
    let mut a = account_with(AccountType::Cash, dec!(10000));
    let order = OrderId::generate();
    // 10 @ 100 plus a 1 % fee estimate.
    a.reserve(order, &cash_hold(dec!(1010), dec!(10)), dec!(0))
        .unwrap();
    assert_eq!(usd_balance(&a), (dec!(10000), dec!(1010), dec!(8990)));
    assert_eq!(a.reservations[&order].remaining_qty, dec!(10));

    // One reservation per order.
    let before = a.clone();
    assert_eq!(
        a.reserve(order, &cash_hold(dec!(1), dec!(1)), dec!(0)),
        Err(AccountError::AlreadyReserved(order))
    );
    assert_eq!(a, before);

    assert_eq!(
        a.release(order),
        Some(Hold::Cash {
            currency: usd(),
            amount: dec!(1010)
        })
    );
    assert_eq!(usd_balance(&a), (dec!(10000), dec!(0), dec!(10000)));
    assert_eq!(a.release(order), None, "a second release finds nothing");
}

#[test]
fn fills_consume_their_share_and_the_last_one_frees_the_rest() {
    let mut a = account_with(AccountType::Cash, dec!(10000));
    let order = OrderId::generate();
    a.reserve(order, &cash_hold(dec!(1010), dec!(10)), dec!(0))
        .unwrap();

    // 4 of 10 fill at the limit: 4/10 of the hold is consumed.
    let s = settle(&mut a, order, Side::Buy, dec!(4), dec!(100), dec!(0.4));
    assert_eq!(s.cash_flow, dec!(-400));
    assert_eq!(s.consumed, dec!(404));
    assert_eq!(s.released, dec!(0));
    assert_eq!(usd_balance(&a), (dec!(9599.6), dec!(606), dec!(8993.6)));
    assert_eq!(a.reservations[&order].remaining_qty, dec!(6));

    // The last 6 fill below the limit (price improvement) with a small fee: the
    // whole remaining hold goes, so the 11.5 not spent is free again.
    let s = settle(&mut a, order, Side::Buy, dec!(6), dec!(99), dec!(0.5));
    assert_eq!(s.cash_flow, dec!(-594));
    assert_eq!(s.consumed + s.released, dec!(606));
    assert!(!a.reservations.contains_key(&order));
    assert_eq!(usd_balance(&a), (dec!(9005.1), dec!(0), dec!(9005.1)));
    // Spent exactly the fills' cost: 400 + 0.4 + 594 + 0.5.
    assert_eq!(dec!(10000) - a.balance(&usd()).total, dec!(994.9));
    assert!(a.invariants_hold());
}

#[test]
fn proportional_shares_add_up_to_the_hold_exactly() {
    let mut a = account_with(AccountType::Cash, dec!(1000));
    let order = OrderId::generate();
    a.reserve(order, &cash_hold(dec!(100), dec!(3)), dec!(0))
        .unwrap();
    let mut consumed = Decimal::ZERO;
    for _ in 0..3 {
        consumed += settle(&mut a, order, Side::Buy, dec!(1), dec!(30), dec!(0)).consumed;
    }
    assert_eq!(consumed, dec!(100));
    assert_eq!(a.balance(&usd()).reserved, dec!(0));
    assert_eq!(a.balance(&usd()).total, dec!(910));
}

#[test]
fn cash_account_sell_holds_position_quantity() {
    let mut a = account_with(AccountType::Cash, dec!(0));
    let first = OrderId::generate();
    a.reserve(first, &position_hold(dec!(30)), dec!(100))
        .unwrap();
    assert_eq!(a.free_position(&acme(), dec!(100)), dec!(70));
    assert_eq!(a.position_holds[&acme()].get(), dec!(30));
    // No cash is held for a sell.
    assert_eq!(a.balance(&usd()).reserved, dec!(0));

    // Selling more than the free position is refused and changes nothing.
    let second = OrderId::generate();
    let before = a.clone();
    assert_eq!(
        a.reserve(second, &position_hold(dec!(80)), dec!(100)),
        Err(AccountError::InsufficientPosition {
            instrument_id: acme(),
            needed: dec!(80),
            free: dec!(70),
        })
    );
    assert_eq!(a, before);
    a.reserve(second, &position_hold(dec!(70)), dec!(100))
        .unwrap();
    assert_eq!(a.free_position(&acme(), dec!(100)), dec!(0));

    // A fill consumes held quantity and brings in the proceeds less commission.
    let s = settle(&mut a, first, Side::Sell, dec!(10), dec!(50), dec!(0.5));
    assert_eq!((s.cash_flow, s.consumed), (dec!(500), dec!(10)));
    assert_eq!(a.position_holds[&acme()].get(), dec!(90));
    assert_eq!(usd_balance(&a), (dec!(499.5), dec!(0), dec!(499.5)));
    // The position itself is now 90, all of it held.
    assert_eq!(a.free_position(&acme(), dec!(90)), dec!(0));

    // Cancel releases what is left of that order's hold.
    assert_eq!(
        a.release(first),
        Some(Hold::Position {
            instrument_id: acme(),
            quantity: dec!(20)
        })
    );
    assert_eq!(a.free_position(&acme(), dec!(90)), dec!(20));
    a.release(second);
    assert!(a.position_holds.is_empty());
}

#[test]
fn no_position_no_sell() {
    let a = account_with(AccountType::Cash, dec!(1000));
    // A short position counts as nothing to sell.
    assert_eq!(a.free_position(&acme(), dec!(-5)), dec!(0));
    assert!(matches!(
        a.can_reserve(OrderId::generate(), &position_hold(dec!(1)), dec!(-5)),
        Err(AccountError::InsufficientPosition { .. })
    ));
}

#[test]
fn insufficient_funds_change_nothing() {
    let mut a = account_with(AccountType::Cash, dec!(500));
    a.reserve(OrderId::generate(), &cash_hold(dec!(400), dec!(4)), dec!(0))
        .unwrap();
    let before = a.clone();
    let order = OrderId::generate();
    assert_eq!(
        a.reserve(order, &cash_hold(dec!(100.01), dec!(1)), dec!(0)),
        Err(AccountError::InsufficientFunds {
            currency: usd(),
            needed: dec!(100.01),
            free: dec!(100),
        })
    );
    assert_eq!(a, before);
    // A negative hold is nonsense, not a way to create cash.
    assert!(
        a.reserve(order, &cash_hold(dec!(-5), dec!(1)), dec!(0))
            .is_err()
    );
    assert_eq!(a, before);
    // Exactly the free amount is fine.
    a.reserve(order, &cash_hold(dec!(100), dec!(1)), dec!(0))
        .unwrap();
    assert_eq!(usd_balance(&a), (dec!(500), dec!(500), dec!(0)));
}

#[test]
fn late_fill_without_reservation_still_moves_cash() {
    let mut a = account_with(AccountType::Cash, dec!(1000));
    let order = OrderId::generate();
    a.reserve(order, &cash_hold(dec!(202), dec!(2)), dec!(0))
        .unwrap();
    a.release(order);
    // The venue filled one unit before our cancel arrived.
    let s = settle(&mut a, order, Side::Buy, dec!(1), dec!(100), dec!(1));
    assert_eq!((s.consumed, s.released), (dec!(0), dec!(0)));
    assert_eq!(s.cash_flow, dec!(-100));
    assert_eq!(usd_balance(&a), (dec!(899), dec!(0), dec!(899)));
}

#[test]
fn commission_in_another_currency_is_charged_to_that_balance() {
    let mut a = account_with(AccountType::Cash, dec!(1000));
    let bnb = Currency::new("BNB").unwrap();
    a.adjust_cash(&money(dec!(1), &bnb)).unwrap();
    let order = OrderId::generate();
    a.reserve(order, &cash_hold(dec!(101), dec!(1)), dec!(0))
        .unwrap();
    let s = a.settle_fill(
        order,
        Side::Buy,
        Quantity::new(dec!(1)).unwrap(),
        Price::new(dec!(100)).unwrap(),
        Decimal::ONE,
        &usd(),
        &money(dec!(0.002), &bnb),
    );
    assert_eq!(s.commission, money(dec!(0.002), &bnb));
    assert_eq!(usd_balance(&a), (dec!(900), dec!(0), dec!(900)));
    assert_eq!(a.balance(&bnb).total, dec!(0.998));
    assert!(a.invariants_hold());
}

#[test]
fn multiplier_scales_the_cash_flow() {
    let mut a = account_with(AccountType::Margin, dec!(1000000));
    let s = a.settle_fill(
        OrderId::generate(),
        Side::Sell,
        Quantity::new(dec!(2)).unwrap(),
        Price::new(dec!(4000.25)).unwrap(),
        dec!(50),
        &usd(),
        &money(dec!(4), &usd()),
    );
    assert_eq!(s.cash_flow, dec!(400025));
    assert_eq!(a.balance(&usd()).total, dec!(1400021));
}

#[test]
fn account_json_round_trips_with_decimal_strings() {
    let mut a = account_with(AccountType::Cash, dec!(1000.50));
    let order = OrderId::generate();
    a.reserve(order, &cash_hold(dec!(10.25), dec!(1)), dec!(0))
        .unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["balances"]["USD"]["total"], "1000.50");
    assert_eq!(json["balances"]["USD"]["reserved"], "10.25");
    assert_eq!(serde_json::from_value::<Account>(json).unwrap(), a);
}
