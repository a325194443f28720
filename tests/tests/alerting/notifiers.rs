//! Each channel end to end from the server — Slack, a signed DingTalk robot,
//! email — and the routing tree choosing receivers by severity, with and
//! without `continue`.

use std::time::Duration;

use ordermon_tests::receivers::{HttpReceiver, Recorded, Reply, SmtpSink};
use ordermon_tests::{Backend, provision};
use serde_json::json;

use crate::support::{
    SETTLE, Server, WAIT, eventually, fast_alerting, receiver, route, webhook, without_watchdog,
};
use crate::wire::{accepted, accepted_of, assert_delivered_once, find, rule_of};

const RULE: &str = "kill_switch_engaged";

crate::on_backend!(memory_only, Memory:
    slack_gets_blocks_naming_the_rule,
    dingtalk_gets_signed_messages_merging_notifications,
    email_arrives_with_both_parts_and_the_notification_id,
    critical_alerts_route_to_their_own_receiver,
    continue_delivers_to_both_routes,
);

async fn slack_gets_blocks_naming_the_rule(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let slack = HttpReceiver::start().await;
    let url = slack.url("/services/T0001/B0001/slack-token-9c1d");
    let server = Server::start(&store, |a| {
        fast_alerting(
            a,
            vec![(
                "chat",
                receiver(json!({"kind": "slack", "webhook_url": url, "channel": "#alerts"})),
            )],
        );
        without_watchdog(a);
    })
    .await;
    server.global_kill_switch("halted").await;
    let fired = slack.wait_for(1, WAIT).await.remove(0);
    assert_eq!(fired.path, "/services/T0001/B0001/slack-token-9c1d");
    let m = &fired.json;
    assert_eq!(m["channel"], "#alerts");
    let blocks = m["blocks"].as_array().expect("Block Kit blocks");
    assert_eq!(blocks[0]["type"], "header", "{m}");
    assert_eq!(blocks[0]["text"]["text"], format!("[FIRING:1] {RULE}"));
    assert!(
        blocks.iter().any(|b| b["type"] == "section"
            && b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("kill switch engaged: all trading halted"))),
        "{m}"
    );
    assert_eq!(blocks.last().unwrap()["type"], "context");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[FIRING:1] {RULE}")),
        "{m}"
    );

    server.global_kill_switch("active").await;
    let both = slack.wait_for(2, WAIT).await;
    assert_eq!(
        both[1].json["blocks"][0]["text"]["text"],
        format!("[RESOLVED] {RULE}")
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!(slack.received().len(), 2, "one message per change");
    server.stop().await;
}

async fn dingtalk_gets_signed_messages_merging_notifications(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let secret = "SECding-secret-4b7e0d";
    let robot = HttpReceiver::dingtalk(Some(secret)).await;
    // The first message (the watchdog's) is answered slowly: what is decided
    // meanwhile waits, and goes out merged into one message.
    robot.reply_next(
        1,
        Reply::json(&json!({"errcode": 0, "errmsg": "ok"})).after(Duration::from_millis(2500)),
    );
    let url = robot.url("/robot/send?access_token=ding-token-51aa");
    let server = Server::start(&store, |a| {
        fast_alerting(
            a,
            vec![(
                "ding",
                receiver(json!({"kind": "dingtalk", "webhook_url": url, "secret": secret})),
            )],
        );
    })
    .await;
    let first = robot.wait_for(1, WAIT).await.remove(0);
    assert!(title(&first).contains("watchdog"), "{}", first.json);
    let users = ["alice", "bob", "carol"];
    for u in users {
        server.halted_trader(u).await;
    }
    let messages = eventually("every trader's notification", WAIT, || {
        let all = robot.received();
        let text: String = all
            .iter()
            .map(|r| r.json["markdown"]["text"].to_string())
            .collect();
        users
            .iter()
            .all(|u| text.contains(&format!("user_id={u}")))
            .then_some(all)
    })
    .await;
    for m in &messages[1..] {
        assert_eq!(m.path, "/robot/send");
        assert_eq!(m.param("access_token"), Some("ding-token-51aa"));
        assert!(
            m.param("timestamp").is_some() && m.param("sign").is_some(),
            "signed: {:?}",
            m.query
        );
        assert_eq!(m.json["msgtype"], "markdown");
        // The robot double checked the signature itself.
        let verdict: serde_json::Value = serde_json::from_str(&m.answer).unwrap();
        assert_eq!(verdict["errcode"], 0, "the robot refused: {}", m.answer);
    }
    let merged = &messages[1];
    assert!(
        merged_count(merged) >= 2,
        "what waited behind the slow answer goes out in one message: {}",
        merged.json
    );
    assert!(title(merged).starts_with(&format!("{} notifications: ", merged_count(merged))));
    tokio::time::sleep(SETTLE).await;
    let all = robot.received();
    let total: usize = all[1..].iter().map(merged_count).sum();
    assert_eq!(total, users.len(), "each trader's notification once");
    for u in users {
        let n = all
            .iter()
            .map(|r| r.json["markdown"]["text"].to_string())
            .filter(|t| t.contains(&format!("user_id={u}")))
            .count();
        assert_eq!(n, 1, "{u}");
    }
    let status = server.alerting_status().await;
    assert_eq!(
        (
            status["notifications_sent"].as_u64(),
            status["notifications_failed"].as_u64()
        ),
        (Some(4), Some(0))
    );
    server.stop().await;
}

fn title(r: &Recorded) -> String {
    r.json["markdown"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Notifications in one DingTalk message (each ends with its id line).
fn merged_count(r: &Recorded) -> usize {
    r.json["markdown"]["text"]
        .as_str()
        .unwrap_or_default()
        .matches(" · notification ")
        .count()
}

async fn email_arrives_with_both_parts_and_the_notification_id(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    let mail = receiver(json!({
        "kind": "email", "smarthost": sink.smarthost(), "tls": "none",
        "from": "Ordermon <ordermon@example.com>", "to": ["ops@example.com"],
        "username": "ordermon", "password": "smtp-password-2e6c", "hello_name": "ordermon.test",
    }));
    let server = Server::start(&store, |a| {
        fast_alerting(a, vec![("mail", mail)]);
        without_watchdog(a);
    })
    .await;
    server.global_kill_switch("halted").await;
    let m = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        (m.mail_from.as_str(), m.rcpt_to.clone()),
        ("ordermon@example.com", vec!["ops@example.com".to_owned()])
    );
    assert_eq!(
        m.auth,
        Some(("ordermon".to_owned(), "smtp-password-2e6c".to_owned()))
    );
    let subject = format!("[FIRING:1] {RULE}");
    assert_eq!(m.subject().as_deref(), Some(subject.as_str()));
    assert_eq!(m.content_type().as_deref(), Some("multipart/alternative"));
    let id = m
        .header("X-Ordermon-Notification-Id")
        .expect("the notification id header");
    assert!(
        id.parse::<ordermon_domain::ids::NotificationId>().is_ok(),
        "{id}"
    );
    assert_eq!(m.message_id(), Some(format!("{id}@example.com")));
    let text = m.text().expect("a text/plain part");
    assert!(
        text.contains("[CRITICAL] firing: kill switch engaged: all trading halted"),
        "{text}"
    );
    assert!(text.contains(&format!("Notification: {id}")), "{text}");
    let html = m.html().expect("a text/html part");
    assert!(html.contains(&format!("<h2>{subject}</h2>")), "{html}");

    server.global_kill_switch("active").await;
    let both = sink.wait_for(2, WAIT).await;
    assert_eq!(both[1].subject(), Some(format!("[RESOLVED] {RULE}")));
    assert_ne!(
        both[1].header("X-Ordermon-Notification-Id").as_deref(),
        Some(id.as_str())
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!(sink.messages().len(), 2);
    server.stop().await;
}

async fn critical_alerts_route_to_their_own_receiver(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let (ops, pager) = (HttpReceiver::start().await, HttpReceiver::start().await);
    let server = Server::start(&store, |a| {
        fast_alerting(
            a,
            vec![
                ("ops", webhook(&ops.url("/ops"))),
                ("pager", webhook(&pager.url("/pager"))),
            ],
        );
        a.route.routes = vec![route(
            json!({"matchers": ["severity=\"critical\""], "receiver": "pager"}),
        )];
    })
    .await;
    server.global_kill_switch("halted").await;
    let paged = eventually("the page", WAIT, || find(&pager, RULE, "firing")).await;
    assert_eq!(paged.json["receiver"], "pager");
    assert_eq!(paged.json["groupKey"], format!("0.0:{{rule=\"{RULE}\"}}"));
    let watchdog = eventually("the watchdog at ops", WAIT, || {
        find(&ops, "watchdog", "firing")
    })
    .await;
    assert_eq!(
        (
            watchdog.json["receiver"].as_str(),
            watchdog.json["groupKey"].as_str()
        ),
        (Some("ops"), Some("0:{rule=\"watchdog\"}"))
    );
    tokio::time::sleep(SETTLE).await;
    assert!(
        accepted(&pager).iter().all(|r| rule_of(r) == RULE),
        "only critical alerts page"
    );
    assert!(
        accepted_of(&ops, RULE).is_empty(),
        "the first matching route took it"
    );
    assert_eq!((accepted(&pager).len(), accepted(&ops).len()), (1, 1));
    server.stop().await;
}

async fn continue_delivers_to_both_routes(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let (ops, pager) = (HttpReceiver::start().await, HttpReceiver::start().await);
    let server = Server::start(&store, |a| {
        fast_alerting(a, vec![("ops", webhook(&ops.url("/ops"))), ("pager", webhook(&pager.url("/pager")))]);
        a.route.routes = vec![
            route(json!({"matchers": ["severity=\"critical\""], "receiver": "pager", "continue": true})),
            route(json!({"receiver": "ops"})),
        ];
    })
    .await;
    server.global_kill_switch("halted").await;
    let paged = eventually("the page", WAIT, || find(&pager, RULE, "firing")).await;
    let told = eventually("the kill switch at ops too", WAIT, || {
        find(&ops, RULE, "firing")
    })
    .await;
    assert_eq!(paged.json["groupKey"], format!("0.0:{{rule=\"{RULE}\"}}"));
    assert_eq!(told.json["groupKey"], format!("0.1:{{rule=\"{RULE}\"}}"));
    assert_ne!(paged.json["notificationId"], told.json["notificationId"]);
    eventually("the watchdog at ops", WAIT, || {
        find(&ops, "watchdog", "firing")
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(accepted(&pager).len(), 1, "the watchdog is not critical");
    assert_eq!(accepted(&ops).len(), 2);
    assert_delivered_once(&accepted(&ops));
    assert_delivered_once(&accepted(&pager));
    server.stop().await;
}
