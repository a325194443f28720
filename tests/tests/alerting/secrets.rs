//! Receiver secrets — a Slack URL, a DingTalk token and signing secret, an
//! SMTP password, a webhook's query token and header — never leave the
//! process: not in the printed configuration, not in `/status`, not in the
//! stored error of a delivery that failed.

use ordermon::config::{AlertingSettings, Config};
use ordermon_tests::receivers::{HttpReceiver, Reply, SmtpSink, SmtpStage};
use ordermon_tests::{Backend, provision};
use serde_json::json;

use crate::support::{Server, WAIT, eventually_async, fast_alerting, receiver, route};
use crate::wire::records;

const SLACK_TOKEN: &str = "slack-token-6f2a91";
const DING_TOKEN: &str = "ding-token-0b7c33";
const DING_SECRET: &str = "SECding-secret-d41e57";
const SMTP_PASSWORD: &str = "smtp-password-93aa0c";
const HOOK_TOKEN: &str = "hook-token-5e8b12";
const HEADER_SECRET: &str = "header-secret-27f9d4";
const SECRETS: &[&str] = &[
    SLACK_TOKEN,
    DING_TOKEN,
    DING_SECRET,
    SMTP_PASSWORD,
    HOOK_TOKEN,
    HEADER_SECRET,
];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} leaked in {what}: {text}");
    }
}

/// Every kind of receiver, with secrets, at `slack`, `ding`, `mail` and `hook`.
fn receivers(a: &mut AlertingSettings, slack: &str, ding: &str, smtp: &str, hook: &str) {
    fast_alerting(
        a,
        vec![
            (
                "slack",
                receiver(
                    json!({"kind": "slack", "webhook_url": format!("{slack}/services/T0/B0/{SLACK_TOKEN}")}),
                ),
            ),
            (
                "ding",
                receiver(
                    json!({"kind": "dingtalk", "webhook_url": format!("{ding}/robot/send?access_token={DING_TOKEN}"), "secret": DING_SECRET}),
                ),
            ),
            (
                "mail",
                receiver(
                    json!({"kind": "email", "smarthost": smtp, "tls": "none", "from": "ordermon@example.com",
                    "to": ["ops@example.com"], "username": "ordermon", "password": SMTP_PASSWORD}),
                ),
            ),
            (
                "hook",
                receiver(
                    json!({"kind": "webhook", "url": format!("{hook}/am?token={HOOK_TOKEN}"),
                    "headers": {"Authorization": format!("Bearer {HEADER_SECRET}")}}),
                ),
            ),
        ],
    );
    // Every alert to every receiver.
    a.route.receiver = None;
    a.route.routes = ["slack", "ding", "mail", "hook"]
        .into_iter()
        .map(|r| route(json!({"receiver": r, "continue": true})))
        .collect();
}

#[test]
fn the_printed_configuration_holds_no_receiver_secret() {
    let mut config = Config::default();
    receivers(
        &mut config.alerting,
        "https://hooks.slack.com",
        "https://oapi.dingtalk.com",
        "smtp.example.com:587",
        "https://hooks.example",
    );
    config.validate().expect("a valid configuration");
    let text = config.to_redacted_toml().expect("serializes");
    assert_clean("the redacted configuration", &text);
    assert_clean("the configuration's Debug", &format!("{config:?}"));
    for shown in [
        "[alerting.receivers.slack]",
        "[alerting.receivers.ding]",
        "smarthost = \"smtp.example.com:587\"",
        "username = \"ordermon\"",
        "[REDACTED]",
    ] {
        assert!(text.contains(shown), "`{shown}` missing from {text}");
    }
}

crate::on_backend!(sqlite, Sqlite: failing_receivers_leak_no_secret_to_status_or_the_store);

async fn failing_receivers_leak_no_secret_to_status_or_the_store(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    // Each receiver fails, and each answer quotes what it was sent.
    let slack = HttpReceiver::start().await;
    slack.reply_by_default(
        Reply::status(500).body(&format!("no service at /services/T0/B0/{SLACK_TOKEN}")),
    );
    let ding = HttpReceiver::dingtalk(Some("SECnot-the-configured-secret")).await;
    let hook = HttpReceiver::start().await;
    hook.reply_by_default(
        Reply::status(400).body(&format!("bad token {HOOK_TOKEN}, Bearer {HEADER_SECRET}")),
    );
    let sink = SmtpSink::start().await;
    sink.refuse_always(SmtpStage::MailFrom, 554);
    let server = Server::start(&store, |a| {
        receivers(
            a,
            &slack.url(""),
            &ding.url(""),
            &sink.smarthost(),
            &hook.url(""),
        );
    })
    .await;

    // The watchdog's notification fails everywhere: for good at DingTalk
    // (signature), SMTP (554) and the webhook (400); again and again at Slack.
    let status = eventually_async("every receiver to have failed", WAIT, || async {
        let s = server.alerting_status().await;
        let done = s["notifications_failed"].as_u64() >= Some(3)
            && s["notifications_retried"].as_u64() >= Some(1);
        done.then_some(s)
    })
    .await;
    assert_eq!(status["ready"], true);
    assert_eq!(
        status["receivers"],
        json!(["ding", "hook", "mail", "slack"])
    );
    assert_eq!(status["notifications_sent"], 0, "{status}");
    let (_, whole) = server.call(reqwest::Method::GET, "/status", None).await;
    assert_clean("/status", &whole.to_string());

    let mut errors = 0;
    for name in ["slack", "ding", "mail", "hook"] {
        let list = records(&store, name).await.expect("a durable store");
        assert!(!list.is_empty(), "{name} has a record");
        for r in list {
            let error = r.last_error.unwrap_or_default();
            assert!(!error.is_empty(), "{name}: the failure is recorded");
            assert_clean(&format!("{name}'s stored error"), &error);
            errors += 1;
        }
    }
    assert!(errors >= 4);
    slack.wait_for(2, WAIT).await;
    assert_eq!(ding.received().len(), 1, "a wrong signature is not retried");
    assert!(
        ding.received()[0].answer.contains("310000"),
        "{}",
        ding.received()[0].answer
    );
    server.stop().await;
}
