//! The API key never shows: not in errors (whatever the server echoes), not
//! in `Debug`, not in health, not in serialized configuration.

use std::time::Duration;

use ordermon_domain::ids::InstrumentId;
use ordermon_domain::ports::MarketDataProvider;
use ordermon_marketdata::{ProviderKind, build};
use secrecy::SecretString;

use crate::support::{Reply, Server, config};

const KEY: &str = "sk-live-3f9c2a7e-SECRET";

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    // A server that echoes the key back in its error bodies.
    let server = Server::start(|hit, n| {
        let key = hit
            .headers
            .get("x-mbx-apikey")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let body = format!(r#"{{"code":-2014,"msg":"API-key format invalid: {key}"}}"#);
        match n % 3 {
            0 => Reply::json(body).status(401),
            1 => Reply::json(body).status(500),
            _ => Reply::json(format!("{{\"symbol\":\"{key}\"")),
        }
    })
    .await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.api_key = Some(SecretString::from(KEY));
    c.retry.max_attempts = 1;
    let p = build(&c, None).unwrap();
    let btc = InstrumentId::new("BTCUSDT.BINANCE").unwrap();
    let mut texts = Vec::new();
    for _ in 0..3 {
        let e = p.quote(&btc).await.unwrap_err();
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    assert_eq!(
        server.hits()[0].headers["x-mbx-apikey"],
        KEY,
        "the key was sent"
    );

    // No server at all: reqwest's own error text.
    let mut gone = config(ProviderKind::Binance, "http://127.0.0.1:9");
    gone.api_key = Some(SecretString::from(KEY));
    gone.retry.max_attempts = 1;
    gone.timeout = Duration::from_millis(200);
    let g = build(&gone, None).unwrap();
    let e = g.quote(&btc).await.unwrap_err();
    texts.push(e.to_string());
    texts.push(format!("{e:?}"));

    texts.push(format!("{p:?}"));
    texts.push(format!("{:?}", p.health()));
    texts.push(serde_json::to_string(&p.health()).unwrap());
    texts.push(format!("{c:?}"));
    texts.push(serde_json::to_string(&c).unwrap());
    for text in &texts {
        assert!(!text.contains(KEY), "the key leaked: {text}");
        assert!(!text.contains("3f9c2a7e"), "part of the key leaked: {text}");
    }
    assert!(texts.iter().any(|t| t.contains("REDACTED")), "{texts:?}");
    assert!(texts[0].contains("HTTP 401"), "{}", texts[0]);
}

#[tokio::test]
async fn credentials_in_the_base_url_stay_out_of_errors() {
    let mut c = config(
        ProviderKind::Binance,
        "http://gateway-user:gw-pass-SECRET@127.0.0.1:9/binance",
    );
    c.retry.max_attempts = 1;
    c.timeout = Duration::from_millis(200);
    let p = build(&c, None).unwrap();
    let e = p
        .quote(&InstrumentId::new("BTCUSDT.BINANCE").unwrap())
        .await
        .unwrap_err();
    let printed = [
        e.to_string(),
        format!("{e:?}"),
        format!("{p:?}"),
        format!("{:?}", p.health()),
        format!("{c:?}"),
        serde_json::to_string(&c).unwrap(),
    ];
    assert!(
        printed[5].contains("http://[REDACTED]@127.0.0.1:9/binance"),
        "{}",
        printed[5]
    );
    for text in &printed[..4] {
        assert!(
            !text.contains("127.0.0.1:9"),
            "the URL is not in errors: {text}"
        );
    }
    for text in printed {
        assert!(!text.contains("gw-pass-SECRET"), "{text}");
        assert!(!text.contains("gateway-user"), "{text}");
    }
}
