//! Worked-number tests for netting positions: opening, adding, closing, flipping,
//! shorts, commissions, marks and contract multipliers.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rstest::rstest;
use rust_decimal_macros::dec;

use super::*;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 14, 0, 0).unwrap() + Duration::seconds(secs)
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn fee(amount: Decimal) -> Money {
    Money::new(amount, usd()).unwrap()
}

fn flat_with_multiplier(multiplier: Decimal) -> Position {
    Position::flat(
        UserId::new("alice").unwrap(),
        InstrumentId::new("ACME.SIM").unwrap(),
        usd(),
        multiplier,
        t(0),
    )
}

fn flat() -> Position {
    flat_with_multiplier(dec!(1))
}

/// Applies a fill described in numbers; returns what it did.
fn trade(
    p: &mut Position,
    side: Side,
    q: Decimal,
    price: Decimal,
    commission: Decimal,
    secs: i64,
) -> PositionChange {
    p.apply_fill(
        side,
        Quantity::new(q).unwrap(),
        Price::new(price).unwrap(),
        &fee(commission),
        t(secs),
    )
}

fn mark(d: Decimal) -> Option<Price> {
    Some(Price::new(d).unwrap())
}

#[test]
fn open_long() {
    let mut p = flat();
    let c = trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(1), 1);
    assert_eq!(p.side(), PositionSide::Long);
    assert_eq!(p.quantity, dec!(10));
    assert_eq!(p.cost, dec!(1000));
    assert_eq!(p.avg_open_price(), Some(dec!(100)));
    // Opening realizes nothing but the commission.
    assert_eq!(p.realized_pnl, dec!(-1));
    assert_eq!(p.commissions, dec!(1));
    assert_eq!(p.opened_at, Some(t(1)));
    assert_eq!(p.closed_at, None);
    assert_eq!(
        c,
        PositionChange {
            closed_qty: dec!(0),
            opened_qty: dec!(10),
            realized: dec!(-1),
            flipped: false,
            quantity_after: dec!(10),
        }
    );
}

#[test]
fn add_to_long_averages_the_price() {
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(0), 1);
    let c = trade(&mut p, Side::Buy, dec!(10), dec!(110), dec!(0), 2);
    assert_eq!((c.opened_qty, c.closed_qty), (dec!(10), dec!(0)));
    assert_eq!(p.quantity, dec!(20));
    assert_eq!(p.cost, dec!(2100));
    assert_eq!(p.avg_open_price(), Some(dec!(105)));
    // Adding does not reopen: the position's open time is the first fill's.
    assert_eq!(p.opened_at, Some(t(1)));
}

#[test]
fn partial_then_full_close_realize_against_the_average() {
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(0), 1);
    trade(&mut p, Side::Buy, dec!(10), dec!(110), dec!(0), 2);

    // Sell 5 @ 120 against an average of 105: (120 − 105) × 5 − 0.5 commission.
    let partial = trade(&mut p, Side::Sell, dec!(5), dec!(120), dec!(0.5), 3);
    assert_eq!(partial.closed_qty, dec!(5));
    assert_eq!(partial.opened_qty, dec!(0));
    assert_eq!(partial.realized, dec!(74.5));
    assert_eq!(p.quantity, dec!(15));
    assert_eq!(p.cost, dec!(1575));
    assert_eq!(p.avg_open_price(), Some(dec!(105)));
    assert_eq!(p.realized_pnl, dec!(74.5));

    // Sell the other 15 @ 100: (100 − 105) × 15.
    let full = trade(&mut p, Side::Sell, dec!(15), dec!(100), dec!(0), 4);
    assert_eq!(full.realized, dec!(-75));
    assert_eq!(full.quantity_after, dec!(0));
    assert!(!full.flipped);
    assert_eq!(p.side(), PositionSide::Flat);
    assert_eq!(p.cost, dec!(0));
    assert_eq!(p.avg_open_price(), None);
    assert_eq!(p.realized_pnl, dec!(-0.5));
    assert_eq!(p.closed_at, Some(t(4)));
    assert_eq!(p.unrealized_pnl(mark(dec!(130))), dec!(0));
}

#[test]
fn flip_long_to_short_splits_into_close_and_open() {
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(0), 1);
    let c = trade(&mut p, Side::Sell, dec!(15), dec!(90), dec!(1.5), 2);
    assert!(c.flipped);
    assert_eq!(c.closed_qty, dec!(10));
    assert_eq!(c.opened_qty, dec!(5));
    // Closing 10 at 90 against 100 loses 100; the whole commission is charged once.
    assert_eq!(c.realized, dec!(-101.5));
    assert_eq!(c.quantity_after, dec!(-5));
    assert_eq!(p.side(), PositionSide::Short);
    // The new short opened at the fill price.
    assert_eq!(p.cost, dec!(-450));
    assert_eq!(p.avg_open_price(), Some(dec!(90)));
    assert_eq!(p.opened_at, Some(t(2)));
    // Flip back: buy 8 @ 80 closes the 5 short (+50) and opens 3 long.
    let back = trade(&mut p, Side::Buy, dec!(8), dec!(80), dec!(0), 3);
    assert!(back.flipped);
    assert_eq!((back.closed_qty, back.opened_qty), (dec!(5), dec!(3)));
    assert_eq!(back.realized, dec!(50));
    assert_eq!(p.quantity, dec!(3));
    assert_eq!(p.avg_open_price(), Some(dec!(80)));
    assert_eq!(p.realized_pnl, dec!(-51.5));
}

#[test]
fn short_profits_when_the_price_falls() {
    let mut p = flat();
    let open = trade(&mut p, Side::Sell, dec!(10), dec!(50), dec!(0), 1);
    assert_eq!(open.quantity_after, dec!(-10));
    assert_eq!(p.cost, dec!(-500));
    assert_eq!(p.avg_open_price(), Some(dec!(50)));
    // Price fell to 45: a short of 10 is up 50.
    assert_eq!(p.unrealized_pnl(mark(dec!(45))), dec!(50));
    assert_eq!(p.market_value(mark(dec!(45))), dec!(-450));

    let cover = trade(&mut p, Side::Buy, dec!(4), dec!(40), dec!(0), 2);
    assert_eq!(cover.closed_qty, dec!(4));
    assert_eq!(cover.realized, dec!(40));
    assert_eq!(p.quantity, dec!(-6));
    assert_eq!(p.cost, dec!(-300));
    assert_eq!(p.unrealized_pnl(mark(dec!(45))), dec!(30));
    // A rise hurts the short.
    assert_eq!(p.unrealized_pnl(mark(dec!(55))), dec!(-30));
}

#[rstest]
#[case::none(dec!(0), dec!(100))]
#[case::small(dec!(2.5), dec!(97.5))]
#[case::large(dec!(150), dec!(-50))]
fn commissions_reduce_realized(#[case] commission: Decimal, #[case] realized: Decimal) {
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(0), 1);
    let c = trade(&mut p, Side::Sell, dec!(10), dec!(110), commission, 2);
    assert_eq!(c.realized, realized);
    assert_eq!(p.realized_pnl, realized);
    assert_eq!(p.commissions, commission);
}

#[test]
fn commission_in_another_currency_is_not_charged_to_quote_pnl() {
    let mut p = flat();
    let bnb = Money::new(dec!(0.01), Currency::new("BNB").unwrap()).unwrap();
    let c = p.apply_fill(
        Side::Buy,
        Quantity::new(dec!(1)).unwrap(),
        Price::new(dec!(100)).unwrap(),
        &bnb,
        t(1),
    );
    assert_eq!(c.realized, dec!(0));
    assert_eq!(p.commissions, dec!(0));
    assert_eq!(p.realized_pnl, dec!(0));
}

#[test]
fn unrealized_at_a_mark_and_at_the_last_fill() {
    let mut p = flat();
    assert_eq!(p.unrealized_pnl(None), dec!(0), "no mark known yet");
    trade(&mut p, Side::Buy, dec!(10), dec!(100), dec!(0), 1);
    assert_eq!(p.unrealized_pnl(mark(dec!(105))), dec!(50));
    assert_eq!(p.unrealized_pnl(mark(dec!(99.99))), dec!(-0.1));
    // Without an explicit mark the last fill price is used.
    trade(&mut p, Side::Buy, dec!(10), dec!(102), dec!(0), 2);
    assert_eq!(p.last_mark, mark(dec!(102)));
    assert_eq!(p.unrealized_pnl(None), dec!(20));
    assert_eq!(p.market_value(None), dec!(2040));
}

#[test]
fn futures_multiplier_scales_cost_and_pnl() {
    let mut p = flat_with_multiplier(dec!(50));
    trade(&mut p, Side::Buy, dec!(2), dec!(4000.25), dec!(4.2), 1);
    assert_eq!(p.cost, dec!(400025.00));
    // The average price is per unit, not per contract value.
    assert_eq!(p.avg_open_price(), Some(dec!(4000.25)));
    // One point is worth 50.
    assert_eq!(p.unrealized_pnl(mark(dec!(4001.25))), dec!(100));

    let c = trade(&mut p, Side::Sell, dec!(1), dec!(4010.25), dec!(2.1), 2);
    assert_eq!(c.realized, dec!(497.9));
    assert_eq!(p.cost, dec!(200012.50));
    assert_eq!(p.unrealized_pnl(mark(dec!(4005))), dec!(237.5));
    assert_eq!(p.realized_pnl, dec!(493.7));
}

#[test]
fn thirds_still_add_up_exactly() {
    // An average of 32/3 cannot be written exactly; the cost basis keeps the
    // realized total equal to the cash flows anyway.
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(1), dec!(10), dec!(0), 1);
    trade(&mut p, Side::Buy, dec!(2), dec!(11), dec!(0), 2);
    assert_eq!(p.avg_open_price(), Some(dec!(10.666666666666666667)));
    let first = trade(&mut p, Side::Sell, dec!(1), dec!(12), dec!(0), 3);
    assert_eq!(first.realized, dec!(1.333333333333333333));
    let rest = trade(&mut p, Side::Sell, dec!(2), dec!(12), dec!(0), 4);
    assert_eq!(rest.realized, dec!(2.666666666666666667));
    // −10 − 22 + 12 + 24
    assert_eq!(p.realized_pnl, dec!(4));
}

#[test]
fn reopening_after_flat_sets_a_new_open_time() {
    let mut p = flat();
    trade(&mut p, Side::Buy, dec!(1), dec!(10), dec!(0), 1);
    trade(&mut p, Side::Sell, dec!(1), dec!(10), dec!(0), 2);
    assert_eq!(p.closed_at, Some(t(2)));
    trade(&mut p, Side::Sell, dec!(3), dec!(11), dec!(0), 3);
    assert_eq!(p.opened_at, Some(t(3)));
    assert_eq!(p.side(), PositionSide::Short);
    assert_eq!(p.updated_at, t(3));
}

#[test]
fn position_change_json_carries_decimal_strings() {
    let mut p = flat();
    let c = trade(&mut p, Side::Buy, dec!(1.5), dec!(10), dec!(0.25), 1);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["opened_qty"], "1.5");
    assert_eq!(json["realized"], "-0.25");
    assert_eq!(serde_json::from_value::<PositionChange>(json).unwrap(), c);
    let back: Position = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}
