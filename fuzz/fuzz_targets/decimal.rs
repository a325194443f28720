//! Decimal text → `parse_decimal`, `Price`, `Quantity`, `Money`: whatever parses
//! stays within the stored bounds and round-trips through its `Display` and its
//! JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordermon_domain::Decimal;
use ordermon_domain::values::{
    Currency, MAX_ABS, MAX_SCALE, Money, Price, Quantity, parse_decimal,
};

fuzz_target!(|text: &str| {
    let Ok(d) = parse_decimal(text) else {
        assert!(text.parse::<Price>().is_err());
        assert!(text.parse::<Quantity>().is_err());
        return;
    };
    // Exact: the text shown is the text read, scale included.
    let shown = d.to_string();
    let again = parse_decimal(&shown).expect("a parsed decimal re-parses");
    assert_eq!(again, d);
    assert_eq!(again.scale(), d.scale());

    let json = serde_json::to_string(text).expect("a string serializes");
    match text.parse::<Price>() {
        Ok(p) => {
            assert!(p.get() > Decimal::ZERO);
            assert_bounded(p.get());
            assert_eq!(p.to_string().parse::<Price>(), Ok(p));
            assert_eq!(serde_json::from_str::<Price>(&json).ok(), Some(p));
            let out = serde_json::to_string(&p).expect("a price serializes");
            assert_eq!(serde_json::from_str::<Price>(&out).ok(), Some(p));
        }
        Err(_) => assert!(serde_json::from_str::<Price>(&json).is_err()),
    }
    match text.parse::<Quantity>() {
        Ok(q) => {
            assert!(q.get() >= Decimal::ZERO);
            assert_bounded(q.get());
            assert_eq!(q.to_string().parse::<Quantity>(), Ok(q));
            assert_eq!(serde_json::from_str::<Quantity>(&json).ok(), Some(q));
            assert_eq!(q.saturating_sub(q), Quantity::ZERO);
            if let Ok(sum) = q.checked_add(q) {
                assert!(sum >= q);
            }
            // Money accepts any stored amount, of either sign.
            let usd = Currency::new("USD").expect("USD is a currency");
            let m = Money::new(-q.get(), usd).expect("a negated quantity is money");
            assert!(!m.to_string().is_empty());
        }
        Err(_) => assert!(serde_json::from_str::<Quantity>(&json).is_err()),
    }
});

fn assert_bounded(d: Decimal) {
    assert!(d.scale() <= MAX_SCALE, "{d} has scale {}", d.scale());
    assert!(d.abs() < MAX_ABS, "{d} is too large");
}
