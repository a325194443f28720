//! Email through a real SMTP session: envelope, headers and both parts as
//! received, and SMTP replies classified (4xx and connection failures
//! transient, 5xx permanent).

use ordermon_domain::alert::AlertState;
use ordermon_tests::receivers::{SmtpSink, SmtpStage};
use serde_json::json;

use super::*;

const PASSWORD: &str = "smtp-pw-3b8d0f";

fn email(smarthost: &str) -> Arc<dyn Notifier> {
    build(
        "ops-mail",
        json!({
            "kind": "email",
            "smarthost": smarthost,
            "from": "Ordermon <ordermon@example.com>",
            "to": ["ops@example.com", "risk@example.com"],
            "username": "ordermon",
            "password": PASSWORD,
            "tls": "none",
            "hello_name": "ordermon.test",
            "timeout": "5s",
        }),
    )
}

#[tokio::test]
async fn delivers_multipart_mail_with_ids_and_envelope() {
    let sink = SmtpSink::start().await;
    let n = email(&sink.smarthost());
    assert_eq!((n.kind(), n.max_batch()), ("email", 1));
    let sent = notification(&[("alice", AlertState::Firing), ("bob", AlertState::Resolved)]);
    n.notify(std::slice::from_ref(&sent)).await.unwrap();

    let mails = sink.wait_for(1, WAIT).await;
    let m = &mails[0];
    assert_eq!(m.helo, "ordermon.test");
    assert_eq!(m.auth, Some(("ordermon".to_owned(), PASSWORD.to_owned())));
    assert_eq!(m.mail_from, "ordermon@example.com");
    assert_eq!(m.rcpt_to, ["ops@example.com", "risk@example.com"]);
    assert_eq!(m.subject().as_deref(), Some(sent.title().as_str()));
    assert_eq!(m.message_id(), Some(format!("{}@example.com", sent.id)));
    assert_eq!(
        m.header("X-Ordermon-Notification-Id"),
        Some(sent.id.to_string())
    );
    assert_eq!(m.content_type().as_deref(), Some("multipart/alternative"));

    let text = m.text().expect("a text/plain part");
    for part in [
        "[CRITICAL] firing: order stuck for alice",
        "no ack from the venue after 30s",
        "user_id=alice, venue=SIM",
        "[CRITICAL] resolved: order stuck for bob",
    ] {
        assert!(text.contains(part), "`{part}` missing from {text}");
    }
    assert!(text.contains(&sent.id.to_string()), "{text}");
    let html = m.html().expect("a text/html part");
    assert!(
        html.contains(&format!("<h2>{}</h2>", sent.title())),
        "{html}"
    );
    assert!(
        html.contains("<strong>order stuck for alice</strong>"),
        "{html}"
    );
    assert!(!m.data.contains(PASSWORD));
}

#[tokio::test]
async fn smtp_replies_are_classified() {
    let sink = SmtpSink::start().await;
    let n = email(&sink.smarthost());

    sink.refuse_next(1, SmtpStage::MailFrom, 451);
    let e = fails(n.as_ref(), &[firing()]).await;
    transient(&e);
    assert!(e.to_string().contains("451"), "{e}");
    assert_clean(&e, &[PASSWORD]);

    sink.refuse_next(1, SmtpStage::Greeting, 421);
    let e = fails(n.as_ref(), &[firing()]).await;
    transient(&e);
    assert!(e.to_string().contains("421"), "{e}");

    sink.refuse_next(1, SmtpStage::RcptTo, 452);
    transient(&fails(n.as_ref(), &[firing()]).await);

    sink.refuse_next(1, SmtpStage::Data, 554);
    let e = fails(n.as_ref(), &[firing()]).await;
    assert!(permanent(&e).contains("554"), "{e}");

    sink.refuse_always(SmtpStage::MailFrom, 554);
    for _ in 0..2 {
        let e = fails(n.as_ref(), &[firing()]).await;
        assert!(permanent(&e).contains("554"), "{e}");
        assert_clean(&e, &[PASSWORD]);
    }
    assert!(sink.messages().is_empty());

    sink.accept_all();
    n.notify(&[firing()]).await.unwrap();
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
    assert_eq!(sink.sessions(), 7);
}

#[tokio::test]
async fn a_smarthost_that_is_down_is_transient() {
    let n = email(&format!("127.0.0.1:{}", closed_port()));
    let e = fails(n.as_ref(), &[firing()]).await;
    transient(&e);
    assert_clean(&e, &[PASSWORD]);
}

#[tokio::test]
async fn a_mail_with_dots_and_long_lines_arrives_intact() {
    let sink = SmtpSink::start().await;
    let n = email(&sink.smarthost());
    let mut sent = firing();
    let description = format!(".leading dot\n..two dots\n{}", "x".repeat(500));
    sent.alerts[0]
        .annotations
        .insert("description".to_owned(), description);
    n.notify(std::slice::from_ref(&sent)).await.unwrap();
    let mails = sink.wait_for(1, WAIT).await;
    let text = mails[0].text().unwrap();
    assert!(text.contains(".leading dot"), "{text}");
    assert!(text.contains("..two dots"), "{text}");
    assert!(text.contains(&"x".repeat(500)), "{text}");
}
