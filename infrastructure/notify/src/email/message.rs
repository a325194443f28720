//! The email for one notification: Subject = the notification's title, a
//! `Message-ID` made from its id (so a mail that is retried is the same mail
//! to threading and deduplicating clients), the `X-Ordermon-Notification-Id`
//! header, and multipart/alternative plain text and HTML with the same
//! content.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use ordermon_domain::alert::Alert;
use ordermon_domain::ports::Notification;

use crate::render::{self, html_escape};

const ID_HEADER: HeaderName = HeaderName::new_from_ascii_str(crate::webhook::ID_HEADER);

/// The `Message-ID` of notification `n` sent from `domain`.
pub(crate) fn message_id(n: &Notification, domain: &str) -> String {
    format!("<{}@{domain}>", n.id)
}

/// The email for `n`.
pub(crate) fn build(
    n: &Notification,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<Message, lettre::error::Error> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(n.title())
        .message_id(Some(message_id(n, from.email.domain())))
        .raw_header(HeaderValue::new(ID_HEADER, n.id.to_string()));
    for t in to {
        builder = builder.to(t.clone());
    }
    builder.multipart(MultiPart::alternative_plain_html(text(n), html(n)))
}

/// The plain-text part.
pub(crate) fn text(n: &Notification) -> String {
    let mut out = format!("{}\n\n", n.title());
    for a in &n.alerts {
        out.push_str(&format!(
            "[{}] {}: {}\n",
            render::severity(a),
            render::state(a),
            render::headline(a)
        ));
        if let Some(d) = render::description(a) {
            out.push_str(&format!("    {d}\n"));
        }
        out.push_str(&format!("    {}\n", render::timing(a)));
        let labels = labels(a);
        if !labels.is_empty() {
            out.push_str(&format!("    {labels}\n"));
        }
        out.push('\n');
    }
    if n.truncated_alerts > 0 {
        out.push_str(&format!("…and {} more alerts\n\n", n.truncated_alerts));
    }
    out.push_str(&format!(
        "Group: {}\nReceiver: {}\nNotification: {}\n",
        n.group_key, n.receiver, n.id
    ));
    out
}

/// The HTML part: the same content as the text part.
pub(crate) fn html(n: &Notification) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>{}</h2>\n<ul>\n",
        html_escape(&n.title())
    );
    for a in &n.alerts {
        let color = match (a.state, a.severity) {
            (ordermon_domain::alert::AlertState::Resolved, _) => "#2e7d32",
            (_, ordermon_domain::alert::Severity::Critical) => "#c62828",
            (_, ordermon_domain::alert::Severity::Warning) => "#ef6c00",
            (_, ordermon_domain::alert::Severity::Info) => "#1565c0",
        };
        out.push_str(&format!(
            "<li><strong style=\"color:{color}\">{}</strong> {}: <strong>{}</strong>",
            render::severity(a),
            render::state(a),
            html_escape(render::headline(a))
        ));
        if let Some(d) = render::description(a) {
            out.push_str(&format!("<br>{}", html_escape(d)));
        }
        out.push_str(&format!("<br><em>{}</em>", html_escape(&render::timing(a))));
        let labels = labels(a);
        if !labels.is_empty() {
            out.push_str(&format!("<br><code>{}</code>", html_escape(&labels)));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    if n.truncated_alerts > 0 {
        out.push_str(&format!("<p>…and {} more alerts</p>\n", n.truncated_alerts));
    }
    out.push_str(&format!(
        "<p style=\"color:#666\">Group: {}<br>Receiver: {}<br>Notification: {}</p>\n</body></html>\n",
        html_escape(&n.group_key),
        html_escape(&n.receiver),
        n.id
    ));
    out
}

fn labels(a: &Alert) -> String {
    render::key_labels(a)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use ordermon_domain::alert::AlertState;

    use super::*;
    use crate::render::fixtures::{alert, notification};

    #[test]
    fn mail_has_subject_ids_and_both_parts() {
        let mut n = notification(vec![alert("alice", AlertState::Firing)]);
        n.alerts[0]
            .annotations
            .insert("description".to_owned(), "<script>x</script>".to_owned());
        let from: Mailbox = "Ordermon <ordermon@example.com>".parse().unwrap();
        let to: Mailbox = "ops@example.com".parse().unwrap();
        let mail = build(&n, &from, &[to]).unwrap();
        let raw = String::from_utf8(mail.formatted()).unwrap();
        assert!(
            raw.contains(&format!("Subject: {}\r\n", n.title())),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("Message-ID: <{}@example.com>\r\n", n.id)),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("X-Ordermon-Notification-Id: {}\r\n", n.id)),
            "{raw}"
        );
        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        let html = html(&n);
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        let text = text(&n);
        assert!(
            text.contains("[CRITICAL] firing: order stuck for alice"),
            "{text}"
        );
        assert!(text.contains("user_id=alice, venue=SIM"), "{text}");
        assert!(text.contains(&n.id.to_string()), "{text}");
    }
}
