//! [`HttpReceiver`]: an axum server that records every request and answers
//! what the test scripted (by default `200 ok`), optionally behaving like a
//! DingTalk robot.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// DingTalk's robot limit: messages per [`DINGTALK_WINDOW`].
const DINGTALK_LIMIT: usize = 20;
const DINGTALK_WINDOW: Duration = Duration::from_secs(60);
/// DingTalk refuses timestamps more than an hour off.
const DINGTALK_SKEW_MS: i64 = 3_600_000;

/// An answer the receiver gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
    /// How long to wait before answering (a slow receiver).
    pub delay: Duration,
}

impl Reply {
    /// `status` with an empty body.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// `200` with a body (Slack's `ok`).
    #[must_use]
    pub fn ok(body: &str) -> Self {
        Self::status(200).body(body)
    }

    /// `200` with a JSON body (DingTalk's verdicts).
    #[must_use]
    pub fn json(value: &Value) -> Self {
        Self::status(200).body(&value.to_string())
    }

    /// The same reply with `body`.
    #[must_use]
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    /// The same reply, answered after `delay`.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same reply with a header added.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, `GET`…
    pub method: String,
    /// The path, e.g. `/robot/send`.
    pub path: String,
    /// The raw query, if any.
    pub query: Option<String>,
    /// The query, decoded (last value wins).
    pub query_params: BTreeMap<String, String>,
    /// Headers, names lowercase (repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Bytes,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with.
    pub answered: u16,
    /// The body it was answered with.
    pub answer: String,
}

impl Recorded {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A query parameter's decoded value.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query_params.get(name).map(String::as_str)
    }
}

#[derive(Debug)]
struct DingTalk {
    secret: Option<String>,
    /// Messages accepted in the current window.
    accepted: VecDeque<Instant>,
}

#[derive(Debug)]
struct Inner {
    records: Mutex<Vec<Recorded>>,
    arrived: Notify,
    /// Replies for the next requests, in order; then `default`.
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    dingtalk: Option<Mutex<DingTalk>>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// An HTTP server on 127.0.0.1 that records requests and answers scripted
/// replies. Stopped when dropped.
#[derive(Debug)]
pub struct HttpReceiver {
    inner: Arc<Inner>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl HttpReceiver {
    /// A receiver answering `200 ok` to everything.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Self {
        Self::with(None).await
    }

    /// A DingTalk robot double: answers `{"errcode":0,"errmsg":"ok"}`; with a
    /// `secret`, checks `timestamp`/`sign` as DingTalk does and answers
    /// `310000` when they are missing, stale or wrong; answers `130101` to a
    /// message past 20 within a minute.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn dingtalk(secret: Option<&str>) -> Self {
        Self::with(Some(DingTalk {
            secret: secret.map(str::to_owned),
            accepted: VecDeque::new(),
        }))
        .await
    }

    async fn with(dingtalk: Option<DingTalk>) -> Self {
        let default = if dingtalk.is_some() {
            Reply::json(&json!({"errcode": 0, "errmsg": "ok"}))
        } else {
            Reply::ok("ok")
        };
        let inner = Arc::new(Inner {
            records: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            dingtalk: dingtalk.map(Mutex::new),
        });
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap_or_else(|e| panic!("cannot bind a test receiver: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let receiver = Self {
            inner,
            addr,
            running: Mutex::new(None),
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: TcpListener) {
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&self.inner));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                eprintln!("test receiver stopped with an error: {e}");
            }
        });
        *self.running.lock() = Some(Running { stop, task });
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path_and_query` (`/hook?x=1`).
    #[must_use]
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Answers `reply` to the next `n` requests (after any already scripted).
    pub fn reply_next(&self, n: usize, reply: Reply) {
        let mut script = self.inner.script.lock();
        script.extend(std::iter::repeat_n(reply, n));
    }

    /// Answers `reply` once the script is used up.
    pub fn reply_by_default(&self, reply: Reply) {
        *self.inner.default.lock() = reply;
    }

    /// Stops listening and closes every connection: the receiver is down
    /// (connections are refused) until [`HttpReceiver::restart`].
    pub async fn stop(&self) {
        let running = self.running.lock().take();
        if let Some(Running { stop, task }) = running {
            let _ = stop.send(());
            // Graceful shutdown closes idle keep-alive connections at once and
            // waits for requests in flight; a stuck one is cut after a while.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Listens again on the same port after [`HttpReceiver::stop`].
    ///
    /// # Panics
    /// When the port cannot be bound again within five seconds.
    pub async fn restart(&self) {
        if self.running.lock().is_some() {
            return;
        }
        let started = Instant::now();
        let listener = loop {
            match listen(self.addr) {
                Ok(l) => break l,
                Err(_) if started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Every request so far.
    #[must_use]
    pub fn received(&self) -> Vec<Recorded> {
        self.inner.records.lock().clone()
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    ///
    /// # Panics
    /// When fewer than `n` arrive within `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the count is read, so an arrival in between
            // is not missed.
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let records = self.inner.records.lock();
                if records.len() >= n {
                    return records.clone();
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let got = self.inner.records.lock().len();
                panic!("expected {n} requests within {timeout:?}, got {got}");
            }
        }
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        if let Some(Running { stop, task }) = self.running.get_mut().take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}

/// A listener on `addr` that can rebind the port at once after a stop.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let query_params = uri
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://receiver/?{q}"))
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut header_map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let scripted = inner.script.lock().pop_front();
    let reply = match scripted {
        Some(r) => r,
        None => match &inner.dingtalk {
            Some(d) => dingtalk_verdict(&mut d.lock(), &query_params, at)
                .unwrap_or_else(|| inner.default.lock().clone()),
            None => inner.default.lock().clone(),
        },
    };
    let record = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        query_params,
        headers: header_map,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
        at,
        answered: reply.status,
        answer: reply.body.clone(),
    };
    inner.records.lock().push(record);
    inner.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// DingTalk's refusals (`310000`, `130101`), or `None` to accept.
fn dingtalk_verdict(
    d: &mut DingTalk,
    params: &BTreeMap<String, String>,
    now: Instant,
) -> Option<Reply> {
    if let Some(secret) = &d.secret {
        let valid = match (params.get("timestamp"), params.get("sign")) {
            (Some(ts), Some(sign)) => signature_valid(secret, ts, sign),
            _ => false,
        };
        if !valid {
            return Some(Reply::json(&json!({
                "errcode": 310_000,
                "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
            })));
        }
    }
    while d
        .accepted
        .front()
        .is_some_and(|t| now.duration_since(*t) >= DINGTALK_WINDOW)
    {
        d.accepted.pop_front();
    }
    if d.accepted.len() >= DINGTALK_LIMIT {
        return Some(Reply::json(
            &json!({"errcode": 130_101, "errmsg": "send too fast"}),
        ));
    }
    d.accepted.push_back(now);
    None
}

/// DingTalk's check, written from its documentation rather than shared with
/// the notifier, so a mistake in one is caught by the other: the timestamp
/// (ms) is within an hour of now, and `sign` is
/// `base64(HMAC-SHA256(secret, timestamp + "\n" + secret))`.
fn signature_valid(secret: &str, timestamp: &str, sign: &str) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp_millis() - ts).abs() > DINGTALK_SKEW_MS {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(sign) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}
