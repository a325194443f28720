//! Acceptance on every backend: the global kill switch engaged through the
//! API raises `kill_switch_engaged` within a second; a webhook gets it as
//! Alertmanager JSON; acknowledging it stops its repeats while the
//! unacknowledged watchdog keeps repeating; releasing the switch resolves it
//! and sends the resolution; every change is an `alert.changed` event in the
//! log and on the WebSocket stream.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ordermon_tests::receivers::HttpReceiver;
use ordermon_tests::{Backend, provision};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{GROUP_INTERVAL, Server, WAIT, eventually, fast_alerting, webhook};
use crate::wire::{ID_HEADER, NO_END, accepted, accepted_of, assert_delivered_once, find, kind_of};

const REPEAT: Duration = Duration::from_secs(2);
const RULE: &str = "kill_switch_engaged";

crate::per_backend!(kill_switch_alert_is_delivered_acknowledged_and_resolved);

async fn kill_switch_alert_is_delivered_acknowledged_and_resolved(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let hook = HttpReceiver::start().await;
    let server = Server::start(&store, |a| {
        fast_alerting(a, vec![("ops", webhook(&hook.url("/alertmanager")))]);
        a.route.repeat_interval = Some(REPEAT);
    })
    .await;
    let (mut stream, _) = tokio_tungstenite::connect_async(server.stream_url())
        .await
        .expect("the stream opens");

    // Engaged: visible at the API within a second.
    let engaged = Instant::now();
    server.global_kill_switch("halted").await;
    let alert = server.wait_alert(RULE, "firing").await;
    let visible_after = engaged.elapsed();
    assert!(
        visible_after < Duration::from_secs(1),
        "{}: the alert took {visible_after:?} to show",
        backend.name()
    );
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["labels"]["rule"], RULE);
    assert_eq!(alert["acknowledged"], false);
    let id = alert["id"].as_str().unwrap().to_owned();
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_owned();

    // Delivered as Alertmanager's webhook JSON, version 4.
    let fired = eventually("the kill switch notification", WAIT, || {
        find(&hook, RULE, "firing")
    })
    .await;
    assert_eq!(
        (fired.method.as_str(), fired.path.as_str()),
        ("POST", "/alertmanager")
    );
    assert_eq!(fired.header("content-type"), Some("application/json"));
    let body = &fired.json;
    assert_eq!(body["version"], "4", "{body}");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["kind"], "update");
    assert_eq!(body["groupKey"], format!("0:{{rule=\"{RULE}\"}}"));
    assert_eq!(body["groupLabels"], json!({"rule": RULE}));
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["commonLabels"]["alertname"], RULE);
    assert_eq!(body["commonLabels"]["severity"], "critical");
    assert_eq!(body["commonAnnotations"], alert["annotations"]);
    assert_eq!(fired.header(ID_HEADER), body["notificationId"].as_str());
    let sent = body["alerts"].as_array().expect("alerts");
    assert_eq!(sent.len(), 1, "{body}");
    let a = &sent[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["fingerprint"], fingerprint.as_str());
    assert_eq!(a["labels"]["alertname"], RULE);
    assert_eq!(a["labels"]["rule"], RULE);
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["instance"], alert["labels"]["instance"]);
    assert_eq!(
        a["annotations"]["summary"],
        "kill switch engaged: all trading halted"
    );
    assert!(
        a["annotations"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(a["endsAt"], NO_END);
    let starts: DateTime<Utc> = a["startsAt"].as_str().unwrap().parse().expect("RFC 3339");
    assert_eq!(
        starts,
        alert["starts_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    );

    // Acknowledged: the watchdog, unacknowledged, repeats; the kill switch
    // does not, though it would have by now.
    let acked = server.ack(&alert).await;
    assert_eq!(
        (
            acked["acknowledged"].clone(),
            acked["acknowledged_by"].clone()
        ),
        (json!(true), json!("root"))
    );
    eventually("a repeat of the watchdog", WAIT, || {
        accepted_of(&hook, "watchdog")
            .into_iter()
            .find(|r| kind_of(r) == "repeat")
    })
    .await;
    tokio::time::sleep_until(
        (fired.at + REPEAT + GROUP_INTERVAL + Duration::from_millis(500)).into(),
    )
    .await;
    let told = accepted_of(&hook, RULE);
    assert_eq!(
        told.len(),
        1,
        "an acknowledged alert is not repeated: {told:#?}"
    );
    let watchdog = accepted_of(&hook, "watchdog");
    assert!(watchdog.len() >= 2, "{watchdog:#?}");
    assert_eq!(kind_of(&watchdog[0]), "update");
    assert!(
        watchdog[1..]
            .iter()
            .all(|r| kind_of(r) == "repeat" && r.json["alerts"][0]["status"] == "firing")
    );

    // Released: resolved by itself, and the resolution is sent.
    server.global_kill_switch("active").await;
    let resolved = server.wait_alert(RULE, "resolved").await;
    assert_eq!(resolved["id"], id.as_str());
    let note = eventually("the resolve notification", WAIT, || {
        find(&hook, RULE, "resolved")
    })
    .await;
    let a = &note.json["alerts"][0];
    assert_eq!(
        (a["status"].as_str(), a["fingerprint"].as_str()),
        (Some("resolved"), Some(fingerprint.as_str()))
    );
    let ends: DateTime<Utc> = a["endsAt"]
        .as_str()
        .unwrap()
        .parse()
        .expect("endsAt is set");
    assert!(ends >= starts, "{ends} before {starts}");
    assert_ne!(note.json["notificationId"], body["notificationId"]);
    assert_eq!(note.json["groupKey"], body["groupKey"]);

    // Every change is an event: raised, acknowledged, resolved.
    let expected = [("firing", false), ("firing", true), ("resolved", true)];
    let log = server.get("/api/v1/events?after=0&limit=500").await;
    let logged: Vec<(String, bool)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["event_type"] == "alert.changed" && e["aggregate_id"] == id.as_str())
        .map(change)
        .collect();
    assert_eq!(logged, owned(&expected), "{log}");
    let mut streamed = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while streamed.len() < expected.len() {
        let frame = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {streamed:?} of the alert's changes were streamed"))
            .expect("the stream is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            let e: Value = serde_json::from_str(&text).expect("JSON frames");
            if e["event_type"] == "alert.changed" && e["aggregate_id"] == id.as_str() {
                streamed.push(change(&e));
            }
        }
    }
    assert_eq!(streamed, owned(&expected));

    assert_delivered_once(&accepted(&hook));
    drop(stream);
    server.stop().await;
}

/// An `alert.changed` event's alert state and whether it was acknowledged.
fn change(event: &Value) -> (String, bool) {
    let alert = &event["payload"]["data"]["alert"];
    (
        alert["state"].as_str().unwrap_or_default().to_owned(),
        alert["acknowledged"].as_bool().unwrap_or_default(),
    )
}

fn owned(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(s, a)| ((*s).to_owned(), *a))
        .collect()
}
