//! `monitor-server` on a real-format market data provider: a local HTTP
//! server speaks Binance's REST format (exchange info, book ticker, klines)
//! with prices that swing around a mean; the server adds the instrument with
//! the exchange's tick and lot, polls its quotes into the quote book, a
//! `mean_reversion` strategy buys the dip and sells the rally on the paper
//! venue, `/api/v1/bars` answers from the provider, and when the provider
//! fails the circuit opens and readiness reports it degraded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{call, command, free_port, logs_dir, ready, serve, token};
use ordermon_domain::user::Role;
use serde_json::{Value, json};

const EXCHANGE_INFO: &str =
    include_str!("../../infrastructure/marketdata/tests/fixtures/binance_exchange_info.json");

/// The mids the book ticker cycles through: flat, a dip, back, a rally.
const CYCLE: [u64; 6] = [65_000, 65_000, 65_000, 63_000, 65_000, 67_000];

#[derive(Default)]
struct Exchange {
    tickers: AtomicU64,
    failing: AtomicBool,
}

async fn exchange_info(State(ex): State<Arc<Exchange>>) -> Response {
    if ex.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    ([("content-type", "application/json")], EXCHANGE_INFO).into_response()
}

async fn book_ticker(
    State(ex): State<Arc<Exchange>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if ex.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    if q.get("symbol").map(String::as_str) != Some("BTCUSDT") {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"code":-1121,"msg":"Invalid symbol."}"#,
        )
            .into_response();
    }
    let n = ex.tickers.fetch_add(1, Ordering::SeqCst);
    let mid = CYCLE[usize::try_from(n).unwrap() % CYCLE.len()];
    let body = json!({
        "symbol": "BTCUSDT",
        "bidPrice": format!("{}.00000000", mid - 1),
        "bidQty": "2.50000000",
        "askPrice": format!("{}.00000000", mid + 1),
        "askQty": "3.00000000",
    });
    axum::Json(body).into_response()
}

async fn klines(State(ex): State<Arc<Exchange>>) -> Response {
    if ex.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    // Two 1m bars from 2026-12-01T00:00:00Z.
    let t = 1_796_083_200_000_i64;
    let bar = |open: i64, o: &str, c: &str| {
        json!([
            open,
            o,
            "65100.00000000",
            "64900.00000000",
            c,
            "12.50000000",
            open + 59_999,
            "812500.00000000",
            420,
            "6.0",
            "390000.0",
            "0"
        ])
    };
    axum::Json(json!([
        bar(t, "65000.00000000", "65050.00000000"),
        bar(t + 60_000, "65050.00000000", "64990.00000000")
    ]))
    .into_response()
}

async fn start_exchange() -> (String, Arc<Exchange>) {
    let ex = Arc::new(Exchange::default());
    let app = Router::new()
        .route("/api/v3/exchangeInfo", get(exchange_info))
        .route("/api/v3/ticker/bookTicker", get(book_ticker))
        .route("/api/v3/klines", get(klines))
        .with_state(ex.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), ex)
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_trades_on_quotes_polled_from_a_binance_format_provider() {
    let (exchange_url, exchange) = start_exchange().await;
    let logs = logs_dir("live-feed");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("ORDERMON_ENGINE__VENUE", "paper".to_owned()),
        ("ORDERMON_FEED__PROVIDER", "binance".to_owned()),
        ("ORDERMON_MARKET_DATA__BINANCE__KIND", "binance".to_owned()),
        ("ORDERMON_MARKET_DATA__BINANCE__BASE_URL", exchange_url),
        (
            "ORDERMON_MARKET_DATA__BINANCE__API_KEY",
            "live-feed-test-api-key-3141592653".to_owned(),
        ),
        (
            "ORDERMON_MARKET_DATA__BINANCE__BREAKER__FAILURES",
            "3".to_owned(),
        ),
        (
            "ORDERMON_MARKET_DATA__BINANCE__RETRY__MAX_ATTEMPTS",
            "1".to_owned(),
        ),
        (
            "ORDERMON_FEED__POLL__INSTRUMENTS",
            r#"["BTCUSDT.BINANCE"]"#.to_owned(),
        ),
        ("ORDERMON_FEED__POLL__INTERVAL_MS", "100".to_owned()),
    ];
    let _server = serve("memory", &logs, port, &env);
    let http = reqwest::Client::new();
    ready(&http, &base).await;
    let admin = token("root", Role::Admin);

    // The instrument came from the exchange's info, with its tick and lot.
    let (s, instrument) = call(
        http.get(format!("{base}/api/v1/instruments/BTCUSDT.BINANCE"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(s, 200, "{instrument}");
    assert_eq!(instrument["tick_size"], "0.01");
    assert_eq!(instrument["lot_size"], "0.00001");
    assert_eq!(instrument["quote_currency"], "USDT");

    // Quotes are the provider's prices.
    let quote = eventually("a polled quote", Duration::from_secs(10), || {
        let req = http
            .get(format!("{base}/api/v1/quotes/BTCUSDT.BINANCE"))
            .bearer_auth(&admin);
        async move {
            let (s, q) = call(req).await;
            (s == 200).then_some(q)
        }
    })
    .await;
    let bid: u64 = quote["bid"]
        .as_str()
        .and_then(|b| b.split('.').next())
        .and_then(|b| b.parse().ok())
        .unwrap();
    assert!(
        CYCLE.iter().any(|m| m - 1 == bid),
        "bid {bid} from the cycle"
    );

    // A trader with a mean-reversion strategy on it.
    let (s, b) = call(
        http.post(format!("{base}/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"id": "alice", "name": "Alice"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        http.post(format!("{base}/api/v1/users/alice/cash"))
            .bearer_auth(&admin)
            .json(&json!({"currency": "USDT", "amount": "100000", "reason": "initial"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let alice = token("alice", Role::Trader);
    let (s, b) = call(
        http.post(format!("{base}/api/v1/strategies"))
            .bearer_auth(&alice)
            .json(&json!({"id": "mr", "type": "mean_reversion", "name": "mean reversion",
                "instruments": ["BTCUSDT.BINANCE"],
                "params": {"window": 3, "threshold_pct": "0.01", "quantity": "0.001", "max_position": "0.001"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // It buys the dip at the exchange's ask and sells the rally at its bid.
    let orders = eventually(
        "a filled buy and a filled sell",
        Duration::from_secs(30),
        || {
            let req = http
                .get(format!(
                    "{base}/api/v1/orders?strategy_id=mr&status=filled&limit=100"
                ))
                .bearer_auth(&alice);
            async move {
                let (s, page) = call(req).await;
                let items = page["items"].as_array()?.clone();
                let sides: Vec<&str> = items.iter().filter_map(|o| o["side"].as_str()).collect();
                (s == 200 && sides.contains(&"buy") && sides.contains(&"sell"))
                    .then_some(Value::Array(items))
            }
        },
    )
    .await;
    let (s, fills) = call(
        http.get(format!("{base}/api/v1/fills?limit=100"))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(s, 200, "{fills}");
    let fill_prices: Vec<String> = fills["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["price"].as_str().map(str::to_owned))
        .collect();
    assert!(!fill_prices.is_empty(), "{orders}");
    for p in &fill_prices {
        // Paper market orders fill at the touch of the latest quote with 1 bp
        // of slippage: every fill is within 2 bp of one of the exchange's mids.
        let v: f64 = p.parse().unwrap();
        assert!(
            CYCLE
                .iter()
                .any(|&m| (v - m as f64).abs() <= m as f64 * 0.0002),
            "fill at {p} is not at one of the exchange's prices"
        );
    }

    // Bars: none stored, so the provider answers.
    let (s, bars) = call(
        http.get(format!(
            "{base}/api/v1/bars/BTCUSDT.BINANCE?interval=1m&from=2026-12-01T00:00:00Z&to=2026-12-01T00:02:00Z"
        ))
        .bearer_auth(&alice),
    )
    .await;
    assert_eq!(s, 200, "{bars}");
    assert_eq!(bars["source"], "binance");
    assert_eq!(bars["bars"].as_array().map(Vec::len), Some(2), "{bars}");
    assert_eq!(bars["bars"][1]["close"], "64990");

    // `monitor-server check` asks the provider for a quote.
    let check = command("memory", &logs, free_port(), &env, &["check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(check.status.success(), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("ok")
            && l.contains("market_data")
            && l.contains("BTCUSDT.BINANCE")),
        "{out}"
    );

    // The provider fails: the circuit opens, readiness stays 200 but reports
    // the provider degraded, and /status shows the feed's failures.
    exchange.failing.store(true, Ordering::SeqCst);
    let report = eventually("provider degraded", Duration::from_secs(20), || {
        let req = http.get(format!("{base}/health/ready"));
        async move {
            let (s, r) = call(req).await;
            let degraded = r["components"]["market_data_provider"]["status"] == "degraded";
            (s == 200 && degraded).then_some(r)
        }
    })
    .await;
    let text = report.to_string();
    assert!(!text.contains("open"), "readiness tells no reasons: {text}");
    let (s, status) = call(http.get(format!("{base}/status")).bearer_auth(&admin)).await;
    assert_eq!(s, 200, "{status}");
    let reason = status["health"]["market_data_provider"].to_string();
    assert!(reason.contains("open"), "{reason}");
    assert!(
        !reason.contains("3141592653"),
        "the API key leaked: {reason}"
    );
    let feed = &status["components"]["feed"];
    assert_eq!(feed["live"]["provider"], "binance", "{status}");
    assert!(
        feed["live"]["instruments"]["BTCUSDT.BINANCE"]["failures"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{feed}"
    );
    assert_eq!(feed["provider"]["breaker"], "open", "{feed}");
    assert!(!status.to_string().contains("3141592653"));
    let check = command("memory", &logs, free_port(), &env, &["check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout).to_string();
    let err = String::from_utf8_lossy(&check.stderr).to_string();
    assert!(!check.status.success(), "{out}");
    assert!(out.contains("FAILED  market_data"), "{out}");
    assert!(err.contains("market_data"), "{err}");
    assert!(!out.contains("3141592653") && !err.contains("3141592653"));
    let _ = std::fs::remove_dir_all(&logs);
}
