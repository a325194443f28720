//! Requests for a user another instance owns (`cluster.enabled`), forwarded
//! to that instance.
//!
//! A user's commands run only on the instance that owns the user; another
//! instance refuses them before anything runs (503 `owned_elsewhere`, naming
//! the owner). With this layer, an instance that receives such a refusal for a
//! request sends the same request (method, path, query, headers, body) to the
//! owner's published address and answers with the owner's answer, marked
//! `X-Ordermon-Served-By`. A forwarded request carries
//! `X-Ordermon-Forwarded-By` and is never forwarded again: an owner that has
//! lost the user meanwhile answers 503 itself, and the client retries. When
//! the owner has no published address, or cannot be reached, the 503 stands.
//!
//! Only requests that can change something (POST, PUT, PATCH, DELETE) are
//! looked at: reads are served by any instance.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, OwnedElsewhere};

/// Set on a forwarded request: the holder id of the instance that forwarded it.
pub const FORWARDED_BY: &str = "x-ordermon-forwarded-by";
/// Set on a forwarded request's answer: the holder id of the instance that
/// served it.
pub const SERVED_BY: &str = "x-ordermon-served-by";

/// Finds an instance's published base URL by its holder id.
pub type AddressBook = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Forwards refused requests to the owning instance.
#[derive(Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    me: HeaderValue,
    addresses: AddressBook,
    body_limit: usize,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// Why a forwarder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    /// The holder id cannot be sent in a header.
    #[error("the instance id cannot be sent in an HTTP header")]
    Holder,
    /// The HTTP client could not be built.
    #[error("the forwarding HTTP client could not be built: {0}")]
    Client(String),
}

impl Forwarder {
    /// A forwarder for the instance `me` (its holder id), finding owners'
    /// addresses in `addresses`; a forwarded request may take `timeout` and
    /// carry a body of up to `body_limit` bytes.
    ///
    /// # Errors
    /// See [`ForwarderError`].
    pub fn new(
        me: &str,
        addresses: AddressBook,
        timeout: Duration,
        body_limit: usize,
    ) -> Result<Self, ForwarderError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ForwarderError::Client(e.to_string()))?;
        Ok(Self {
            client,
            me: HeaderValue::from_str(me).map_err(|_| ForwarderError::Holder)?,
            addresses,
            body_limit,
        })
    }

    async fn send(
        &self,
        base: &str,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, reqwest::Error> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers {
            if !hop_by_hop(name) && name != header::HOST && name != header::CONTENT_LENGTH {
                out.append(name.clone(), value.clone());
            }
        }
        out.insert(HeaderName::from_static(FORWARDED_BY), self.me.clone());
        // The owner's spans continue this instance's request span.
        if let Some(traceparent) = ordermon_application::trace_context::current()
            .and_then(|t| HeaderValue::from_str(&t).ok())
        {
            out.insert(
                HeaderName::from_static(ordermon_application::trace_context::TRACEPARENT),
                traceparent,
            );
        }
        let answer = self
            .client
            .request(method, format!("{base}{path}"))
            .headers(out)
            .body(body)
            .send()
            .await?;
        let status = answer.status();
        let mut headers = HeaderMap::with_capacity(answer.headers().len());
        for (name, value) in answer.headers() {
            if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
                headers.append(name.clone(), value.clone());
            }
        }
        let body = answer.bytes().await?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// Why `url` cannot be published as an instance's address, if it cannot.
///
/// # Errors
/// What is wrong with it (never the URL itself: it could hold credentials).
pub fn check_address(url: &str) -> Result<(), &'static str> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("http or https expected");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("a host is needed");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold credentials");
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("scheme, host and port only: no path, query or fragment");
    }
    if url.len() > ordermon_domain::ports::LEASE_NAME_MAX {
        return Err("at most 200 bytes");
    }
    Ok(())
}

/// Headers that belong to one connection, never passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The middleware: runs the request here, and when it is refused because
/// another instance owns its user, runs it there.
pub async fn forward_owned_elsewhere(
    State(forwarder): State<Arc<Forwarder>>,
    request: Request,
    next: Next,
) -> Response {
    let changes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !changes || request.headers().contains_key(FORWARDED_BY) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, forwarder.body_limit).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is over {} bytes or could not be read",
                forwarder.body_limit
            ),
        )
        .into_response();
    };
    let (method, uri, headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let refused = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    let Some(owner) = refused
        .extensions()
        .get::<OwnedElsewhere>()
        .map(|o| o.owner.clone())
    else {
        return refused;
    };
    let Some(base) = (forwarder.addresses)(&owner) else {
        return refused;
    };
    match forwarder.send(&base, method, &uri, &headers, bytes).await {
        Ok(mut answer) => {
            metrics::counter!("ordermon_http_forwarded_total", "outcome" => "forwarded")
                .increment(1);
            if let Ok(v) = HeaderValue::from_str(&owner) {
                answer
                    .headers_mut()
                    .insert(HeaderName::from_static(SERVED_BY), v);
            }
            answer
        }
        Err(e) => {
            metrics::counter!("ordermon_http_forwarded_total", "outcome" => "failed").increment(1);
            tracing::warn!(owner = %owner, error = %e.without_url(), "could not forward a request to the user's owner");
            refused
        }
    }
}
