//! What the three HTTP channels share: checking their URLs, one client per
//! receiver, posting JSON, reading a bounded answer, and sorting failures into
//! transient and permanent ones without ever putting the URL in the text.
//!
//! Status mapping: 2xx delivered; 408, 429 and 5xx transient (with the
//! receiver's `Retry-After` when it sent one); every other status permanent
//! (other 4xx, and 3xx: redirects are not followed, as a redirected webhook is
//! a configuration to fix). Connect errors and timeouts are transient.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::ports::NotifyError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::error::{Field, NotifyConfigError};
use crate::redact::Scrubber;

/// The most of an answer read: enough for any error text, and a receiver
/// cannot make us buffer an endless body.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// The longest `Retry-After` honoured; beyond it the caller's own backoff is
/// a better guide than a receiver asking for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Parses an `http`/`https` URL with a host. The reason never holds the URL.
pub(crate) fn check_url(f: Field<'_>, field: &str, text: &str) -> Result<Url, NotifyConfigError> {
    let url =
        Url::parse(text.trim()).map_err(|e| f.invalid(field, format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(f.invalid(
            field,
            format!("must be an http or https URL, not `{}`", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(f.invalid(field, "has no host"));
    }
    Ok(url)
}

/// Refuses a zero timeout.
pub(crate) fn check_timeout(f: Field<'_>, timeout: Duration) -> Result<(), NotifyConfigError> {
    if timeout.is_zero() {
        return Err(f.invalid("timeout", "must be more than zero"));
    }
    Ok(())
}

/// The client of one receiver: its timeout bounds a whole request; no
/// redirects (a redirect would send the payload, and maybe the credential in
/// the URL, somewhere nobody configured).
pub(crate) fn client(
    f: Field<'_>,
    kind: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, NotifyConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ordermon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| f.client(kind, e.without_url().to_string()))
}

/// What a receiver answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    /// At most [`MAX_ANSWER`] bytes of the body.
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy), cut to `max` bytes, for error messages.
    pub(crate) fn text(&self, max: usize) -> String {
        crate::redact::bounded(String::from_utf8_lossy(&self.body).trim(), max)
    }

    /// The usual status mapping; `detail` (already safe to show) is added to
    /// the error text.
    pub(crate) fn check_status(&self, detail: Option<&str>) -> Result<(), NotifyError> {
        let status = self.status;
        if status.is_success() {
            return Ok(());
        }
        let message = match detail {
            Some(d) if !d.is_empty() => format!("HTTP {}: {d}", status.as_u16()),
            _ => format!("HTTP {}", status.as_u16()),
        };
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Err(NotifyError::Transient {
                message,
                retry_after: self.retry_after,
            })
        } else {
            Err(NotifyError::Permanent(message))
        }
    }
}

/// A request that got no answer.
#[derive(Debug)]
pub(crate) struct Unanswered {
    /// The error to report.
    pub(crate) error: NotifyError,
    /// True when no connection was made, so nothing reached the receiver
    /// (it does not count against a rate limit).
    pub(crate) never_sent: bool,
}

impl From<Unanswered> for NotifyError {
    fn from(value: Unanswered) -> Self {
        value.error
    }
}

/// Posts `body` as JSON and reads the answer (bounded). Errors are transport
/// failures only; the caller judges the status.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
    scrubber: &Scrubber,
) -> Result<Answer, Unanswered> {
    let mut response = client
        .post(url.clone())
        .headers(headers)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(e, scrubber))?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), Utc::now());
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER.saturating_sub(body.len());
                body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                if body.len() >= MAX_ANSWER {
                    break;
                }
            }
            Ok(None) => break,
            // The status is in; a body cut short only loses detail, except
            // for a 2xx whose body carries the verdict (DingTalk): the caller
            // sees an empty or partial body and decides.
            Err(e) => {
                tracing::debug!(error = %scrubber.scrub(&error_chain(&e.without_url())), "answer body cut short");
                break;
            }
        }
    }
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// A request that got no answer: transient (the receiver may be down, slow
/// or restarting), except a request that could not be built.
fn transport_error(e: reqwest::Error, scrubber: &Scrubber) -> Unanswered {
    let never_sent = e.is_connect();
    // `without_url` drops the URL reqwest keeps in its errors; the scrubber
    // catches a secret that a lower layer might still have quoted.
    let chain = |e: reqwest::Error| scrubber.scrub(&error_chain(&e.without_url()));
    let error = if e.is_builder() {
        NotifyError::Permanent(format!("cannot build the request: {}", chain(e)))
    } else if e.is_timeout() {
        NotifyError::transient(format!("timed out: {}", chain(e)))
    } else if never_sent {
        NotifyError::transient(format!("cannot connect: {}", chain(e)))
    } else {
        NotifyError::transient(format!("request failed: {}", chain(e)))
    };
    Unanswered { error, never_sent }
}

/// An error and its causes, `a: b: c`, skipping causes already quoted by
/// their parent.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The `Retry-After` header: delay-seconds or an HTTP date, capped.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Field<'static> {
        Field { receiver: "ops" }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(check_url(f(), "url", "https://hooks.example/x?token=1").is_ok());
        let e = check_url(f(), "url", "ftp://hooks.example/x?token=secret-1").unwrap_err();
        assert!(
            e.to_string()
                .contains("receiver `ops`: `url` must be an http"),
            "{e}"
        );
        assert!(!e.to_string().contains("secret-1"));
        let e = check_url(f(), "url", "hooks.example/x?token=secret-1").unwrap_err();
        assert!(e.to_string().contains("is not a URL"), "{e}");
        assert!(!e.to_string().contains("secret-1"));
        assert!(check_timeout(f(), Duration::ZERO).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Utc::now();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        let later = (now + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&h, now).unwrap();
        assert!(
            (Duration::from_secs(29)..=Duration::from_secs(30)).contains(&wait),
            "{wait:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn statuses_map_to_transient_or_permanent() {
        let answer = |code: u16| Answer {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: Some(Duration::from_secs(3)),
            body: Vec::new(),
        };
        assert_eq!(answer(204).check_status(None), Ok(()));
        for code in [408, 429, 500, 502, 503] {
            assert_eq!(
                answer(code).check_status(None),
                Err(NotifyError::Transient {
                    message: format!("HTTP {code}"),
                    retry_after: Some(Duration::from_secs(3)),
                })
            );
        }
        for code in [301, 400, 401, 403, 404, 410] {
            assert!(matches!(
                answer(code).check_status(Some("nope")),
                Err(NotifyError::Permanent(m)) if m == format!("HTTP {code}: nope")
            ));
        }
    }
}
