//! Identifier text → every id type of `ordermon_domain::ids`: whatever parses
//! re-parses to itself from its `Display` and its JSON form; string ids keep their
//! text, UUID ids are version 7, an instrument id splits into a valid symbol and
//! venue that rebuild it.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use ordermon_domain::ids::{
    AlertId, ClientOrderId, EventId, InstrumentId, NotificationId, OrderId, RuleName, SessionId,
    SilenceId, StrategyId, Symbol, TradeId, UserId, Venue,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|text: &str| {
    for shown in [
        round_trip::<UserId>(text),
        round_trip::<ClientOrderId>(text),
        round_trip::<TradeId>(text),
        round_trip::<StrategyId>(text),
        round_trip::<Symbol>(text),
        round_trip::<Venue>(text),
        round_trip::<RuleName>(text),
        round_trip::<InstrumentId>(text),
    ]
    .into_iter()
    .flatten()
    {
        // String ids are stored as given: no trimming, no case folding.
        assert_eq!(shown, text);
        assert!(!shown.is_empty() && shown.len() <= 128);
    }

    if let Some(shown) = round_trip::<OrderId>(text) {
        let uuid = uuid::Uuid::parse_str(&shown).expect("an order id shows a UUID");
        assert_eq!(uuid.get_version_num(), 7);
        // Every accepted spelling (braced, URN, simple, any case) shows alike.
        for other in [
            round_trip::<EventId>(text),
            round_trip::<AlertId>(text),
            round_trip::<SilenceId>(text),
            round_trip::<NotificationId>(text),
            round_trip::<SessionId>(text),
        ] {
            assert_eq!(other.as_deref(), Some(shown.as_str()));
        }
    } else {
        assert!(text.parse::<EventId>().is_err());
    }

    if let Ok(id) = text.parse::<InstrumentId>() {
        let symbol = Symbol::new(id.symbol()).expect("the symbol part is a symbol");
        let venue = Venue::new(id.venue()).expect("the venue part is a venue");
        assert_eq!(InstrumentId::from_parts(&symbol, &venue), id);
    }
});

/// Parses `text`; when it parses, checks the `Display` and JSON round trips and
/// returns the shown text.
fn round_trip<T>(text: &str) -> Option<String>
where
    T: FromStr + Display + Debug + PartialEq + Serialize + DeserializeOwned,
{
    let value = text.parse::<T>().ok()?;
    let shown = value.to_string();
    let again = shown.parse::<T>().ok();
    assert_eq!(again.as_ref(), Some(&value), "{shown:?} does not re-parse");
    let json = serde_json::to_string(&value).expect("an id serializes");
    let back = serde_json::from_str::<T>(&json).ok();
    assert_eq!(back.as_ref(), Some(&value), "{json} does not deserialize");
    Some(shown)
}
