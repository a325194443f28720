//! Loading: defaults, the file, environment precedence, errors and redaction.

use std::time::Duration;

use ordermon_application::{MonitorConfig, VenueMode};
use ordermon_telemetry::LogFormat;
use rust_decimal_macros::dec;
use secrecy::ExposeSecret;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(file.map(|t| ("test.toml", t)), env(vars))
}

#[test]
fn defaults_are_the_embedded_setup() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.http.addr, "127.0.0.1:8080");
    assert_eq!(c.http.body_limit_bytes, 1024 * 1024);
    assert_eq!(c.database.url.expose(), "sqlite://data/ordermon.db");
    assert_eq!(c.database.kind().unwrap(), DatabaseKind::Sqlite);
    assert_eq!(
        c.database.sqlite_path().unwrap(),
        std::path::PathBuf::from("data/ordermon.db")
    );
    assert!(c.cache.url.is_memory() && c.bus.url.is_memory());
    assert_eq!(c.logs.dir, std::path::PathBuf::from("logs"));
    assert_eq!(c.logs.retention_days, 7);
    assert_eq!(c.logs.format, LogFormat::Pretty);
    assert_eq!(c.monitor.scan_interval, Duration::from_secs(10));
    assert!(c.auth.jwt_secret.is_none());
    assert_eq!(c.engine.venue, VenueMode::Paper);
    assert_eq!(c.engine.commit.workers_for(DatabaseKind::Sqlite), 1);
    assert_eq!(c.engine.commit.workers_for(DatabaseKind::Postgres), 4);
    assert!(c.demo.instruments);
    assert_eq!(c.shutdown.timeout, Duration::from_secs(10));
}

#[test]
fn the_file_overrides_defaults() {
    let c = load(
        Some(
            r#"
            [http]
            addr = "0.0.0.0:9000"
            [database]
            url = "postgres://ordermon:pw@db/ordermon"
            max_connections = 32
            acquire_timeout = "250ms"
            [logs]
            format = "json"
            [engine]
            venue = "external"
            [engine.risk]
            fee_rate = 0.002
            market_band = "0.10"
            [engine.commit]
            workers = 8
            [feed]
            interval_ms = 100
            seed = 7
            [paper]
            latency_ms = 5
            "#,
        ),
        &[],
    )
    .unwrap();
    assert_eq!(c.http.addr, "0.0.0.0:9000");
    assert_eq!(c.database.kind().unwrap(), DatabaseKind::Postgres);
    assert_eq!(c.database.max_connections, 32);
    assert_eq!(c.database.acquire_timeout, Duration::from_millis(250));
    assert_eq!(c.logs.format, LogFormat::Json);
    assert_eq!(c.engine.venue, VenueMode::External);
    assert_eq!(c.engine.risk.fee_rate, dec!(0.002));
    assert_eq!(c.engine.risk.market_band, dec!(0.10));
    // Untouched keys of a touched section keep their defaults.
    assert_eq!(c.engine.risk.margin_ratio, dec!(1));
    assert_eq!(c.engine.commit.workers_for(DatabaseKind::Postgres), 8);
    assert_eq!(c.feed.interval_ms, 100);
    assert_eq!(c.feed.seed, Some(7));
    assert_eq!(c.paper.latency_ms, 5);
    assert_eq!(c.http.body_limit_bytes, 1024 * 1024);
}

#[test]
fn the_environment_overrides_the_file() {
    let file = r#"
        [http]
        addr = "0.0.0.0:9000"
        body_limit_bytes = 4096
        [monitor]
        scan_interval = "30s"
    "#;
    let c = load(
        Some(file),
        &[
            ("ORDERMON_HTTP__ADDR", "127.0.0.1:7000"),
            ("ORDERMON_MONITOR__SCAN_INTERVAL", "5m"),
            ("ORDERMON_DATABASE__URL", "memory"),
            ("ORDERMON_CONFIG", "ignored.toml"),
            ("ORDERMON_REQUIRE_SERVICES", "1"),
        ],
    )
    .unwrap();
    assert_eq!(c.http.addr, "127.0.0.1:7000");
    // Keys the environment does not set keep the file's value.
    assert_eq!(c.http.body_limit_bytes, 4096);
    assert_eq!(c.monitor.scan_interval, Duration::from_secs(300));
    assert_eq!(c.database.kind().unwrap(), DatabaseKind::Memory);
}

#[test]
fn nested_environment_keys_reach_every_level() {
    let c = load(
        None,
        &[
            ("ORDERMON_ENGINE__RISK__FEE_RATE", "0.0025"),
            ("ORDERMON_ENGINE__COMMIT__WORKERS", "3"),
            ("ORDERMON_ENGINE__VENUE", "external"),
            ("ORDERMON_AUTH__JWT_SECRET", "0123456789abcdef0123"),
            ("ORDERMON_FEED__SEED", "42"),
            ("ORDERMON_DEMO__INSTRUMENTS", "false"),
            ("ORDERMON_LOGS__FORMAT", "json"),
            ("ORDERMON_PAPER__SLIPPAGE_BPS", "2.5"),
        ],
    )
    .unwrap();
    assert_eq!(c.engine.risk.fee_rate, dec!(0.0025));
    assert_eq!(c.engine.commit.workers, Some(3));
    assert_eq!(c.engine.venue, VenueMode::External);
    assert_eq!(
        c.auth.jwt_secret.as_ref().unwrap().expose_secret(),
        "0123456789abcdef0123"
    );
    assert_eq!(c.feed.seed, Some(42));
    assert!(!c.demo.instruments);
    assert_eq!(c.logs.format, LogFormat::Json);
    assert_eq!(c.paper.slippage_bps, dec!(2.5));
}

#[test]
fn a_numeric_secret_stays_text() {
    let c = load(
        None,
        &[("ORDERMON_AUTH__JWT_SECRET", "12345678901234567890")],
    )
    .unwrap();
    assert_eq!(
        c.auth.jwt_secret.unwrap().expose_secret(),
        "12345678901234567890"
    );
}

#[test]
fn bad_durations_are_refused_with_the_key() {
    let e = load(None, &[("ORDERMON_MONITOR__SCAN_INTERVAL", "10")]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("ORDERMON_MONITOR__SCAN_INTERVAL"), "{msg}");
    assert!(msg.contains("missing unit"), "{msg}");
    let e = load(Some("[monitor]\nscan_interval = \"ten seconds\""), &[]).unwrap_err();
    assert!(e.to_string().contains("bad duration"), "{e}");
    let e = load(Some("[monitor]\nscan_interval = \"0s\""), &[]).unwrap_err();
    assert!(e.to_string().contains("monitor.scan_interval"), "{e}");
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let e = load(Some("[database]\nurll = \"memory\""), &[]).unwrap_err();
    assert!(e.to_string().contains("urll"), "{e}");
    let e = load(Some("[databse]\nurl = \"memory\""), &[]).unwrap_err();
    assert!(e.to_string().contains("databse"), "{e}");
    let e = load(None, &[("ORDERMON_DATABSE__URL", "memory")]).unwrap_err();
    assert!(e.to_string().contains("ORDERMON_DATABSE__URL"), "{e}");
    let e = load(Some("[engine.risk]\nfee_rat = 1"), &[]).unwrap_err();
    assert!(e.to_string().contains("fee_rat"), "{e}");
}

#[test]
fn a_risk_decimal_that_is_not_one_is_refused_with_its_text() {
    let e = load(Some("[engine.risk]\nfee_rate = \"1,5\""), &[]).unwrap_err();
    assert!(e.to_string().contains("bad decimal `1,5`"), "{e}");
    let e = load(Some("[engine.risk]\nmarket_band = nan"), &[]).unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
    let e = load(Some("[engine.risk]\nmargin_ratio = true"), &[]).unwrap_err();
    assert!(e.to_string().contains("margin_ratio"), "{e}");
}

#[test]
fn bad_values_are_refused() {
    let e = load(None, &[("ORDERMON_DATABASE__URL", "oracle://x")]).unwrap_err();
    assert!(e.to_string().contains("database.url"), "{e}");
    let e = load(None, &[("ORDERMON_AUTH__JWT_SECRET", "short")]).unwrap_err();
    assert!(e.to_string().contains("auth.jwt_secret"), "{e}");
    assert!(!e.to_string().contains("short"), "{e}");
    let e = load(None, &[("ORDERMON_ENGINE__VENUE", "moon")]).unwrap_err();
    assert!(e.to_string().contains("ORDERMON_ENGINE__VENUE"), "{e}");
    let e = load(Some("[http]\nbody_limit_bytes = \"lots\""), &[]).unwrap_err();
    assert!(e.to_string().contains("body_limit_bytes"), "{e}");
    let e = load(Some("[feed]\ninterval_ms = 0"), &[]).unwrap_err();
    assert!(e.to_string().contains("interval_ms"), "{e}");
    let e = load(None, &[("ORDERMON_MONITOR__LANES", "1000")]).unwrap_err();
    assert!(e.to_string().contains("monitor.lanes"), "{e}");
    let c = load(None, &[("ORDERMON_MONITOR__LANES", "3")]).unwrap();
    assert_eq!(MonitorConfig::from(&c.monitor).lane_count(), 3);
    assert!(MonitorConfig::from(&load(None, &[]).unwrap().monitor).lane_count() >= 1);
    let e = load(None, &[("ORDERMON_MONITOR__LANE_NICE", "-21")]).unwrap_err();
    assert!(e.to_string().contains("monitor.lane_nice"), "{e}");
    let e = load(Some("[monitor]\nlane_nice = 20"), &[]).unwrap_err();
    assert!(e.to_string().contains("monitor.lane_nice"), "{e}");
    let c = load(None, &[("ORDERMON_MONITOR__LANE_NICE", "0")]).unwrap();
    assert_eq!(MonitorConfig::from(&c.monitor).lane_nice, 0);
    assert_eq!(
        MonitorConfig::from(&load(None, &[]).unwrap().monitor).lane_nice,
        MonitorConfig::default().lane_nice
    );
}

#[test]
fn token_lifetimes_and_clock_leeway_are_bounded() {
    let e = load(None, &[("ORDERMON_AUTH__LEEWAY_SECS", "86400")]).unwrap_err();
    assert!(e.to_string().contains("auth.leeway_secs"), "{e}");
    assert_eq!(
        load(None, &[("ORDERMON_AUTH__LEEWAY_SECS", "300")])
            .unwrap()
            .auth
            .leeway_secs,
        300
    );
    let e = load(None, &[("ORDERMON_AUTH__MAX_TOKEN_TTL", "0s")]).unwrap_err();
    assert!(e.to_string().contains("auth.max_token_ttl"), "{e}");
    let c = load(None, &[]).unwrap();
    assert_eq!(c.auth.max_token_ttl, Duration::from_secs(30 * 24 * 3600));
    let c = load(None, &[("ORDERMON_AUTH__MAX_TOKEN_TTL", "1h")]).unwrap();
    assert_eq!(c.auth.max_token_ttl, Duration::from_secs(3600));
}

#[test]
fn user_checks_issuer_audience_and_bootstrap_admin_are_validated() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.auth.user_check_ttl, Duration::from_secs(5));
    assert_eq!(
        (
            c.auth.issuer.as_deref(),
            c.auth.audience.as_deref(),
            c.auth.bootstrap_admin.as_deref()
        ),
        (None, None, None)
    );
    let e = load(None, &[("ORDERMON_AUTH__USER_CHECK_TTL", "1h")]).unwrap_err();
    assert!(e.to_string().contains("auth.user_check_ttl"), "{e}");
    let c = load(None, &[("ORDERMON_AUTH__USER_CHECK_TTL", "0s")]).unwrap();
    assert_eq!(c.auth.user_check_ttl, Duration::ZERO);
    for (var, key, value) in [
        ("ORDERMON_AUTH__ISSUER", "auth.issuer", " ".to_owned()),
        ("ORDERMON_AUTH__AUDIENCE", "auth.audience", "x".repeat(1025)),
        (
            "ORDERMON_AUTH__BOOTSTRAP_ADMIN",
            "auth.bootstrap_admin",
            "not an id!".to_owned(),
        ),
    ] {
        let e = load(None, &[(var, value.as_str())]).unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
    let c = load(
        Some("[auth]\nissuer = \"ordermon-prod\"\naudience = \"ordermon-api\"\nbootstrap_admin = \"ops\""),
        &[],
    )
    .unwrap();
    assert_eq!(c.auth.issuer.as_deref(), Some("ordermon-prod"));
    assert_eq!(c.auth.audience.as_deref(), Some("ordermon-api"));
    assert_eq!(c.auth.bootstrap_admin.as_deref(), Some("ops"));
}

#[test]
fn secrets_and_passwords_are_redacted() {
    let c = load(
        None,
        &[
            ("ORDERMON_AUTH__JWT_SECRET", "super-secret-value-123"),
            (
                "ORDERMON_DATABASE__URL",
                "postgres://ordermon:hunter2@db:5432/ordermon",
            ),
            ("ORDERMON_CACHE__URL", "redis://:cachepw@cache:6379"),
        ],
    )
    .unwrap();
    let debug = format!("{c:?}");
    let text = c.to_redacted_toml().unwrap();
    for out in [&debug, &text] {
        assert!(!out.contains("super-secret-value-123"), "{out}");
        assert!(
            !out.contains("hunter2") && !out.contains("cachepw"),
            "{out}"
        );
        assert!(
            out.contains("postgres://ordermon:[REDACTED]@db:5432/ordermon"),
            "{out}"
        );
    }
    assert!(debug.contains("[REDACTED]"), "{debug}");
    assert!(text.contains("jwt_secret = \"[REDACTED]\""), "{text}");
    // The real values are still there for connecting.
    assert_eq!(
        c.database.url.expose(),
        "postgres://ordermon:hunter2@db:5432/ordermon"
    );
}

#[test]
fn tls_urls_and_ca_files_load_and_passwords_stay_masked() {
    let c = load(
        Some("[cache]\nurl = \"rediss://:cachepw@cache:6380/0\"\ntls_ca_file = \"/etc/ordermon/ca.pem\""),
        &[
            ("ORDERMON_BUS__URL", "rediss://user:buspw@bus:6380/1"),
            ("ORDERMON_BUS__TLS_CA_FILE", "123"),
            (
                "ORDERMON_DATABASE__URL",
                "postgres://o:dbpw@db/o?sslmode=verify-full&sslrootcert=/etc/ordermon/ca.pem",
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.cache.kind().unwrap(), CacheKind::Redis);
    assert_eq!(c.bus.kind().unwrap(), BusKind::Redis);
    assert_eq!(
        c.cache.tls_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ordermon/ca.pem"))
    );
    // A numeric-looking path from the environment stays a path.
    assert_eq!(
        c.bus.tls_ca_file.as_deref(),
        Some(std::path::Path::new("123"))
    );
    let text = c.to_redacted_toml().unwrap();
    for pw in ["cachepw", "buspw", "dbpw"] {
        assert!(!text.contains(pw), "{text}");
    }
    assert!(text.contains("rediss://:[REDACTED]@cache:6380/0"), "{text}");
    assert!(text.contains("sslrootcert=/etc/ordermon/ca.pem"), "{text}");

    for (vars, key) in [
        (
            [
                ("ORDERMON_CACHE__URL", "redis://cache:6379"),
                ("ORDERMON_CACHE__TLS_CA_FILE", "/ca.pem"),
            ],
            "cache.tls_ca_file",
        ),
        (
            [
                ("ORDERMON_BUS__URL", "amqp://mq:5672/%2f"),
                ("ORDERMON_BUS__TLS_CA_FILE", "/ca.pem"),
            ],
            "bus.tls_ca_file",
        ),
    ] {
        let e = load(None, &vars).unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn the_printed_configuration_loads_back() {
    let c = load(None, &[("ORDERMON_HTTP__ADDR", "0.0.0.0:1234")]).unwrap();
    let text = c.to_redacted_toml().unwrap();
    assert!(text.contains("workers = 1"), "{text}");
    let back = load(Some(&text), &[]).unwrap();
    assert_eq!(back.http, c.http);
    assert_eq!(back.engine.risk, c.engine.risk);
    assert_eq!(back.monitor, c.monitor);
}

#[test]
fn sqlite_paths() {
    let db = |url: &str| DatabaseSettings {
        url: ServiceUrl::new(url),
        ..DatabaseSettings::default()
    };
    assert_eq!(
        db("sqlite:/var/lib/ordermon/o.db?mode=rwc").sqlite_path(),
        Some("/var/lib/ordermon/o.db".into())
    );
    assert_eq!(db("sqlite::memory:").sqlite_path(), None);
    assert_eq!(db("postgres://h/db").sqlite_path(), None);
}

#[test]
fn alerting_rules_routes_and_receivers_load_from_the_file() {
    let c = load(
        Some(
            r#"
            [alerting]
            evaluation_interval = "500ms"
            [alerting.builtin.stuck_order]
            threshold = "60"
            severity = "critical"
            [[alerting.rules]]
            name = "many_orders"
            signal = "orders"
            window = "1m"
            threshold = "500"
            [alerting.route]
            receiver = "ops"
            [[alerting.route.routes]]
            matchers = ['severity="critical"']
            receiver = "mail"
            [alerting.receivers.ops]
            kind = "webhook"
            url = "http://127.0.0.1:9/hook"
            [alerting.receivers.mail]
            kind = "email"
            smarthost = "127.0.0.1:2525"
            from = "ordermon@example.com"
            to = ["ops@example.com"]
            tls = "none"
            "#,
        ),
        &[],
    )
    .unwrap();
    let rules = c.alerting.rules().unwrap();
    let stuck = rules
        .iter()
        .find(|r| r.name.as_str() == "stuck_order")
        .unwrap();
    assert_eq!(stuck.condition.threshold(), Some(dec!(60)));
    assert!(rules.iter().any(|r| r.name.as_str() == "many_orders"));
    assert_eq!(c.alerting.receivers.len(), 2);
    assert_eq!(c.alerting.evaluation_interval, Duration::from_millis(500));
}

#[test]
fn alerting_settings_come_from_the_environment_too() {
    let c = load(
        None,
        &[
            ("ORDERMON_ALERTING__BUILTIN__STUCK_ORDER__THRESHOLD", "45"),
            ("ORDERMON_ALERTING__BUILTIN__WATCHDOG__ENABLED", "false"),
            ("ORDERMON_ALERTING__RECEIVERS__OPS__KIND", "webhook"),
            (
                "ORDERMON_ALERTING__RECEIVERS__OPS__URL",
                "http://127.0.0.1:9/hook",
            ),
            ("ORDERMON_ALERTING__ROUTE__RECEIVER", "ops"),
            (
                "ORDERMON_ALERTING__RULES",
                r#"[{name = "x", signal = "orders", window = "1m", threshold = "5"}]"#,
            ),
        ],
    )
    .unwrap();
    let rules = c.alerting.rules().unwrap();
    let stuck = rules
        .iter()
        .find(|r| r.name.as_str() == "stuck_order")
        .unwrap();
    assert_eq!(stuck.condition.threshold(), Some(dec!(45)));
    assert!(
        !rules
            .iter()
            .find(|r| r.name.as_str() == "watchdog")
            .unwrap()
            .enabled
    );
    assert!(rules.iter().any(|r| r.name.as_str() == "x"));
    assert_eq!(c.alerting.route.receiver.as_deref(), Some("ops"));
}

#[test]
fn bad_alerting_settings_are_refused_naming_what() {
    let cases = [
        (
            "[[alerting.rules]]\nname = \"x\"\nsignal = \"orders\"\n",
            "alert rule `x`: threshold",
        ),
        (
            "[alerting.route]\nreceiver = \"nobody\"\n",
            "unknown receiver `nobody`",
        ),
        ("[alerting.builtin.nope]\nenabled = true\n", "builtin.nope"),
        (
            "[alerting.receivers.ops]\nkind = \"webhook\"\nurl = \"ftp://x\"\n",
            "ops",
        ),
        (
            "[alerting.receivers.ops]\nkind = \"carrier_pigeon\"\n",
            "carrier_pigeon",
        ),
        (
            "[alerting.route]\nmatchers = ['user_id=~\"((\"']\n",
            "regular expression",
        ),
    ];
    for (text, needle) in cases {
        let e = load(Some(text), &[]).unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}

#[test]
fn receiver_secrets_never_print() {
    let c = load(
        Some(
            r#"
            [alerting.receivers.chat]
            kind = "slack"
            webhook_url = "https://hooks.slack.com/services/T0/B0/slacksecret123"
            [alerting.receivers.ding]
            kind = "dingtalk"
            webhook_url = "https://oapi.dingtalk.com/robot/send?access_token=dingtoken456"
            secret = "SECdingsecret789"
            [alerting.receivers.mail]
            kind = "email"
            smarthost = "smtp.example.com:587"
            from = "ordermon@example.com"
            to = ["ops@example.com"]
            username = "ordermon"
            password = "smtppassword000"
            "#,
        ),
        &[],
    )
    .unwrap();
    let printed = c.to_redacted_toml().unwrap();
    let debug = format!("{c:?}");
    for secret in [
        "slacksecret123",
        "dingtoken456",
        "SECdingsecret789",
        "smtppassword000",
    ] {
        assert!(!printed.contains(secret), "{secret} in config output");
        assert!(!debug.contains(secret), "{secret} in Debug");
    }
    assert!(printed.contains("[REDACTED]"));
    // The printed configuration is still a valid configuration.
    assert!(toml::from_str::<Config>(&printed).is_ok());
}

#[test]
fn sign_in_settings_have_defaults_the_file_and_the_environment() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.auth.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(c.auth.refresh_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(c.auth.login_attempts_per_account_per_minute, 5);
    assert_eq!(c.auth.login_attempts_per_ip_per_minute, 30);
    assert_eq!(
        c.auth.sign_in(),
        ordermon_application::sign_in::SignInConfig::default()
    );
    let c = load(
        Some("[auth]\naccess_ttl = \"5m\"\nrefresh_ttl = \"1d\"\nlogin_attempts_per_ip_per_minute = 100"),
        &[
            ("ORDERMON_AUTH__ACCESS_TTL", "10m"),
            ("ORDERMON_AUTH__LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE", "3"),
        ],
    )
    .unwrap();
    let s = c.auth.sign_in();
    assert_eq!(s.access_ttl, Duration::from_secs(600));
    assert_eq!(s.refresh_ttl, Duration::from_secs(86_400));
    assert_eq!(s.attempts_per_account_per_minute, 3);
    assert_eq!(s.attempts_per_ip_per_minute, 100);
    // The printed configuration shows them and loads back.
    let text = c.to_redacted_toml().unwrap();
    assert!(text.contains("access_ttl = \"10m\""), "{text}");
    assert_eq!(load(Some(&text), &[]).unwrap().auth.sign_in(), s);
}

#[test]
fn bad_sign_in_settings_are_refused_naming_the_key() {
    for (var, value, key) in [
        ("ORDERMON_AUTH__ACCESS_TTL", "0s", "auth.access_ttl"),
        ("ORDERMON_AUTH__REFRESH_TTL", "0s", "auth.refresh_ttl"),
        ("ORDERMON_AUTH__ACCESS_TTL", "2d", "auth.access_ttl"),
        (
            "ORDERMON_AUTH__LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE",
            "0",
            "auth.login_attempts_per_account_per_minute",
        ),
        (
            "ORDERMON_AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE",
            "0",
            "auth.login_attempts_per_ip_per_minute",
        ),
    ] {
        let e = load(None, &[(var, value)]).unwrap_err();
        assert!(e.to_string().contains(key), "{var}={value}: {e}");
    }
    let e = load(None, &[("ORDERMON_AUTH__ACCESS_TTL", "soon")]).unwrap_err();
    assert!(e.to_string().contains("ORDERMON_AUTH__ACCESS_TTL"), "{e}");
}

#[test]
fn cluster_needs_a_shared_database_and_sane_leases() {
    // Off by default; on with SQLite or memory it is refused, naming the key.
    assert!(!load(None, &[]).unwrap().cluster.enabled);
    for url in ["sqlite:ordermon.db", "memory"] {
        let e = load(
            None,
            &[
                ("ORDERMON_CLUSTER__ENABLED", "true"),
                ("ORDERMON_DATABASE__URL", url),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("cluster.enabled"), "{url}: {e}");
    }
    let pg = ("ORDERMON_DATABASE__URL", "postgres://db.internal/ordermon");
    let on = ("ORDERMON_CLUSTER__ENABLED", "true");
    let c = load(None, &[pg, on]).unwrap();
    assert!(c.cluster.enabled);
    let e = load(
        None,
        &[pg, on, ("ORDERMON_CLUSTER__USER_LEASE_TTL", "500ms")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("cluster.user_lease_ttl"), "{e}");
    let e = load(
        None,
        &[
            pg,
            on,
            ("ORDERMON_CLUSTER__MEMBER_TTL", "3s"),
            ("ORDERMON_CLUSTER__ROUND_INTERVAL", "2s"),
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("cluster.member_ttl"), "{e}");
    let e = load(None, &[("ORDERMON_BUS__RELAY_LEASE_TTL", "100ms")]).unwrap_err();
    assert!(e.to_string().contains("bus.relay_lease_ttl"), "{e}");
}

#[test]
fn an_advertised_address_is_a_bare_http_base_url() {
    let pg = ("ORDERMON_DATABASE__URL", "postgres://db.internal/ordermon");
    let on = ("ORDERMON_CLUSTER__ENABLED", "true");
    let key = "ORDERMON_CLUSTER__ADVERTISE_URL";
    for good in ["http://10.0.0.5:8080", "https://ordermon-1.internal/"] {
        let c = load(None, &[pg, on, (key, good)]).unwrap();
        assert_eq!(c.cluster.advertise_url.as_deref(), Some(good));
        let o = ordermon_application::ownership::OwnershipConfig::from(&c.cluster);
        assert!(!o.advertise_url.unwrap().ends_with('/'), "{good}");
    }
    for bad in [
        "10.0.0.5:8080",
        "ftp://host",
        "http://user:hunter2@host:8080",
        "http://host:8080/api",
        "http://host:8080?x=1",
        "not a url",
    ] {
        let e = load(None, &[pg, on, (key, bad)]).unwrap_err().to_string();
        assert!(e.contains("cluster.advertise_url"), "{bad}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    // Only with users shared.
    let e = load(None, &[pg, (key, "http://10.0.0.5:8080")]).unwrap_err();
    assert!(e.to_string().contains("cluster.advertise_url"), "{e}");
}

#[test]
fn a_metrics_address_is_host_and_port_apart_from_the_api() {
    let key = "ORDERMON_HTTP__METRICS_ADDR";
    assert_eq!(load(None, &[]).unwrap().http.metrics_addr, None);
    for good in [
        "0.0.0.0:9100",
        "[::1]:9100",
        "localhost:9100",
        "127.0.0.1:0",
    ] {
        let c = load(None, &[(key, good)]).unwrap();
        assert_eq!(c.http.metrics_addr.as_deref(), Some(good));
    }
    for bad in [
        "",
        "9100",
        "0.0.0.0",
        "0.0.0.0:99999",
        ":9100",
        "http://0.0.0.0:9100",
        "::1:9100",
    ] {
        let e = load(None, &[(key, bad)]).unwrap_err().to_string();
        assert!(e.contains("http.metrics_addr"), "{bad}: {e}");
    }
    let e = load(
        None,
        &[
            (key, "127.0.0.1:7000"),
            ("ORDERMON_HTTP__ADDR", "127.0.0.1:7000"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("http.metrics_addr") && e.contains("port of their own"),
        "{e}"
    );
}

#[test]
fn trace_export_is_off_by_default_and_its_settings_are_checked() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.telemetry.otlp.endpoint, None);
    assert!(crate::ops::otlp_config(&c).is_none());
    let c = load(
        None,
        &[
            (
                "ORDERMON_TELEMETRY__OTLP__ENDPOINT",
                "http://collector:4318",
            ),
            ("ORDERMON_TELEMETRY__OTLP__SAMPLE_RATIO", "0.25"),
            ("ORDERMON_TELEMETRY__OTLP__BATCH_DELAY", "200ms"),
            ("ORDERMON_BUS__INSTANCE", "east-1"),
        ],
    )
    .unwrap();
    let o = crate::ops::otlp_config(&c).unwrap();
    assert_eq!(o.endpoint, "http://collector:4318");
    assert!((o.sample_ratio - 0.25).abs() < f64::EPSILON);
    assert_eq!(o.batch_delay, Duration::from_millis(200));
    assert_eq!(o.instance, "east-1");
    assert_eq!(o.service_name, "ordermon");
    for (key, bad) in [
        ("ORDERMON_TELEMETRY__OTLP__ENDPOINT", "collector:4318"),
        (
            "ORDERMON_TELEMETRY__OTLP__ENDPOINT",
            "http://user:hunter2@collector:4318",
        ),
        (
            "ORDERMON_TELEMETRY__OTLP__ENDPOINT",
            "grpc://collector:4317",
        ),
        ("ORDERMON_TELEMETRY__OTLP__SAMPLE_RATIO", "1.5"),
        ("ORDERMON_TELEMETRY__OTLP__SAMPLE_RATIO", "-0.1"),
        ("ORDERMON_TELEMETRY__OTLP__SERVICE_NAME", " "),
        ("ORDERMON_TELEMETRY__OTLP__BATCH_DELAY", "0s"),
    ] {
        let e = load(None, &[(key, bad)]).unwrap_err().to_string();
        assert!(e.contains("telemetry.otlp."), "{key}={bad}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
