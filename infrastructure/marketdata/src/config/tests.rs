use secrecy::ExposeSecret;

use super::*;

const EXAMPLE: &str = r#"
    [binance]
    kind = "binance"
    api_key = "binance-key-123456"
    timeout = "5s"
    limits = { per_second = 50, per_minute = 1200 }
    weights = { exchange_info = 10 }
    retry = { max_attempts = 3, min_delay = "100ms", max_delay = "2s" }
    breaker = { failures = 3, cool_down = "10s" }

    [hk]
    kind = "yahoo"
    name = "yahoo-hk"
    base_url = "https://gateway.example/yahoo"
    venues = { XSTO = ".ST" }
    cache = { quote_ttl = "5s" }
"#;

fn example() -> BTreeMap<String, ProviderConfig> {
    toml::from_str(EXAMPLE).unwrap()
}

#[test]
fn reads_both_kinds_and_fills_in_their_defaults() {
    let all = example();
    let b = all["binance"].resolve().unwrap();
    assert_eq!(b.name, "binance");
    assert_eq!(b.base_url.as_str(), "https://api.binance.com/");
    assert_eq!((b.per_second, b.per_minute), (50, 1200));
    assert_eq!(b.weight("exchange_info"), 10);
    assert_eq!(b.weight("klines"), 2);
    assert_eq!(b.server_per_minute, Some(6000));
    assert_eq!(b.venue, "BINANCE");
    assert_eq!(b.timeout, Duration::from_secs(5));
    assert_eq!(b.call_timeout, Duration::from_secs(30));
    assert_eq!(b.retry.max_attempts, 3);
    let (header, value) = b.api_key.unwrap();
    assert_eq!(header.as_str(), "x-mbx-apikey");
    assert!(value.is_sensitive());
    assert_eq!(
        all["binance"].api_key.as_ref().unwrap().expose_secret(),
        "binance-key-123456"
    );

    let y = all["hk"].resolve().unwrap();
    assert_eq!(y.name, "yahoo-hk");
    assert_eq!(y.base_url.as_str(), "https://gateway.example/yahoo/");
    assert_eq!((y.per_second, y.per_minute), (2, 60));
    assert_eq!(y.weight("chart"), 1);
    assert_eq!(y.server_per_minute, None);
    assert_eq!(y.cache.quote_ttl, Duration::from_secs(5));
    assert_eq!(y.cache.bars_ttl, Duration::from_secs(300));
}

#[test]
fn serializes_and_debugs_without_the_key() {
    let all = example();
    let json = serde_json::to_string(&all).unwrap();
    let toml_text = toml::to_string(&all).unwrap();
    let debug = format!("{all:?}");
    let settings = format!("{:?}", all["binance"].resolve().unwrap());
    for text in [&json, &toml_text, &debug, &settings] {
        assert!(!text.contains("binance-key-123456"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }
    assert!(toml_text.contains("timeout = \"5s\""), "{toml_text}");
    // What is printed reads back the same.
    let back: BTreeMap<String, ProviderConfig> = toml::from_str(&toml_text).unwrap();
    assert_eq!(back["hk"].venues, all["hk"].venues);
}

fn refused(config: &ProviderConfig) -> String {
    config.validate().unwrap_err().to_string()
}

#[test]
fn bad_values_name_their_key() {
    let mut c = ProviderConfig::new(ProviderKind::Binance);
    c.base_url = Some("ftp://user:pw-secret-1@mirror.example".into());
    let e = refused(&c);
    assert!(e.contains("`base_url` must be an http"), "{e}");
    assert!(!e.contains("pw-secret-1"), "{e}");
    c.base_url = Some("https://mirror.example/?token=abc".into());
    assert!(refused(&c).contains("`base_url` must not have a query"));

    let mut c = ProviderConfig::new(ProviderKind::Binance);
    c.limits.per_second = Some(20);
    let e = refused(&c);
    assert_eq!(
        e,
        "market data provider `binance`: `limits.per_second` must be above the heaviest endpoint weight (20)"
    );

    let mut c = ProviderConfig::new(ProviderKind::Yahoo);
    c.weights.insert("klines".into(), 2);
    assert!(refused(&c).contains("`weights.klines` is not an endpoint of yahoo (known: chart)"));

    type Break = Box<dyn Fn(&mut ProviderConfig)>;
    let cases: Vec<(&str, Break)> = vec![
        ("name", Box::new(|c| c.name = Some("Binance Main".into()))),
        ("timeout", Box::new(|c| c.timeout = Duration::ZERO)),
        (
            "call_timeout",
            Box::new(|c| c.call_timeout = Duration::from_secs(1)),
        ),
        ("retry.max_attempts", Box::new(|c| c.retry.max_attempts = 0)),
        (
            "retry.max_delay",
            Box::new(|c| c.retry.max_delay = Duration::from_millis(1)),
        ),
        ("breaker.failures", Box::new(|c| c.breaker.failures = 0)),
        (
            "breaker.cool_down",
            Box::new(|c| c.breaker.cool_down = Duration::ZERO),
        ),
        (
            "cache.quote_ttl",
            Box::new(|c| c.cache.quote_ttl = Duration::ZERO),
        ),
        (
            "limits.slow_down_at_percent",
            Box::new(|c| c.limits.slow_down_at_percent = Some(0)),
        ),
        (
            "weights.klines",
            Box::new(|c| {
                c.weights.insert("klines".into(), 0);
            }),
        ),
        ("venue", Box::new(|c| c.venue = Some("BIN ANCE".into()))),
        (
            "venues",
            Box::new(|c| {
                c.venues.insert("XSTO".into(), ".ST".into());
            }),
        ),
        (
            "api_key_header",
            Box::new(|c| c.api_key_header = Some("X-Key".into())),
        ),
        (
            "api_key",
            Box::new(|c| c.api_key = Some(SecretString::from("bad\nkey-secret-2"))),
        ),
    ];
    for (field, breaks) in cases {
        let mut c = ProviderConfig::new(ProviderKind::Binance);
        breaks(&mut c);
        let e = refused(&c);
        assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
        assert!(!e.contains("key-secret-2"), "{e}");
    }
}

#[test]
fn refuses_unknown_fields_and_kinds() {
    let typo = "kind = \"binance\"\nbase_ur = \"https://x\"\n";
    let e = toml::from_str::<ProviderConfig>(typo).unwrap_err();
    assert!(e.to_string().contains("base_ur"), "{e}");
    let nested = "kind = \"binance\"\nlimits = { per_secnd = 5 }\n";
    let e = toml::from_str::<ProviderConfig>(nested).unwrap_err();
    assert!(e.to_string().contains("per_secnd"), "{e}");
    assert!(toml::from_str::<ProviderConfig>("kind = \"bloomberg\"\n").is_err());
    let bare = "kind = \"yahoo\"\ntimeout = 10\n";
    let e = toml::from_str::<ProviderConfig>(bare).unwrap_err();
    assert!(e.to_string().contains("missing unit"), "{e}");
}
