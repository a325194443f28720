//! The generic webhook: Alertmanager's v4 JSON on the wire, and HTTP
//! failures sorted into transient and permanent.

use std::time::Duration;

use ordermon_domain::alert::AlertState;
use ordermon_tests::receivers::{HttpReceiver, Reply};
use serde_json::json;

use super::*;

const TOKEN: &str = "hook-token-4f2a9c";
const HEADER_SECRET: &str = "Bearer hdr-secret-77e1";

fn webhook(r: &HttpReceiver, extra: Value) -> Arc<dyn Notifier> {
    let mut config = json!({
        "kind": "webhook",
        "url": r.url(&format!("/alerts?token={TOKEN}")),
        "headers": {"Authorization": HEADER_SECRET},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    build("ops-webhook", config)
}

#[tokio::test]
async fn posts_alertmanager_v4_json_with_the_notification_id() {
    let r = HttpReceiver::start().await;
    let n = webhook(&r, json!({}));
    assert_eq!(
        (n.name(), n.kind(), n.max_batch()),
        ("ops-webhook", "webhook", 1)
    );
    let sent = notification(&[("alice", AlertState::Firing), ("bob", AlertState::Resolved)]);
    n.notify(std::slice::from_ref(&sent)).await.unwrap();

    let got = r.wait_for(1, WAIT).await;
    let req = &got[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/alerts")
    );
    assert_eq!(req.param("token"), Some(TOKEN));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some(HEADER_SECRET));
    let id = sent.id.to_string();
    assert_eq!(req.header("x-ordermon-notification-id"), Some(id.as_str()));

    let body = &req.json;
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alerts",
            "commonAnnotations",
            "commonLabels",
            "externalURL",
            "groupKey",
            "groupLabels",
            "kind",
            "notificationId",
            "receiver",
            "status",
            "truncatedAlerts",
            "version"
        ]
    );
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["groupKey"], sent.group_key.as_str());
    assert_eq!(
        body["groupLabels"],
        json!({"rule": "stuck_order", "user_id": "alice"})
    );
    assert_eq!(
        body["commonLabels"],
        json!({"alertname": "stuck_order", "rule": "stuck_order", "severity": "critical", "venue": "SIM"})
    );
    assert_eq!(
        body["commonAnnotations"],
        json!({"description": "no ack from the venue after 30s"})
    );
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["notificationId"], id.as_str());
    assert_eq!(body["kind"], "update");
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0],
        json!({
            "status": "firing",
            "labels": {"alertname": "stuck_order", "rule": "stuck_order", "severity": "critical", "user_id": "alice", "venue": "SIM"},
            "annotations": {"summary": "order stuck for alice", "description": "no ack from the venue after 30s"},
            "startsAt": "2026-03-01T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": sent.alerts[0].fingerprint.to_string(),
        })
    );
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[1]["endsAt"], "2026-03-01T12:05:00Z");
}

#[tokio::test]
async fn send_resolved_off_skips_resolved_groups_and_max_alerts_truncates() {
    let r = HttpReceiver::start().await;
    let n = webhook(&r, json!({"send_resolved": false, "max_alerts": 1}));
    // All resolved: nothing is sent, and that is a success.
    n.notify(&[notification(&[("bob", AlertState::Resolved)])])
        .await
        .unwrap();
    let mixed = notification(&[
        ("alice", AlertState::Firing),
        ("carol", AlertState::Firing),
        ("bob", AlertState::Resolved),
    ]);
    n.notify(std::slice::from_ref(&mixed)).await.unwrap();
    let got = r.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "the all-resolved notification was sent");
    let body = &got[0].json;
    assert_eq!(body["notificationId"], mixed.id.to_string());
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["alerts"][0]["labels"]["user_id"], "alice");
    // carol was cut by max_alerts; bob was dropped by send_resolved.
    assert_eq!(body["truncatedAlerts"], 1);
}

#[tokio::test]
async fn http_failures_are_transient_or_permanent() {
    let r = HttpReceiver::start().await;
    let n = webhook(&r, json!({}));
    let secrets = [TOKEN, "hdr-secret-77e1"];
    let cases: Vec<(Reply, Option<Option<Duration>>)> = vec![
        (
            Reply::status(500).body(&format!("boom at {}", r.url("/alerts?token=x"))),
            Some(None),
        ),
        (
            Reply::status(503).header("Retry-After", "12"),
            Some(Some(Duration::from_secs(12))),
        ),
        (
            Reply::status(429).header("Retry-After", "7"),
            Some(Some(Duration::from_secs(7))),
        ),
        (Reply::status(408), Some(None)),
        (
            Reply::status(400).body(&format!(
                "bad request to {}",
                r.url(&format!("/alerts?token={TOKEN}"))
            )),
            None,
        ),
        (Reply::status(401), None),
        (Reply::status(404), None),
        (
            Reply::status(302).header("Location", "http://127.0.0.1:1/elsewhere"),
            None,
        ),
    ];
    for (reply, expected) in cases {
        let status = reply.status;
        r.reply_next(1, reply);
        let e = fails(n.as_ref(), &[firing()]).await;
        assert_clean(&e, &secrets);
        assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        match expected {
            Some(retry_after) => assert_eq!(transient(&e), retry_after, "HTTP {status}"),
            None => {
                permanent(&e);
            }
        }
    }
    // Unscripted again: delivered.
    n.notify(&[firing()]).await.unwrap();
    assert_eq!(r.received().len(), 9);
}

#[tokio::test]
async fn a_receiver_that_is_down_is_transient_until_it_is_back() {
    let r = HttpReceiver::start().await;
    let n = webhook(&r, json!({}));
    n.notify(&[firing()]).await.unwrap();
    r.stop().await;
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), None);
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert_clean(&e, &[TOKEN, "hdr-secret-77e1"]);
    r.restart().await;
    n.notify(&[firing()]).await.unwrap();
    assert_eq!(r.wait_for(2, WAIT).await.len(), 2);
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_transient() {
    let r = HttpReceiver::start().await;
    let n = webhook(&r, json!({"timeout": "200ms"}));
    r.reply_next(1, Reply::ok("late").after(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let e = fails(n.as_ref(), &[firing()]).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(transient(&e), None);
    assert!(e.to_string().contains("timed out"), "{e}");
    assert_clean(&e, &[TOKEN]);
}

#[tokio::test]
async fn unreachable_hosts_never_show_the_url() {
    let port = closed_port();
    let n = build(
        "ops-webhook",
        json!({"kind": "webhook", "url": format!("http://user:pw-9x7q@127.0.0.1:{port}/a?token={TOKEN}")}),
    );
    let e = fails(n.as_ref(), &[firing()]).await;
    transient(&e);
    assert_clean(&e, &[TOKEN, "pw-9x7q", &format!("127.0.0.1:{port}/a")]);
}
