//! Slack incoming webhooks: Block Kit on the wire, and Slack's answers
//! (`ok`, 429 with `Retry-After`, error codes) classified.

use std::time::Duration;

use ordermon_domain::alert::AlertState;
use ordermon_tests::receivers::{HttpReceiver, Reply};
use serde_json::json;

use super::*;

/// The webhook path is Slack's credential.
const PATH: &str = "/services/T0ORDMON/B0ALERTS/slack-secret-5d1e";

fn slack(r: &HttpReceiver) -> Arc<dyn Notifier> {
    build(
        "ops-slack",
        json!({
            "kind": "slack",
            "webhook_url": r.url(PATH),
            "channel": "#trading-alerts",
            "username": "ordermon",
        }),
    )
}

#[tokio::test]
async fn posts_block_kit_with_a_text_fallback() {
    let r = HttpReceiver::start().await;
    let n = slack(&r);
    assert_eq!((n.kind(), n.max_batch()), ("slack", 1));
    let sent = notification(&[("alice", AlertState::Firing), ("bob", AlertState::Resolved)]);
    n.notify(std::slice::from_ref(&sent)).await.unwrap();

    let got = r.wait_for(1, WAIT).await;
    let req = &got[0];
    assert_eq!(req.path, PATH);
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = &req.json;
    assert_eq!(body["channel"], "#trading-alerts");
    assert_eq!(body["username"], "ordermon");
    let title = sent.title();
    assert_eq!(title, "[FIRING:1] stuck_order (user_id=alice)");
    assert!(body["text"].as_str().unwrap().starts_with(&title), "{body}");
    let blocks = body["blocks"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["header", "section", "section", "context"]);
    assert_eq!(
        blocks[0]["text"],
        json!({"type": "plain_text", "text": title, "emoji": true})
    );
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let alice = blocks[1]["text"]["text"].as_str().unwrap();
    for part in [
        "*CRITICAL*",
        "firing",
        "order stuck for alice",
        "no ack from the venue after 30s",
        "`user_id=alice`",
        "`venue=SIM`",
    ] {
        assert!(alice.contains(part), "`{part}` missing from {alice}");
    }
    let bob = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(
        bob.contains("resolved") && bob.contains("order stuck for bob"),
        "{bob}"
    );
    let context = blocks[3]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains("stuck_order") && context.contains(&sent.id.to_string()),
        "{context}"
    );
}

#[tokio::test]
async fn slack_answers_are_classified() {
    let r = HttpReceiver::start().await;
    let n = slack(&r);
    let secret = "slack-secret-5d1e";

    r.reply_next(
        1,
        Reply::status(429)
            .header("Retry-After", "30")
            .body("rate_limited"),
    );
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), Some(Duration::from_secs(30)));
    assert_clean(&e, &[secret]);

    r.reply_next(1, Reply::status(500).body("rollup_error"));
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), None);
    assert!(e.to_string().contains("rollup_error"), "{e}");

    for (status, code) in [
        (403, "invalid_token"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
        (400, "invalid_payload"),
    ] {
        r.reply_next(1, Reply::status(status).body(code));
        let e = fails(n.as_ref(), &[firing()]).await;
        let text = permanent(&e);
        assert_eq!(text, format!("HTTP {status}: {code}"));
        assert_clean(&e, &[secret]);
    }

    // A body that is not a Slack code (a proxy page quoting the URL) stays out.
    r.reply_next(
        1,
        Reply::status(400).body(&format!("<html>no route to {}</html>", r.url(PATH))),
    );
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(permanent(&e), "HTTP 400");
    assert_clean(&e, &[secret, "T0ORDMON"]);

    n.notify(&[firing()]).await.unwrap();
    assert_eq!(r.received().len(), 8);
}

#[tokio::test]
async fn a_slack_that_is_down_is_transient() {
    let r = HttpReceiver::start().await;
    let n = slack(&r);
    r.stop().await;
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), None);
    assert_clean(&e, &["slack-secret-5d1e", "T0ORDMON"]);
    r.restart().await;
    n.notify(&[firing()]).await.unwrap();
    assert_eq!(r.wait_for(1, WAIT).await.len(), 1);
}
