//! One HTTP request for `monitor-server status` and smoke tests, sent with
//! reqwest (plain HTTP, or HTTPS trusting the bundled web PKI roots), the body read
//! up to a bound.

use std::time::Duration;

/// Largest response read (the status report is a few hundred bytes).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Only `http://` and `https://` URLs with a host are supported, and the
    /// method must be a valid HTTP method.
    #[error("unsupported request `{0}`: expected a method and an http(s)://host[:port]/path URL")]
    Url(String),
    /// Connecting, sending or reading failed.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// No answer in time.
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The body is larger than this client reads.
    #[error("the answer of {0} is larger than {MAX_RESPONSE} bytes")]
    TooLarge(String),
}

/// GETs `url`, with a bearer token when given, within `timeout`.
///
/// # Errors
/// See [`ClientError`].
pub async fn get(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    send("GET", url, bearer, None, timeout).await
}

/// Sends `method` to `url` with an optional bearer token and JSON body, within `timeout`.
///
/// # Errors
/// See [`ClientError`].
pub async fn send(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    json: Option<&str>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let bad = || ClientError::Url(format!("{method} {url}"));
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| bad())?;
    let failed = |source: reqwest::Error| {
        if source.is_timeout() {
            ClientError::Timeout(url.to_owned())
        } else {
            ClientError::Request {
                url: url.to_owned(),
                source: source.without_url(),
            }
        }
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(failed)?;
    let mut request = client
        .request(method, parsed)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = json {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
    }
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(ClientError::TooLarge(url.to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn unsupported_urls_and_methods_are_refused_before_any_connection() {
        for (method, url) in [
            ("GET", "ftp://x/status"),
            ("GET", "http://"),
            ("GET", "not a url"),
            ("GE T", "http://127.0.0.1:1/status"),
        ] {
            let err = send(method, url, None, None, Duration::from_secs(1))
                .await
                .unwrap_err();
            assert!(matches!(err, ClientError::Url(_)), "{method} {url}: {err}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_request_error_naming_the_url() {
        // Bind and drop a listener: its port is (for now) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/status");
        let err = get(&url, Some("secret-token"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Request { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&url), "{text}");
        assert!(!text.contains("secret-token"), "{text}");
    }
}
