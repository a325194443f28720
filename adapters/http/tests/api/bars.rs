//! `GET /api/v1/bars/{instrument}`: stored bars, the window, and bad queries.

use chrono::{Duration, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::user::Role;
use ordermon_domain::values::Price;
use rust_decimal_macros::dec;

use crate::common::{TestApp, assert_problem};

#[tokio::test]
async fn stored_bars_in_the_window_oldest_first() {
    let app = TestApp::new().await;
    app.instrument("ACME.SIM").await;
    let token = app.user("alice", Role::Trader).await;
    let t0 = Utc
        .with_ymd_and_hms(2026, 12, 1, 14, 30, 0)
        .single()
        .expect("valid time");
    let acme = InstrumentId::new("ACME.SIM").expect("id");
    let bars: Vec<Bar> = (0..5)
        .map(|m| {
            let p = Price::new(dec!(100.00) + rust_decimal::Decimal::from(m)).expect("price");
            Bar {
                instrument_id: acme.clone(),
                interval: BarInterval::M1,
                open_time: t0 + Duration::minutes(m),
                open: p,
                high: p,
                low: p,
                close: p,
                volume: dec!(1500.5),
            }
        })
        .collect();
    app.engine
        .persistence()
        .bars
        .upsert_bars(&bars)
        .await
        .expect("bars stored");

    let r = app
        .get(
            "/api/v1/bars/ACME.SIM?interval=1m&from=2026-12-01T14:31:00Z&to=2026-12-01T14:34:00Z",
            &token,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["source"], "store");
    assert_eq!(r.body["interval"], "1m");
    let got = r.body["bars"].as_array().expect("bars");
    assert_eq!(got.len(), 3, "[14:31, 14:34) holds three bars: {}", r.text);
    assert_eq!(got[0]["open_time"], "2026-12-01T14:31:00Z");
    assert_eq!(got[0]["close"], "101.00");
    assert_eq!(got[2]["close"], "103.00");
    assert_eq!(got[0]["volume"], "1500.5");

    let r = app
        .get(
            "/api/v1/bars/ACME.SIM?from=2026-12-01T14:30:00Z&to=2026-12-01T15:00:00Z&limit=2",
            &token,
        )
        .await;
    assert_eq!(
        r.body["bars"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text
    );

    // Another interval has none stored and there is no provider: empty.
    let r = app
        .get(
            "/api/v1/bars/ACME.SIM?interval=1h&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z",
            &token,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["bars"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn bad_queries_are_422_and_unknown_instruments_404() {
    let app = TestApp::new().await;
    app.instrument("ACME.SIM").await;
    let token = app.user("alice", Role::Trader).await;
    for query in [
        "interval=2m",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "from=yesterday",
        "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
        "bogus=1",
    ] {
        let r = app
            .get(&format!("/api/v1/bars/ACME.SIM?{query}"), &token)
            .await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{query}: {} {}",
            r.status,
            r.text
        );
    }
    let r = app.get("/api/v1/bars/NOPE.SIM", &token).await;
    assert_problem(&r, 404, "not_found");
    let r = app.get("/api/v1/bars/not%20an%20id", &token).await;
    assert_problem(&r, 404, "not_found");
    let r = app
        .call(axum::http::Method::GET, "/api/v1/bars/ACME.SIM", None, None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
}
