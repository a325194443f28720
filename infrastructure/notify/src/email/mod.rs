//! Email through an SMTP smarthost (lettre over tokio, rustls for STARTTLS and
//! SMTPS). One SMTP session per notification, no pooled connections: alerts
//! are rare enough, and an idle pooled connection is one more thing a relay
//! drops silently.
//!
//! Failures: a 4xx reply, a connection that cannot be made or breaks, a
//! timeout, a TLS handshake that fails are transient; a 5xx reply (including a
//! refused login) is permanent, and so is a client-side refusal (the server
//! offers no STARTTLS while it is required, no usable AUTH mechanism).

mod message;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use ordermon_domain::ports::{Notification, Notifier, NotifyError};
use secrecy::ExposeSecret;

use crate::config::{EmailConfig, SmtpTls};
use crate::error::{Field, NotifyConfigError};
use crate::redact::{Scrubber, bounded};

/// A whole delivery is bounded at this many times the configured timeout
/// (which bounds each step: connect, each reply).
const WHOLE_DELIVERY: u32 = 3;

/// Delivers by email.
pub struct EmailNotifier {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    smarthost: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    scrubber: Scrubber,
}

impl EmailNotifier {
    /// Checks `config` and sets up the SMTP transport of receiver `name`
    /// (nothing is connected to yet).
    ///
    /// # Errors
    /// [`NotifyConfigError`] naming the field: a smarthost that is not
    /// `host:port`, a sender or recipient that is not an address, no
    /// recipient, a user name without a password (or the reverse), a bad
    /// `hello_name`, a zero timeout.
    pub fn new(name: &str, config: &EmailConfig) -> Result<Self, NotifyConfigError> {
        let f = Field { receiver: name };
        let (host, port) = smarthost(f, &config.smarthost, config.tls)?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| f.invalid("from", "is not an email address"))?;
        if config.to.is_empty() {
            return Err(f.invalid("to", "needs at least one address"));
        }
        let to = config
            .to
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.parse::<Mailbox>()
                    .map_err(|_| f.invalid(format!("to[{i}]"), "is not an email address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if config.timeout.is_zero() {
            return Err(f.invalid("timeout", "must be more than zero"));
        }
        let mut builder = match config.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &host,
            )),
        }
        .map_err(|e| f.client("email", e.to_string()))?
        .port(port)
        .timeout(Some(config.timeout));
        let mut scrubber = Scrubber::default();
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                scrubber.add(password.expose_secret());
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, None) => {}
            (Some(_), None) => return Err(f.invalid("password", "is needed with `username`")),
            (None, Some(_)) => return Err(f.invalid("username", "is needed with `password`")),
        }
        if let Some(hello) = &config.hello_name {
            if hello.is_empty() || hello.contains(char::is_whitespace) {
                return Err(f.invalid("hello_name", "must be a host name"));
            }
            builder = builder.hello_name(ClientId::Domain(hello.clone()));
        }
        Ok(Self {
            name: name.to_owned(),
            transport: builder.build(),
            smarthost: format!("{host}:{port}"),
            from,
            to,
            timeout: config.timeout,
            scrubber,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let mail = message::build(n, &self.from, &self.to)
            .map_err(|e| NotifyError::Permanent(format!("cannot build the email: {e}")))?;
        let whole = self.timeout.saturating_mul(WHOLE_DELIVERY);
        match tokio::time::timeout(whole, self.transport.send(mail)).await {
            Err(_) => Err(NotifyError::transient(format!(
                "SMTP delivery timed out after {}",
                ordermon_domain::duration::format(whole)
            ))),
            Ok(Err(e)) => Err(smtp_error(&e, &self.scrubber)),
            Ok(Ok(reply)) => {
                tracing::debug!(receiver = %self.name, notification = %n.id, code = %reply.code(), "smtp accepted");
                Ok(())
            }
        }
    }
}

/// Sorts an SMTP failure; the text is lettre's (kind, code, the server's
/// reply), bounded, with the password masked.
fn smtp_error(e: &lettre::transport::smtp::Error, scrubber: &Scrubber) -> NotifyError {
    let text = scrubber.scrub(&bounded(&e.to_string(), 300));
    let message = format!("SMTP {text}");
    if e.is_permanent() || e.is_client() {
        NotifyError::Permanent(message)
    } else {
        // 4xx, timeouts, network and connection errors, TLS handshakes,
        // unreadable replies: the next attempt may well succeed.
        NotifyError::transient(message)
    }
}

/// `host:port` (or `[v6]:port`, or a host alone: the port of `tls`).
fn smarthost(f: Field<'_>, text: &str, tls: SmtpTls) -> Result<(String, u16), NotifyConfigError> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| f.invalid("smarthost", "has an unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(f.invalid("smarthost", "must be `host:port`"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| f.invalid("smarthost", "has a bad port (write `host:port`)"))?,
        None => match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        },
    };
    Ok((host.to_owned(), port))
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("name", &self.name)
            .field("smarthost", &self.smarthost)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "email"
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        for n in batch {
            self.send(n).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Field<'static> {
        Field { receiver: "mail" }
    }

    #[test]
    fn smarthosts_parse_with_default_ports() {
        assert_eq!(
            smarthost(f(), "smtp.example.com:2525", SmtpTls::None).unwrap(),
            ("smtp.example.com".to_owned(), 2525)
        );
        assert_eq!(
            smarthost(f(), "smtp.example.com", SmtpTls::Starttls)
                .unwrap()
                .1,
            587
        );
        assert_eq!(
            smarthost(f(), "smtp.example.com", SmtpTls::Tls).unwrap().1,
            465
        );
        assert_eq!(
            smarthost(f(), "[::1]:25", SmtpTls::None).unwrap(),
            ("::1".to_owned(), 25)
        );
        for bad in [
            "",
            ":25",
            "smtp.example.com:x",
            "smtp.example.com:0",
            "smtp://h:25",
            "[::1",
        ] {
            let e = smarthost(f(), bad, SmtpTls::None).unwrap_err().to_string();
            assert!(e.contains("receiver `mail`: `smarthost`"), "{bad}: {e}");
        }
    }

    fn config(extra: &str) -> EmailConfig {
        toml::from_str(&format!(
            "smarthost = \"127.0.0.1:2525\"\nfrom = \"ordermon@example.com\"\nto = [\"ops@example.com\"]\ntls = \"none\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn config_is_checked_field_by_field() {
        assert!(EmailNotifier::new("mail", &config("")).is_ok());
        let bad = |c: EmailConfig| EmailNotifier::new("mail", &c).unwrap_err().to_string();
        let mut c = config("");
        c.to.clear();
        assert!(bad(c).contains("`to` needs at least one address"));
        let mut c = config("");
        c.to.push("not an address".to_owned());
        assert!(bad(c).contains("`to[1]` is not an email address"));
        let mut c = config("");
        c.from = "nobody".to_owned();
        assert!(bad(c).contains("`from` is not an email address"));
        assert!(bad(config("username = \"u\"")).contains("`password` is needed"));
        assert!(bad(config("password = \"pw-secret\"")).contains("`username` is needed"));
        assert!(bad(config("timeout = \"0s\"")).contains("`timeout`"));
        assert!(bad(config("hello_name = \"a b\"")).contains("`hello_name`"));
    }

    #[test]
    fn tls_transports_build_without_connecting() {
        for tls in ["starttls", "tls"] {
            let mut c = config("");
            c.tls = if tls == "tls" {
                SmtpTls::Tls
            } else {
                SmtpTls::Starttls
            };
            assert!(EmailNotifier::new("mail", &c).is_ok(), "{tls}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let n = EmailNotifier::new(
            "mail",
            &config("username = \"u\"\npassword = \"pw-secret-1\""),
        )
        .unwrap();
        let debug = format!("{n:?}");
        assert!(debug.contains("127.0.0.1:2525"), "{debug}");
        assert!(!debug.contains("pw-secret-1"), "{debug}");
    }
}
