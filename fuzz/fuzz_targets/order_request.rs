//! Request body bytes → the API's order bodies (`SubmitOrderRequest`,
//! `BatchRequest`, `ModifyOrderRequest`) through the same `parse_json` the
//! handlers use, then into the domain: a body is refused with 400 (syntax) or
//! 422 (shape) and nothing else; an accepted body's decimals and ids have the
//! shapes the OpenAPI document states; the domain order built from it checks
//! against an instrument without panicking, and the body serializes and
//! parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordermon_domain::ids::{InstrumentId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::values::{Currency, Price, Quantity};
use ordermon_http::dto::formats::{DECIMAL_MAX_LENGTH, NON_NEGATIVE_DECIMAL_PATTERN};
use ordermon_http::dto::{BatchRequest, ModifyOrderRequest, SubmitOrderRequest};
use ordermon_http::error::ApiError;
use ordermon_http::extract::parse_json;

fn refused_cleanly(e: &ApiError) {
    let code = e.status.as_u16();
    assert!(code == 400 || code == 422, "{code}: {}", e.detail);
    assert!(!e.code.is_empty());
}

fn decimal_shaped(text: &str) {
    assert!(text.len() <= DECIMAL_MAX_LENGTH, "{text}");
    let re = regex::Regex::new(NON_NEGATIVE_DECIMAL_PATTERN).expect("pattern");
    assert!(re.is_match(text), "{text}");
}

fn instrument() -> Instrument {
    Instrument {
        id: InstrumentId::new("ACME.SIM").expect("id"),
        quote_currency: Currency::new("USD").expect("currency"),
        tick_size: "0.01".parse::<Price>().expect("tick"),
        lot_size: "1".parse::<Quantity>().expect("lot"),
        min_quantity: "1".parse::<Quantity>().expect("min"),
        max_quantity: Some("1000000".parse::<Quantity>().expect("max")),
        min_notional: None,
        multiplier: ordermon_domain::Decimal::ONE,
        version: 1,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let user = UserId::new("fuzz").expect("user");
    let inst = instrument();
    match parse_json::<SubmitOrderRequest>(bytes) {
        Err(e) => refused_cleanly(&e),
        Ok(req) => {
            decimal_shaped(&req.quantity.to_string());
            let json = serde_json::to_vec(&req).expect("serializes");
            let back = parse_json::<SubmitOrderRequest>(&json).expect("its own JSON parses");
            assert_eq!(back, req);
            let order = req.into_new_order(user.clone());
            let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
            let _ = order.validate(now);
            let _ = inst.check_quantity(order.quantity);
            if let Some(p) = order.price {
                decimal_shaped(&p.to_string());
                let _ = inst.check_price(p);
            }
        }
    }
    if let Err(e) = parse_json::<BatchRequest>(bytes) {
        refused_cleanly(&e);
    }
    match parse_json::<ModifyOrderRequest>(bytes) {
        Err(e) => refused_cleanly(&e),
        Ok(m) => {
            for q in m.quantity.iter() {
                decimal_shaped(&q.to_string());
            }
        }
    }
});
