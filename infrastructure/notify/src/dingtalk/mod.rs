//! DingTalk custom robots: signed markdown messages, several notifications
//! merged into one, and never more than the robot's 20 messages a minute.
//!
//! DingTalk answers HTTP 200 with `{"errcode":0,"errmsg":"ok"}` on success and
//! a non-zero `errcode` otherwise. How codes are treated:
//!
//! | errcode | meaning | outcome |
//! | --- | --- | --- |
//! | `0` | accepted | delivered |
//! | `130101` | sending too fast | transient, retry after 60 s (the robot's window) |
//! | `-1` | system busy | transient |
//! | `310000` | signature, keyword or IP check failed | permanent |
//! | any other | token invalid or revoked (`300001`, `300005`…), robot removed, message refused | permanent: a request DingTalk judged wrong stays wrong |
//!
//! A 200 whose body is not DingTalk's JSON is permanent too: the URL points at
//! something that is not a DingTalk robot. Non-200 statuses follow the usual
//! HTTP mapping. `errmsg` goes into the error text, bounded and with the
//! token and secret masked.

mod limiter;
mod message;
mod sign;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordermon_domain::duration;
use ordermon_domain::ports::{Notification, Notifier, NotifyError};
use reqwest::Url;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::DingTalkConfig;
use crate::error::{Field, NotifyConfigError};
use crate::http;
use crate::redact::{Scrubber, bounded};
use limiter::SlidingWindow;

/// How long DingTalk's `130101` (sending too fast) asks us to wait: its
/// window is one minute.
const TOO_FAST_WAIT: Duration = Duration::from_secs(60);
/// The most notifications one message may merge.
const MAX_BATCH: usize = 50;

/// Delivers to a DingTalk custom robot.
pub struct DingTalkNotifier {
    name: String,
    client: reqwest::Client,
    url: Url,
    secret: Option<SecretString>,
    at_mobiles: Vec<String>,
    at_all: bool,
    max_batch: usize,
    rate_limit: u32,
    rate_window: Duration,
    limiter: SlidingWindow,
    scrubber: Scrubber,
}

impl DingTalkNotifier {
    /// Checks `config` and sets up the client of receiver `name`.
    ///
    /// # Errors
    /// [`NotifyConfigError`] naming the field: a URL that is not http(s) or
    /// has no `access_token`, an empty secret, a zero rate limit or window, a
    /// batch size outside 1–50, a zero timeout.
    pub fn new(name: &str, config: &DingTalkConfig) -> Result<Self, NotifyConfigError> {
        let f = Field { receiver: name };
        let url = http::check_url(f, "webhook_url", config.webhook_url.expose_secret())?;
        let token = url
            .query_pairs()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if token.is_empty() {
            return Err(f.invalid("webhook_url", "has no `access_token` query parameter"));
        }
        if config
            .secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().trim().is_empty())
        {
            return Err(f.invalid("secret", "is empty (leave it out for an unsigned robot)"));
        }
        if config.rate_limit == 0 {
            return Err(f.invalid("rate_limit", "must be at least 1"));
        }
        if config.rate_window.is_zero() {
            return Err(f.invalid("rate_window", "must be more than zero"));
        }
        if !(1..=MAX_BATCH).contains(&config.max_batch) {
            return Err(f.invalid("max_batch", format!("must be between 1 and {MAX_BATCH}")));
        }
        if config.at_mobiles.iter().any(|m| m.trim().is_empty()) {
            return Err(f.invalid("at_mobiles", "holds an empty number"));
        }
        http::check_timeout(f, config.timeout)?;
        let mut scrubber = Scrubber::default();
        scrubber.add(config.webhook_url.expose_secret());
        scrubber.add(&token);
        if let Some(s) = &config.secret {
            scrubber.add(s.expose_secret());
        }
        let limit = usize::try_from(config.rate_limit).unwrap_or(usize::MAX);
        Ok(Self {
            name: name.to_owned(),
            client: http::client(f, "dingtalk", config.timeout)?,
            url,
            secret: config.secret.clone(),
            at_mobiles: config.at_mobiles.clone(),
            at_all: config.at_all,
            max_batch: config.max_batch,
            rate_limit: config.rate_limit,
            rate_window: config.rate_window,
            limiter: SlidingWindow::new(limit, config.rate_window),
            scrubber,
        })
    }

    /// Reads DingTalk's verdict from a 2xx answer.
    fn verdict(&self, body: &[u8]) -> Result<(), NotifyError> {
        #[derive(Deserialize)]
        struct Verdict {
            errcode: i64,
            #[serde(default)]
            errmsg: String,
        }
        let Ok(v) = serde_json::from_slice::<Verdict>(body) else {
            return Err(NotifyError::Permanent(
                "the answer is not DingTalk's (no errcode): is webhook_url a DingTalk robot?"
                    .to_owned(),
            ));
        };
        let errmsg = self.scrubber.scrub(&bounded(v.errmsg.trim(), 200));
        match v.errcode {
            0 => Ok(()),
            130_101 => Err(NotifyError::Transient {
                message: format!("DingTalk: sending too fast (130101): {errmsg}"),
                retry_after: Some(TOO_FAST_WAIT),
            }),
            -1 => Err(NotifyError::transient(format!(
                "DingTalk: system busy (-1): {errmsg}"
            ))),
            310_000 => Err(NotifyError::Permanent(format!(
                "DingTalk: signature, keyword or IP check failed (310000): {errmsg}"
            ))),
            code => Err(NotifyError::Permanent(format!(
                "DingTalk: error {code}: {errmsg}"
            ))),
        }
    }
}

impl fmt::Debug for DingTalkNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DingTalkNotifier")
            .field("name", &self.name)
            .field("signed", &self.secret.is_some())
            .field("at_mobiles", &self.at_mobiles.len())
            .field("at_all", &self.at_all)
            .field("max_batch", &self.max_batch)
            .field("rate_limit", &self.rate_limit)
            .field("rate_window", &duration::format(self.rate_window))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for DingTalkNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "dingtalk"
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        if batch.is_empty() {
            return Ok(());
        }
        let message = message::message(batch, &self.at_mobiles, self.at_all);
        let body = serde_json::to_vec(&message)
            .map_err(|e| NotifyError::Permanent(format!("cannot encode the message: {e}")))?;
        let slot = self
            .limiter
            .try_acquire(tokio::time::Instant::now())
            .map_err(|wait| NotifyError::Transient {
                message: format!(
                    "DingTalk robot limit of {} messages per {} reached: not sent",
                    self.rate_limit,
                    duration::format(self.rate_window)
                ),
                retry_after: Some(wait),
            })?;
        // Signed at the last moment: DingTalk refuses stale timestamps.
        let url = match &self.secret {
            Some(s) => {
                sign::signed_url(&self.url, s.expose_secret(), Utc::now().timestamp_millis())
            }
            None => self.url.clone(),
        };
        let answer =
            match http::post_json(&self.client, &url, HeaderMap::new(), body, &self.scrubber).await
            {
                Ok(answer) => answer,
                Err(unanswered) => {
                    if unanswered.never_sent {
                        self.limiter.release(slot);
                    }
                    return Err(unanswered.error);
                }
            };
        tracing::debug!(
            receiver = %self.name,
            notifications = batch.len(),
            status = answer.status.as_u16(),
            "dingtalk answered"
        );
        answer.check_status(None)?;
        self.verdict(&answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> DingTalkConfig {
        toml::from_str(&format!(
            "webhook_url = \"https://oapi.dingtalk.com/robot/send?access_token=tok-abcdef\"\n\
             secret = \"SECsecret-123\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn verdicts_map_errcodes() {
        let n = DingTalkNotifier::new("ding", &config("")).unwrap();
        assert_eq!(n.max_batch(), 10);
        assert_eq!(n.verdict(br#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            n.verdict(br#"{"errcode":130101,"errmsg":"send too fast"}"#),
            Err(NotifyError::Transient {
                message: "DingTalk: sending too fast (130101): send too fast".to_owned(),
                retry_after: Some(TOO_FAST_WAIT),
            })
        );
        assert!(matches!(
            n.verdict(br#"{"errcode":-1,"errmsg":"busy"}"#),
            Err(NotifyError::Transient {
                retry_after: None,
                ..
            })
        ));
        let e = n
            .verdict(br#"{"errcode":310000,"errmsg":"sign not match for tok-abcdef"}"#)
            .unwrap_err();
        assert!(
            matches!(&e, NotifyError::Permanent(m) if m.contains("310000")),
            "{e}"
        );
        assert!(!e.to_string().contains("tok-abcdef"), "{e}");
        assert!(matches!(
            n.verdict(br#"{"errcode":300001,"errmsg":"token is not exist"}"#),
            Err(NotifyError::Permanent(_))
        ));
        assert!(matches!(
            n.verdict(b"<html>"),
            Err(NotifyError::Permanent(_))
        ));
    }

    #[test]
    fn config_is_checked_field_by_field() {
        let bad = |extra: &str, url: &str| {
            let mut c = config(extra);
            if !url.is_empty() {
                c.webhook_url = SecretString::from(url);
            }
            DingTalkNotifier::new("ding", &c).unwrap_err().to_string()
        };
        let e = bad("", "https://oapi.dingtalk.com/robot/send");
        assert!(e.contains("`webhook_url` has no `access_token`"), "{e}");
        assert!(bad("rate_limit = 0", "").contains("`rate_limit`"));
        assert!(bad("rate_window = \"0s\"", "").contains("`rate_window`"));
        assert!(bad("max_batch = 0", "").contains("`max_batch`"));
        assert!(bad("max_batch = 51", "").contains("`max_batch`"));
        assert!(bad("timeout = \"0s\"", "").contains("`timeout`"));
        let mut c = config("");
        c.secret = Some(SecretString::from(" "));
        assert!(
            DingTalkNotifier::new("ding", &c)
                .unwrap_err()
                .to_string()
                .contains("`secret`")
        );
    }

    #[test]
    fn debug_hides_the_url_and_secret() {
        let n = DingTalkNotifier::new("ding", &config("")).unwrap();
        let debug = format!("{n:?}");
        assert!(debug.contains("signed: true"), "{debug}");
        assert!(
            !debug.contains("tok-abcdef") && !debug.contains("secret-123"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn a_full_window_refuses_without_sending() {
        // The URL points nowhere reachable: a request would fail to connect,
        // so a `Transient` with the window's wait proves nothing was sent.
        let mut c = config("rate_limit = 1\nrate_window = \"1m\"");
        c.webhook_url = SecretString::from("http://127.0.0.1:9/robot/send?access_token=tok-abcdef");
        let n = DingTalkNotifier::new("ding", &c).unwrap();
        // The one slot is taken by hand, as a delivered message would.
        let taken = n.limiter.try_acquire(tokio::time::Instant::now());
        assert!(taken.is_ok());
        let batch = [crate::render::fixtures::notification(vec![])];
        match n.notify(&batch).await {
            Err(NotifyError::Transient {
                message,
                retry_after: Some(wait),
            }) => {
                assert!(message.contains("limit of 1 messages per 1m"), "{message}");
                assert!(
                    wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
                    "{wait:?}"
                );
            }
            other => panic!("expected the local limit, got {other:?}"),
        }
    }
}
