//! The Prometheus exposition of a real `monitor-server` after real traffic:
//! `promtool check metrics` finds nothing to say (HELP on every metric,
//! conventional names and types), every family has HELP, and no label value
//! is a user, order or client order id — series do not grow with users or
//! orders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use ordermon_domain::user::Role;
use ordermon_tests::{Backend, provision};
use serde_json::json;

mod common;

use common::{call, ready, token};

/// `name{labels} value` lines: the series, without comments.
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Each series as its metric family and labels, a histogram's buckets, sum
/// and count counted once (without `le`).
fn label_sets(text: &str) -> BTreeSet<String> {
    series(text)
        .iter()
        .map(|l| {
            let key = l.rsplit_once(' ').map_or(*l, |(k, _)| k);
            let (name, labels) = key.split_once('{').unwrap_or((key, ""));
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            let labels: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.starts_with("le="))
                .collect();
            format!("{name}{{{}}}", labels.join(","))
        })
        .collect()
}

/// Every label value of every series.
fn label_values(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in series(text) {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, _)) = rest.rsplit_once('}') else {
            continue;
        };
        for pair in labels.split("\",") {
            if let Some((_, v)) = pair.split_once("=\"") {
                out.insert(v.trim_end_matches('"').to_owned());
            }
        }
    }
    out
}

async fn traffic(http: &reqwest::Client, base: &str, users: &[String]) -> Vec<String> {
    let admin = token("root", Role::Admin);
    let mut ids = Vec::new();
    for u in users {
        let (s, b) = call(
            http.post(format!("{base}/api/v1/users"))
                .bearer_auth(&admin)
                .json(&json!({"id": u, "name": u})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = call(
            http.post(format!("{base}/api/v1/users/{u}/cash"))
                .bearer_auth(&admin)
                .json(&json!({"currency": "USD", "amount": "100", "reason": "initial"})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        // One that rests, one denied for funds, one refused as invalid.
        for (cid, qty) in [(format!("{u}-ok"), "1"), (format!("{u}-big"), "1000")] {
            let (s, b) = call(
                http.post(format!("{base}/api/v1/orders"))
                    .bearer_auth(token(u, Role::Trader))
                    .json(
                        &json!({"client_order_id": cid, "instrument_id": "ACME.SIM", "side": "buy",
                    "type": "limit", "quantity": qty, "price": "1.00", "time_in_force": "gtc"}),
                    ),
            )
            .await;
            assert_eq!(s, 201, "{b}");
            ids.push(b["id"].as_str().unwrap().to_owned());
            ids.push(cid);
        }
        let (s, _) = call(
            http.post(format!("{base}/api/v1/orders"))
                .bearer_auth(token(u, Role::Trader))
                .json(&json!({"client_order_id": "bad", "quantity": "-1"})),
        )
        .await;
        assert_eq!(s, 422);
        let (s, _) = call(
            http.get(format!("{base}/api/v1/orders"))
                .bearer_auth(token(u, Role::Trader)),
        )
        .await;
        assert_eq!(s, 200);
    }
    ids
}

/// The value of the series `key` (`name{labels}` as exposed), or NaN.
fn value(text: &str, key: &str) -> f64 {
    series(text)
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Scrapes `base` until `done` holds for the exposition (at most 30 s), and
/// returns the last one.
async fn scrape_until(http: &reqwest::Client, base: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = match http.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        if done(&text) || std::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// `promtool check metrics` on `text`: its complaints, or `None` when the
/// tool is not installed (a failure when services are required).
fn promtool(text: &str) -> Option<String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("ORDERMON_REQUIRE_SERVICES").is_none(),
                "promtool is needed (Debian package prometheus; scripts/check-deploy.sh installs it): {e}"
            );
            eprintln!("promtool not installed: skipping its check");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() {
        said
    } else {
        format!("exit {}: {said}", out.status)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_is_clean_and_does_not_grow_with_users_or_orders() {
    let Some(store) = provision(Backend::Sqlite).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("metrics");
    let port = common::free_port();
    let _server = common::serve(&db, &logs, port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    ready(&http, &base).await;
    common::list_acme(&http, &base).await;

    // Scraped once first: the scrapes' own request series exist from here on.
    let _ = scrape(&http, &base).await;
    let first: Vec<String> = (0..2).map(|i| format!("first{i}")).collect();
    let mut ids = traffic(&http, &base, &first).await;
    let before = scrape(&http, &base).await;
    let more: Vec<String> = (0..8).map(|i| format!("more{i}")).collect();
    ids.extend(traffic(&http, &base, &more).await);
    let after = scrape(&http, &base).await;

    // No id of anything the traffic made is a label value.
    let values = label_values(&after);
    for id in first.iter().chain(&more).chain(&ids) {
        assert!(!values.contains(id), "{id} is a label value");
    }
    // Four times the users and orders: the same series, give or take the
    // few a later first occurrence adds (never one per user).
    let (b, a) = (label_sets(&before), label_sets(&after));
    let new: Vec<&String> = a.difference(&b).collect();
    assert!(
        new.len() < more.len(),
        "{} label sets before, {} after; new: {new:#?}",
        b.len(),
        a.len()
    );

    // HELP on every family.
    let typed: BTreeSet<&str> = after
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let helped: BTreeSet<&str> = after
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<_> = typed.difference(&helped).collect();
    assert!(missing.is_empty(), "no HELP: {missing:?}");
    assert!(typed.contains("process_cpu_seconds_total"), "{typed:?}");
    assert!(
        typed.contains("ordermon_http_request_duration_seconds"),
        "{typed:?}"
    );
    assert!(
        after.contains("ordermon_store_group_size_bucket{"),
        "the group size is a histogram"
    );

    if let Some(said) = promtool(&after) {
        assert!(said.trim().is_empty(), "promtool check metrics: {said}");
    }
    // Readiness is exported: one state at a time, and the store answers.
    assert_eq!(
        ["ok", "degraded", "unavailable"]
            .iter()
            .map(|s| value(&after, &format!("ordermon_ready{{state=\"{s}\"}}")))
            .sum::<f64>(),
        1.0,
        "{after}"
    );
    assert_eq!(
        value(&after, "ordermon_component_up{component=\"store\"}"),
        1.0
    );
    eprintln!(
        "{} families, {} label sets after 10 users and 20 orders ({} after 2 users)",
        typed.len(),
        a.len(),
        b.len()
    );
    let _ = std::fs::remove_dir_all(&logs);
}

/// With `http.metrics_addr`, `/metrics` is served there (and nothing else
/// is), and no longer on the API's port; the consumer's backlog gauge is in
/// it, for this instance's group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_port_of_their_own() {
    let Some(store) = provision(Backend::Sqlite).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("metrics-port");
    let (port, metrics_port) = (common::free_port(), common::free_port());
    let _server = common::serve(
        &db,
        &logs,
        port,
        &[(
            "ORDERMON_HTTP__METRICS_ADDR",
            format!("127.0.0.1:{metrics_port}"),
        )],
    );
    let base = format!("http://127.0.0.1:{port}");
    let metrics_base = format!("http://127.0.0.1:{metrics_port}");
    let http = reqwest::Client::new();
    ready(&http, &base).await;

    // The consumer reads its group's backlog as soon as it runs.
    let text = scrape_until(&http, &metrics_base, |t| {
        t.contains("ordermon_consumer_lag_messages{")
    })
    .await;
    assert!(
        text.contains("# HELP ordermon_consumer_lag_messages "),
        "{text}"
    );
    assert!(
        text.contains("ordermon_consumer_lag_messages{group=\"instance-"),
        "{text}"
    );
    assert!(text.contains("ordermon_build_info{"), "{text}");

    // Metrics only, there; not on the API's port any more.
    for path in ["/health/live", "/api/v1/users"] {
        let r = http
            .get(format!("{metrics_base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the metrics port");
    }
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "/metrics on the API port");
    let r = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = std::fs::remove_dir_all(&logs);
}

/// With the cache's Redis unreachable the server still serves, degraded:
/// `ordermon_ready` says so and `ordermon_component_up` names the cache,
/// without anything probing `/health/ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_exported_as_gauges() {
    let Some(store) = provision(Backend::Sqlite).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("metrics-readiness");
    let port = common::free_port();
    let dead = common::free_port();
    let _server = common::serve(
        &db,
        &logs,
        port,
        &[("ORDERMON_CACHE__URL", format!("redis://127.0.0.1:{dead}"))],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let text = scrape_until(&http, &base, |t| {
        value(t, "ordermon_component_up{component=\"cache\"}") == 0.0
    })
    .await;
    assert_eq!(
        value(&text, "ordermon_component_up{component=\"cache\"}"),
        0.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "ordermon_component_up{component=\"store\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "ordermon_ready{state=\"degraded\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(value(&text, "ordermon_ready{state=\"ok\"}"), 0.0, "{text}");
    assert_eq!(
        value(&text, "ordermon_ready{state=\"unavailable\"}"),
        0.0,
        "{text}"
    );
}
