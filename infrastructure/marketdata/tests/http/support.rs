//! A scripted HTTP server on 127.0.0.1:0 standing in for the providers: every
//! request is recorded (time, path, query, headers) and answered by the
//! test's handler, which may delay the answer or cut its body short.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use ordermon_marketdata::{BreakerConfig, ProviderConfig, ProviderKind, RetryConfig};
use parking_lot::Mutex;

/// One request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) at: Instant,
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) headers: HeaderMap,
}

/// What the server answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    delay: Duration,
    cut: bool,
}

impl Reply {
    /// 200 with a JSON body.
    pub(crate) fn json(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            cut: false,
        }
    }

    /// 200 with a fixture's body.
    pub(crate) fn fixture(name: &str) -> Self {
        Self::json(fixture(name))
    }

    pub(crate) fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay`.
    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sends half the body, then drops the connection.
    pub(crate) fn cut(mut self) -> Self {
        self.cut = true;
        self
    }
}

/// A fixture's bytes.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

type Handler = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

struct Shared {
    hits: Mutex<Vec<Hit>>,
    handler: Box<Handler>,
}

/// The running server.
pub(crate) struct Server {
    pub(crate) url: String,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts a server answering each request with `handler(hit, index)`.
    pub(crate) async fn start(
        handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}"),
            shared,
        }
    }

    /// Every request so far.
    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.shared.hits.lock().len()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let hit = Hit {
        at: Instant::now(),
        path: request.uri().path().to_owned(),
        query: request
            .uri()
            .query()
            .map(|q| {
                url_pairs(q)
                    .into_iter()
                    .collect::<BTreeMap<String, String>>()
            })
            .unwrap_or_default(),
        headers: request.headers().clone(),
    };
    let index = {
        let mut hits = shared.hits.lock();
        hits.push(hit.clone());
        hits.len() - 1
    };
    let reply = (shared.handler)(&hit, index);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let body = if reply.cut {
        let half = reply.body[..reply.body.len() / 2].to_vec();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            )),
        ];
        Body::from_stream(futures::stream::iter(chunks))
    } else {
        Body::from(reply.body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    response.headers_mut().insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// A provider config pointing at `url`, with short timeouts, quick retries
/// and budgets large enough not to matter unless a test sets them.
pub(crate) fn config(kind: ProviderKind, url: &str) -> ProviderConfig {
    let mut c = ProviderConfig::new(kind);
    c.base_url = Some(url.to_owned());
    c.timeout = Duration::from_millis(400);
    c.call_timeout = Duration::from_secs(5);
    c.retry = RetryConfig {
        max_attempts: 3,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    c.breaker = BreakerConfig {
        failures: 5,
        cool_down: Duration::from_millis(300),
    };
    c.limits.per_second = Some(10_000);
    c.limits.per_minute = Some(100_000);
    c
}
