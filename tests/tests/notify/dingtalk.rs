//! DingTalk robots: a signed markdown message the robot double accepts,
//! batches merged into one message, the local 20-a-minute window, and the
//! robot's own `130101`/`310000` verdicts.

use std::time::{Duration, Instant};

use ordermon_domain::alert::AlertState;
use ordermon_tests::receivers::{HttpReceiver, Reply};
use serde_json::json;

use super::*;

const TOKEN: &str = "ding-token-0c7b3e";
const SECRET: &str = "SECding-secret-91fa2d";

fn dingtalk(r: &HttpReceiver, extra: Value) -> Arc<dyn Notifier> {
    let mut config = json!({
        "kind": "dingtalk",
        "webhook_url": r.url(&format!("/robot/send?access_token={TOKEN}")),
        "secret": SECRET,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    build("ops-ding", config)
}

#[tokio::test]
async fn sends_a_signed_markdown_message_the_robot_accepts() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({"at_mobiles": ["13800000000"]}));
    assert_eq!((n.kind(), n.max_batch()), ("dingtalk", 10));
    let sent = firing();
    let before = Utc::now().timestamp_millis();
    n.notify(std::slice::from_ref(&sent)).await.unwrap();

    let got = r.wait_for(1, WAIT).await;
    let req = &got[0];
    // The double checked the signature itself, independently of the notifier.
    assert_eq!(req.answer, r#"{"errcode":0,"errmsg":"ok"}"#);
    assert_eq!(req.path, "/robot/send");
    assert_eq!(req.param("access_token"), Some(TOKEN));
    let ts: i64 = req.param("timestamp").unwrap().parse().unwrap();
    assert!(
        (before..=Utc::now().timestamp_millis()).contains(&ts),
        "{ts}"
    );
    assert!(
        req.param("sign").is_some_and(|s| s.ends_with('=')),
        "{:?}",
        req.query
    );

    let body = &req.json;
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], sent.title());
    let text = body["markdown"]["text"].as_str().unwrap();
    for part in [
        format!("### {}", sent.title()),
        "**CRITICAL** firing: order stuck for alice".to_owned(),
        "no ack from the venue after 30s".to_owned(),
        "user_id=alice".to_owned(),
        sent.id.to_string(),
        "@13800000000".to_owned(),
    ] {
        assert!(text.contains(&part), "`{part}` missing from {text}");
    }
    assert_eq!(
        body["at"],
        json!({"atMobiles": ["13800000000"], "isAtAll": false})
    );
}

#[tokio::test]
async fn an_unsigned_robot_gets_no_signature() {
    let r = HttpReceiver::dingtalk(None).await;
    let n = build(
        "ops-ding",
        json!({"kind": "dingtalk", "webhook_url": r.url(&format!("/robot/send?access_token={TOKEN}")), "at_all": true}),
    );
    n.notify(&[firing()]).await.unwrap();
    let req = &r.wait_for(1, WAIT).await[0];
    assert_eq!(req.param("sign"), None);
    assert_eq!(req.param("timestamp"), None);
    assert_eq!(req.json["at"]["isAtAll"], true);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_for_good_without_leaking() {
    let r = HttpReceiver::dingtalk(Some("SECthe-right-one")).await;
    let n = dingtalk(&r, json!({}));
    let e = fails(n.as_ref(), &[firing()]).await;
    let text = permanent(&e);
    assert!(text.contains("310000"), "{text}");
    assert_clean(&e, &[TOKEN, SECRET, "ding-secret-91fa2d"]);
    assert!(r.received()[0].answer.contains("310000"));
}

#[tokio::test]
async fn a_batch_is_merged_into_one_message() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({}));
    let batch = [
        firing(),
        notification(&[("bob", AlertState::Firing)]),
        notification(&[("carol", AlertState::Resolved)]),
    ];
    n.notify(&batch).await.unwrap();
    let got = r.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "three notifications, one message");
    let md = &got[0].json["markdown"];
    assert_eq!(
        md["title"],
        format!("3 notifications: {}", batch[0].title())
    );
    let text = md["text"].as_str().unwrap();
    for n in &batch {
        assert!(
            text.contains(&n.id.to_string()),
            "{} missing from {text}",
            n.id
        );
    }
    assert_eq!(text.matches("### ").count(), 3, "{text}");
    assert!(text.contains("order stuck for carol"), "{text}");
}

#[tokio::test]
async fn the_local_window_is_never_exceeded() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({"rate_limit": 3, "rate_window": "1m"}));
    for _ in 0..3 {
        n.notify(&[firing()]).await.unwrap();
    }
    let e = fails(n.as_ref(), &[firing()]).await;
    let wait = transient(&e).expect("the window says when a slot frees");
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert!(e.to_string().contains("limit of 3 messages per 1m"), "{e}");
    // The refused one never left: the robot saw exactly three.
    assert_eq!(r.received().len(), 3);
}

#[tokio::test]
async fn the_window_frees_as_it_slides() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({"rate_limit": 2, "rate_window": "400ms"}));
    let started = Instant::now();
    n.notify(&[firing()]).await.unwrap();
    n.notify(&[firing()]).await.unwrap();
    let e = fails(n.as_ref(), &[firing()]).await;
    let wait = transient(&e).unwrap();
    assert!(wait <= Duration::from_millis(400), "{wait:?}");
    tokio::time::sleep(wait).await;
    n.notify(&[firing()]).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.received().len(), 3);
}

#[tokio::test]
async fn the_robots_own_limit_is_transient_for_a_minute() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    // A local limit above DingTalk's, as when several instances share a robot.
    let n = dingtalk(&r, json!({"rate_limit": 100}));
    for _ in 0..20 {
        n.notify(&[firing()]).await.unwrap();
    }
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), Some(Duration::from_secs(60)));
    assert!(e.to_string().contains("130101"), "{e}");
    assert_clean(&e, &[TOKEN, SECRET]);
    let got = r.received();
    assert_eq!(got.len(), 21);
    assert!(got[20].answer.contains("130101"));
}

#[tokio::test]
async fn http_failures_and_odd_answers() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({}));
    r.reply_next(1, Reply::status(502));
    assert_eq!(transient(&fails(n.as_ref(), &[firing()]).await), None);
    r.reply_next(1, Reply::status(429).header("Retry-After", "5"));
    assert_eq!(
        transient(&fails(n.as_ref(), &[firing()]).await),
        Some(Duration::from_secs(5))
    );
    r.reply_next(
        1,
        Reply::json(&json!({"errcode": 300001, "errmsg": format!("token {TOKEN} is not exist")})),
    );
    let e = fails(n.as_ref(), &[firing()]).await;
    assert!(permanent(&e).contains("300001"), "{e}");
    assert_clean(&e, &[TOKEN]);
    r.reply_next(1, Reply::ok("<html>captive portal</html>"));
    permanent(&fails(n.as_ref(), &[firing()]).await);
    n.notify(&[firing()]).await.unwrap();
}

#[tokio::test]
async fn a_robot_that_is_down_costs_no_slot() {
    let r = HttpReceiver::dingtalk(Some(SECRET)).await;
    let n = dingtalk(&r, json!({"rate_limit": 1, "rate_window": "1m"}));
    r.stop().await;
    let e = fails(n.as_ref(), &[firing()]).await;
    assert_eq!(transient(&e), None);
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert_clean(&e, &[TOKEN, SECRET]);
    r.restart().await;
    // The failed attempt gave its slot back: the single slot is free.
    n.notify(&[firing()]).await.unwrap();
    assert_eq!(r.wait_for(1, WAIT).await.len(), 1);
}
