//! One order is one trace, across instances and over every broker: two
//! `monitor-server` processes share a database and a broker and export
//! their spans over OTLP/HTTP to a real receiver on loopback
//! ([`ordermon_tests::otlp::OtlpReceiver`], decoding the protobuf). An order
//! sent to the first with a W3C `traceparent` yields, in that trace: the
//! request (a child of the caller's span), the owner's command, its commit,
//! the relay's publish of each message (whichever instance relays), and the
//! consume of each message on both instances, with the stream fan-out under
//! it. Problem bodies and JSON log lines name the trace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{call, ready, token};
use ordermon_domain::user::Role;
use ordermon_tests::bus::{BusKind, BusOptions, provision_bus};
use ordermon_tests::otlp::{OtlpReceiver, ReceivedSpan};
use ordermon_tests::{Backend, provision};
use serde_json::json;

const SERVER: i32 = 2;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

fn new_trace() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace, parent)
}

/// True when `span` is `ancestor` or lies under it, following parent links.
fn under(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut at = span;
    for _ in 0..spans.len() + 1 {
        if at.span_id == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == at.parent_span_id) {
            Some(parent) => at = parent,
            None => return false,
        }
    }
    false
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

async fn one_order_is_one_trace(db: Backend, kind: BusKind) {
    let Some(store) = provision(db).await else {
        return;
    };
    let Some(bus) = provision_bus(kind, BusOptions::default()).await else {
        return;
    };
    let receiver = OtlpReceiver::start().await;
    // The in-process bus reaches one process only: one instance there.
    let names: Vec<String> = if kind == BusKind::Memory {
        vec![format!("a-{}", bus.suffix)]
    } else {
        vec![format!("a-{}", bus.suffix), format!("b-{}", bus.suffix)]
    };
    for n in ["a", "b"].iter().take(names.len()) {
        let _ = bus.group(&format!("instance-{n}"));
    }
    let url = store.url.clone().unwrap();
    let logs = common::logs_dir("traces");
    let http = reqwest::Client::new();
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for name in &names {
        let port = common::free_port();
        let env = vec![
            ("ORDERMON_BUS__URL", bus.server_url()),
            ("ORDERMON_BUS__TOPIC", bus.server_topic()),
            ("ORDERMON_BUS__INSTANCE", name.clone()),
            ("ORDERMON_TELEMETRY__OTLP__ENDPOINT", receiver.url.clone()),
            ("ORDERMON_TELEMETRY__OTLP__BATCH_DELAY", "100ms".to_owned()),
            ("ORDERMON_LOGS__FORMAT", "json".to_owned()),
            ("ORDERMON_LOGS__LEVEL", "info".to_owned()),
        ];
        servers.push(common::serve(&url, &logs, port, &env));
        bases.push((port, format!("http://127.0.0.1:{port}")));
    }
    for (_, base) in &bases {
        ready(&http, base).await;
    }
    let (port, base) = bases[0].clone();
    common::list_acme(&http, &base).await;
    common::funded_user(&http, &base, "alice", "100").await;

    // The order, sent from within the caller's trace.
    let (trace, caller) = new_trace();
    let (s, b) = call(
        http.post(format!("{base}/api/v1/orders"))
            .bearer_auth(token("alice", Role::Trader))
            .header("traceparent", format!("00-{trace}-{caller}-01"))
            .json(
                &json!({"client_order_id": "traced-1", "instrument_id": "ACME.SIM", "side": "buy",
                "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"}),
            ),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    let instances = names.len();
    let spans = receiver
        .wait_for_trace(&trace, Duration::from_secs(30), |spans| {
            let consumed: BTreeSet<&str> = spans
                .iter()
                .filter(|s| s.kind == CONSUMER)
                .map(|s| s.instance.as_str())
                .collect();
            // Every span but the request's has its parent here: a span is
            // exported when it ends, and a publish ends after its consume
            // may have begun.
            let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
            consumed.len() == instances
                && !named(spans, "stream.fanout").is_empty()
                && spans
                    .iter()
                    .all(|s| s.kind == SERVER || ids.contains(s.parent_span_id.as_str()))
        })
        .await;
    let shown = format!("{spans:#?}");

    let request: Vec<_> = spans.iter().filter(|s| s.kind == SERVER).collect();
    assert_eq!(request.len(), 1, "{shown}");
    let request = request[0];
    assert_eq!(request.name, "POST /api/v1/orders", "{shown}");
    assert_eq!(request.parent_span_id, caller, "{shown}");
    assert_eq!(request.instance, names[0], "{shown}");
    assert_eq!(request.service, "ordermon", "{shown}");

    let command = named(&spans, "owner.command");
    assert_eq!(command.len(), 1, "{shown}");
    // (The engine's own span for the use case may sit in between.)
    assert!(under(&spans, command[0], request), "{shown}");
    let commit = named(&spans, "commit");
    assert_eq!(commit.len(), 1, "{shown}");
    assert_eq!(commit[0].parent_span_id, command[0].span_id, "{shown}");

    let publishes: Vec<_> = spans.iter().filter(|s| s.kind == PRODUCER).collect();
    assert!(!publishes.is_empty(), "{shown}");
    assert!(
        publishes
            .iter()
            .all(|p| p.name == "publish" && p.parent_span_id == commit[0].span_id),
        "{shown}"
    );
    let published: BTreeSet<&str> = publishes.iter().map(|p| p.span_id.as_str()).collect();
    let consumes: Vec<_> = spans.iter().filter(|s| s.kind == CONSUMER).collect();
    assert!(
        consumes
            .iter()
            .all(|c| c.name == "consume" && published.contains(c.parent_span_id.as_str())),
        "{shown}"
    );
    let consumed_on: BTreeSet<&str> = consumes.iter().map(|c| c.instance.as_str()).collect();
    let all: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        consumed_on, all,
        "every instance consumed the order's messages: {shown}"
    );
    let consumed: BTreeSet<&str> = consumes.iter().map(|c| c.span_id.as_str()).collect();
    let fanouts = named(&spans, "stream.fanout");
    assert!(!fanouts.is_empty(), "{shown}");
    assert!(
        fanouts
            .iter()
            .all(|f| consumed.contains(f.parent_span_id.as_str())),
        "{shown}"
    );

    // A refused request names its trace in the problem body and in the log.
    let (refused, caller) = new_trace();
    let (s, b) = call(
        http.post(format!("{base}/api/v1/orders"))
            .bearer_auth(token("alice", Role::Trader))
            .header("traceparent", format!("00-{refused}-{caller}-01"))
            .json(&json!({"client_order_id": "bad", "quantity": "-1"})),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["trace_id"], refused.as_str(), "{b}");
    // Without a traceparent the server begins a trace of its own.
    let (s, b) = call(
        http.get(format!("{base}/api/v1/orders/no-such-order"))
            .bearer_auth(token("alice", Role::Trader)),
    )
    .await;
    assert!(s == 404 || s == 422, "{b}");
    let began = b["trace_id"].as_str().unwrap_or_default().to_owned();
    assert!(
        began.len() == 32 && began.bytes().all(|c| c.is_ascii_hexdigit()) && began != refused,
        "{b}"
    );
    let log_file = logs.join(format!("server-{port}.log"));
    let needle = format!("\"trace_id\":\"{refused}\"");
    let mut logged = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log_file).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains(&needle) && serde_json::from_str::<serde_json::Value>(l).is_ok())
        {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logged,
        "no JSON log line names trace {refused} in {}",
        log_file.display()
    );
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_on_the_in_process_bus() {
    one_order_is_one_trace(Backend::Sqlite, BusKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_instances_on_rabbitmq() {
    one_order_is_one_trace(Backend::Postgres, BusKind::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_instances_on_redis_streams() {
    one_order_is_one_trace(Backend::Postgres, BusKind::Redis).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_instances_on_kafka() {
    one_order_is_one_trace(Backend::Postgres, BusKind::Kafka).await;
}
