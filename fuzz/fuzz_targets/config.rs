//! Configuration text and `ORDERMON_*` variables → `Config::from_sources`, the
//! loader `monitor-server` runs at start: no panic on any file or variable; a
//! configuration that loads is valid, prints with every secret redacted, and
//! its printed form loads again to the same printed form.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ordermon::config::Config;

/// Variable names are mostly real keys, so values reach the parsers.
#[derive(Debug, Arbitrary)]
enum Var {
    Known(u8, String),
    Other(String, String),
}

const KEYS: &[&str] = &[
    "ORDERMON_HTTP__ADDR",
    "ORDERMON_HTTP__BODY_LIMIT_BYTES",
    "ORDERMON_HTTP__REQUEST_TIMEOUT",
    "ORDERMON_HTTP__RATE_LIMIT_PER_USER",
    "ORDERMON_DATABASE__URL",
    "ORDERMON_CACHE__URL",
    "ORDERMON_CACHE__TTL__QUOTE",
    "ORDERMON_CACHE__CODEC__ORDER",
    "ORDERMON_BUS__URL",
    "ORDERMON_BUS__RETRY_DELAYS",
    "ORDERMON_AUTH__JWT_SECRET",
    "ORDERMON_AUTH__LEEWAY_SECS",
    "ORDERMON_AUTH__MAX_TOKEN_TTL",
    "ORDERMON_ENGINE__RISK__FEE_RATE",
    "ORDERMON_ENGINE__COMMIT__WORKERS",
    "ORDERMON_MONITOR__SCAN_INTERVAL",
    "ORDERMON_DEMO__INSTRUMENTS",
    "ORDERMON_ALERTING__ROUTE__RECEIVER",
    "ORDERMON_LOGS__LEVEL",
];

#[derive(Debug, Arbitrary)]
struct Input {
    file: Option<String>,
    vars: Vec<Var>,
}

fuzz_target!(|input: Input| {
    let vars: Vec<(String, String)> = input
        .vars
        .into_iter()
        .map(|v| match v {
            Var::Known(i, value) => (KEYS[usize::from(i) % KEYS.len()].to_owned(), value),
            Var::Other(k, value) => (k, value),
        })
        .collect();
    let file = input.file.as_deref().map(|t| ("fuzz.toml", t));
    let Ok(config) = Config::from_sources(file, vars) else {
        return;
    };
    config.validate().expect("a loaded configuration is valid");
    let shown = config.to_redacted_toml().expect("a loaded configuration prints");
    if config.auth.jwt_secret.is_some() {
        assert!(shown.contains("[REDACTED]"), "the secret is not redacted");
    }
    // What `monitor-server config` prints loads again (a redacted secret stays
    // redacted) and prints the same.
    if let Ok(again) = Config::from_sources(Some(("shown.toml", &shown)), Vec::new()) {
        assert_eq!(again.to_redacted_toml().expect("prints"), shown);
    }
});
