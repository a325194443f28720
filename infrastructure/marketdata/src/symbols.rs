//! Instrument ids ↔ provider symbols.
//!
//! ordermon names an instrument `SYMBOL.VENUE` (ISO 10383 MIC for exchanges,
//! `BINANCE` for the crypto venue); each provider has its own spelling:
//!
//! - **Binance**: the venue is the provider's (`BINANCE` unless configured);
//!   the symbol is the id's symbol with any `/` removed, so `BTCUSDT.BINANCE`
//!   and `BTC/USDT.BINANCE` are both `BTCUSDT`. Going back, `BTCUSDT` is
//!   `BTCUSDT.BINANCE`.
//! - **Yahoo**: the venue picks a suffix from [`YAHOO_VENUES`] (or the
//!   configured overrides): `0700.HKEX` ↔ `0700.HK`, `AAPL.XNAS` ↔ `AAPL`.
//!   Hong Kong codes are zero-padded to four digits as Yahoo writes them
//!   (`5.HKEX` → `0005.HK`), and a `/` in a share-class symbol becomes Yahoo's
//!   `-` (`BRK/B.XNYS` → `BRK-B`).

use std::collections::BTreeMap;

use ordermon_domain::ids::InstrumentId;

/// Venue (MIC) → Yahoo symbol suffix, for the exchanges ordermon knows.
/// A configured `venues` table adds to or overrides it.
pub const YAHOO_VENUES: &[(&str, &str)] = &[
    // Hong Kong
    ("HKEX", ".HK"),
    ("XHKG", ".HK"),
    // United States: Yahoo writes US listings without a suffix.
    ("XNAS", ""),
    ("XNYS", ""),
    ("ARCX", ""),
    ("BATS", ""),
    ("XASE", ""),
    // Mainland China, Taiwan, Japan, Korea, Singapore, Australia
    ("XSHG", ".SS"),
    ("XSHE", ".SZ"),
    ("XTAI", ".TW"),
    ("XTKS", ".T"),
    ("XKRX", ".KS"),
    ("XSES", ".SI"),
    ("XASX", ".AX"),
    // Europe and Canada
    ("XLON", ".L"),
    ("XETR", ".DE"),
    ("XPAR", ".PA"),
    ("XAMS", ".AS"),
    ("XTSE", ".TO"),
];

/// Maps ids to Binance symbols for one venue name.
#[derive(Debug, Clone)]
pub(crate) struct BinanceSymbols {
    venue: String,
}

impl BinanceSymbols {
    pub(crate) fn new(venue: &str) -> Self {
        Self {
            venue: venue.to_owned(),
        }
    }

    /// The Binance symbol of `id`, or `None` when the id is of another venue.
    pub(crate) fn to_provider(&self, id: &InstrumentId) -> Option<String> {
        if id.venue() != self.venue {
            return None;
        }
        let symbol: String = id.symbol().chars().filter(|c| *c != '/').collect();
        (!symbol.is_empty()).then_some(symbol)
    }

    /// The id of Binance symbol `symbol`, or `None` when it makes no valid id.
    pub(crate) fn to_id(&self, symbol: &str) -> Option<InstrumentId> {
        InstrumentId::new(format!("{symbol}.{}", self.venue)).ok()
    }
}

/// Maps ids to Yahoo symbols through the venue table.
#[derive(Debug, Clone)]
pub(crate) struct YahooSymbols {
    /// Venue → suffix (built-ins plus overrides).
    suffixes: BTreeMap<String, String>,
}

impl YahooSymbols {
    /// The built-in table with `overrides` (venue → suffix) on top.
    pub(crate) fn new(overrides: &BTreeMap<String, String>) -> Self {
        let mut suffixes: BTreeMap<String, String> = YAHOO_VENUES
            .iter()
            .map(|(v, s)| ((*v).to_owned(), (*s).to_owned()))
            .collect();
        suffixes.extend(overrides.iter().map(|(v, s)| (v.clone(), s.clone())));
        Self { suffixes }
    }

    /// The Yahoo symbol of `id`, or `None` when its venue is not in the table.
    pub(crate) fn to_provider(&self, id: &InstrumentId) -> Option<String> {
        let suffix = self.suffixes.get(id.venue())?;
        let mut symbol = id.symbol().replace('/', "-");
        if suffix == ".HK" && symbol.len() < 4 && symbol.bytes().all(|b| b.is_ascii_digit()) {
            symbol = format!("{symbol:0>4}");
        }
        Some(format!("{symbol}{suffix}"))
    }

    /// The id of a Yahoo symbol, for the venue `venue` (a suffix is shared by
    /// several venues — every US exchange has none — so the caller says which).
    #[cfg(test)]
    pub(crate) fn to_id(&self, yahoo: &str, venue: &str) -> Option<InstrumentId> {
        let suffix = self.suffixes.get(venue)?;
        let symbol = yahoo.strip_suffix(suffix.as_str())?.replace('-', "/");
        InstrumentId::new(format!("{symbol}.{venue}")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> InstrumentId {
        InstrumentId::new(text).unwrap()
    }

    #[test]
    fn binance_symbols_round_trip() {
        let b = BinanceSymbols::new("BINANCE");
        assert_eq!(
            b.to_provider(&id("BTCUSDT.BINANCE")).as_deref(),
            Some("BTCUSDT")
        );
        assert_eq!(
            b.to_provider(&id("BTC/USDT.BINANCE")).as_deref(),
            Some("BTCUSDT")
        );
        assert_eq!(b.to_provider(&id("AAPL.XNAS")), None);
        assert_eq!(b.to_id("ETHBTC"), Some(id("ETHBTC.BINANCE")));
        assert_eq!(b.to_id("bad symbol"), None);
        let us = BinanceSymbols::new("BINANCEUS");
        assert_eq!(
            us.to_provider(&id("BTCUSD.BINANCEUS")).as_deref(),
            Some("BTCUSD")
        );
        assert_eq!(us.to_provider(&id("BTCUSDT.BINANCE")), None);
    }

    #[test]
    fn yahoo_symbols_follow_the_venue_table() {
        let y = YahooSymbols::new(&BTreeMap::new());
        for (ours, theirs) in [
            ("0700.HKEX", "0700.HK"),
            ("9988.HKEX", "9988.HK"),
            ("5.HKEX", "0005.HK"),
            ("AAPL.XNAS", "AAPL"),
            ("BRK/B.XNYS", "BRK-B"),
            ("7203.XTKS", "7203.T"),
            ("600519.XSHG", "600519.SS"),
            ("VOD.XLON", "VOD.L"),
        ] {
            assert_eq!(y.to_provider(&id(ours)).as_deref(), Some(theirs), "{ours}");
        }
        assert_eq!(y.to_provider(&id("BTCUSDT.BINANCE")), None);
        assert_eq!(y.to_id("0700.HK", "HKEX"), Some(id("0700.HKEX")));
        assert_eq!(y.to_id("AAPL", "XNAS"), Some(id("AAPL.XNAS")));
        assert_eq!(y.to_id("BRK-B", "XNYS"), Some(id("BRK/B.XNYS")));
        assert_eq!(y.to_id("0700.HK", "XNAS"), None);
    }

    #[test]
    fn yahoo_overrides_add_and_replace_venues() {
        let overrides = BTreeMap::from([
            ("XNAS".to_owned(), ".NQ".to_owned()),
            ("XSTO".to_owned(), ".ST".to_owned()),
        ]);
        let y = YahooSymbols::new(&overrides);
        assert_eq!(y.to_provider(&id("AAPL.XNAS")).as_deref(), Some("AAPL.NQ"));
        assert_eq!(
            y.to_provider(&id("VOLV-B.XSTO")).as_deref(),
            Some("VOLV-B.ST")
        );
        assert_eq!(y.to_provider(&id("0700.HKEX")).as_deref(), Some("0700.HK"));
    }
}
