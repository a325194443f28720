//! Real receivers for notifications, on 127.0.0.1 port 0, that record what
//! they are sent: an HTTP server for webhooks, Slack and DingTalk
//! ([`HttpReceiver`]) and an SMTP server for email ([`SmtpSink`]). Both can be
//! scripted to fail the way real receivers do (5xx, 429 with `Retry-After`,
//! going down and coming back on the same port; SMTP 421/451/554), so the
//! notifiers and the alerting pipeline are tested against the wire, not
//! against mocks of their own client code.
//!
//! The DingTalk mode checks signatures itself, independently of the
//! notifier's code, as the real robot would: a wrong signature is answered
//! `310000`, a 21st message within a minute `130101`.

mod http;
mod smtp;

pub use http::{HttpReceiver, Recorded, Reply};
pub use smtp::{SmtpMessage, SmtpSink, SmtpStage};
