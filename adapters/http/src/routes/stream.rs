//! The live event stream over WebSocket: every committed domain event the
//! caller may see, as one JSON text frame each.
//!
//! Browsers cannot set headers on a WebSocket, so besides the bearer header the
//! token may come as `?token=`. A client too slow for the broadcast gets a
//! `{"type":"lagged","skipped":n}` frame and the stream goes on (it can catch up
//! from `GET /api/v1/events`). The server pings every 20 s and drops a client
//! that missed two pongs; it closes with 1001 when the engine shuts down.
//!
//! Quotes are not domain events; a client that wants them sends a text frame
//! `{"quotes":["ACME.SIM",...]}` (up to 200 instruments; an empty list stops
//! them) and then gets `{"type":"quote","instrument_id":...,"bid":...,"mid":...}`
//! frames, at most one per instrument every 250 ms (the latest wins).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ordermon_application::Scope;
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ids::{InstrumentId, UserId};
use ordermon_domain::market::Quote;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::ApiState;
use crate::auth::authenticate_until;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;

/// How often the server pings.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How often the latest quote of each subscribed instrument is sent.
const QUOTES_EVERY: Duration = Duration::from_millis(250);
/// Most instruments one stream may ask quotes for.
const MAX_QUOTE_INSTRUMENTS: usize = 200;

/// Largest message (and frame) a client may send: a quote request naming
/// [`MAX_QUOTE_INSTRUMENTS`] long ids fits with room to spare. A larger one
/// closes the stream (1009, message too big) before it is buffered.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 32 * 1024;

/// `GET /api/v1/stream` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The bearer token, for clients that cannot set headers.
    pub token: Option<String>,
    /// Admins: only this user's events.
    pub user_id: Option<String>,
}

/// Upgrades to a WebSocket carrying the caller's live events.
#[utoipa::path(get, path = "/api/v1/stream", tag = "events", params(StreamQuery),
    responses(
        (status = 101, description = "switching to WebSocket; each text frame is one domain event"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (caller, until) = match authenticate_until(&state, &headers, q.token.as_deref()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let scope = match caller.target_scope(q.user_id.as_deref()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::new(e.status(), "bad_request", e.body_text()).into_response();
        }
    };
    let Some(slot) = state.streams.acquire(&caller.user_id) else {
        return ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many live streams open (per user or in all); close one first",
        )
        .into_response();
    };
    // Subscribe before upgrading so nothing delivered after the 101 is missed.
    let rx = state.events.subscribe();
    let quotes = state.engine.instruments.quotes().subscribe();
    let user = caller.user_id.clone();
    let engine = state.engine.clone();
    // The stream lives as long as its token: closed (1008) when the token
    // expires, its sign-in session is revoked, or the database stops
    // admitting it (user disabled, tokens revoked, role changed).
    let session = Session {
        until,
        state: state.clone(),
        caller,
    };
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            tracing::debug!(user_id = %user, "stream opened");
            pump(socket, rx, quotes, scope, session, engine.stopping()).await;
            tracing::debug!(user_id = %user, "stream closed");
        })
}

/// How many live streams may be open: per user and in all.
#[derive(Debug)]
pub struct StreamSlots {
    per_user: usize,
    total: usize,
    open: parking_lot::Mutex<(usize, HashMap<UserId, usize>)>,
}

impl StreamSlots {
    /// At most `per_user` streams per user and `total` in all.
    #[must_use]
    pub fn new(per_user: usize, total: usize) -> Self {
        Self {
            per_user,
            total,
            open: parking_lot::Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for one more stream of `user`, given back when dropped; `None`
    /// when the user or the server is at its cap.
    #[must_use]
    pub fn acquire(self: &Arc<Self>, user: &UserId) -> Option<StreamSlot> {
        let mut open = self.open.lock();
        let (total, users) = &mut *open;
        let mine = users.get(user).copied().unwrap_or(0);
        if *total >= self.total || mine >= self.per_user {
            return None;
        }
        *total += 1;
        users.insert(user.clone(), mine + 1);
        metrics::gauge!("ordermon_streams_open").set(*total as f64);
        Some(StreamSlot {
            slots: self.clone(),
            user: user.clone(),
        })
    }
}

impl Default for StreamSlots {
    /// 16 per user, 10,000 in all.
    fn default() -> Self {
        Self::new(16, 10_000)
    }
}

/// One open stream's place; frees it on drop.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user: UserId,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock();
        let (total, users) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = users.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                users.remove(&self.user);
            }
        }
        metrics::gauge!("ordermon_streams_open").set(*total as f64);
    }
}

/// True when `scope` may see `event`.
#[must_use]
pub fn visible(scope: &Scope, event: &DomainEvent) -> bool {
    match scope {
        Scope::All => true,
        Scope::User(u) => event.user_id.as_ref() == Some(u),
    }
}

/// What a client asked for with a text frame.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRequest {
    /// The instruments whose quotes it wants (replaces the previous list).
    quotes: Vec<String>,
}

/// The instruments of a `{"quotes":[...]}` frame; anything else is ignored
/// (`None`), as are invalid ids and ids past the limit.
fn quote_request(text: &str) -> Option<HashSet<InstrumentId>> {
    let request: ClientRequest = serde_json::from_str(text).ok()?;
    Some(
        request
            .quotes
            .into_iter()
            .filter_map(|i| InstrumentId::new(i).ok())
            .take(MAX_QUOTE_INSTRUMENTS)
            .collect(),
    )
}

/// A quote frame.
fn quote_frame(q: Quote) -> String {
    let mut v = serde_json::to_value(crate::dto::QuoteView::from(q)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), "quote".into());
    }
    v.to_string()
}

/// What keeps a stream open: its token's validity.
struct Session {
    /// When the token stops being accepted.
    until: chrono::DateTime<chrono::Utc>,
    /// What answers whether the token is still admitted (checked every few
    /// seconds).
    state: ApiState,
    /// Who the token speaks for.
    caller: crate::auth::Caller,
}

/// How often a stream checks that its token is still admitted (the user's
/// answer is itself kept for `auth.user_check_ttl`).
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(5);

async fn pump(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<Arc<DomainEvent>>,
    mut quotes: tokio::sync::broadcast::Receiver<Quote>,
    scope: Scope,
    session: Session,
    stopping: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopping);
    let left = (session.until - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let expiry = tokio::time::sleep(left);
    tokio::pin!(expiry);
    let mut check = tokio::time::interval(SESSION_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut flush = tokio::time::interval(QUOTES_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unanswered = 0u32;
    let mut wanted: HashSet<InstrumentId> = HashSet::new();
    let mut latest: HashMap<InstrumentId, Quote> = HashMap::new();
    loop {
        tokio::select! {
            quote = quotes.recv(), if !wanted.is_empty() => match quote {
                Ok(q) if wanted.contains(&q.instrument_id) => {
                    latest.insert(q.instrument_id.clone(), q);
                }
                // Other instruments, or quotes skipped while slow: the next one will do.
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => wanted.clear(),
            },
            _ = flush.tick(), if !latest.is_empty() => {
                let mut failed = false;
                for (_, q) in latest.drain() {
                    if socket.send(Message::Text(quote_frame(q).into())).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    break;
                }
            }
            event = rx.recv() => {
                let text = match event {
                    Ok(e) if visible(&scope, &e) => match serde_json::to_string(&*e) {
                        Ok(t) => t,
                        Err(err) => {
                            tracing::error!(error = %err, "event not serializable");
                            continue;
                        }
                    },
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        serde_json::json!({"type": "lagged", "skipped": n}).to_string()
                    }
                    Err(RecvError::Closed) => {
                        going_away(&mut socket).await;
                        break;
                    }
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Pong(_))) => unanswered = 0,
                Some(Ok(Message::Text(text))) => {
                    if let Some(set) = quote_request(text.as_str()) {
                        if wanted.is_empty() && !set.is_empty() {
                            // Start from now, not from quotes queued before asking.
                            quotes = quotes.resubscribe();
                        }
                        latest.retain(|i, _| set.contains(i));
                        wanted = set;
                    }
                }
                // Pings are answered by the protocol layer; other frames are ignored.
                Some(Ok(_)) => {}
            },
            () = &mut stopping => {
                going_away(&mut socket).await;
                break;
            }
            () = &mut expiry => {
                policy_close(&mut socket, "token expired").await;
                break;
            }
            _ = check.tick() => {
                if crate::auth::is_revoked(&session.state, &session.caller).await {
                    policy_close(&mut socket, "token no longer admitted").await;
                    break;
                }
            }
            _ = ping.tick() => {
                if unanswered >= 2 {
                    break;
                }
                unanswered += 1;
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Tells the client the server is going away (close code 1001).
/// Closes with 1008 (policy violation): the caller's credentials no longer
/// hold.
async fn policy_close(socket: &mut WebSocket, reason: &'static str) {
    let frame = CloseFrame {
        code: close_code::POLICY,
        reason: reason.into(),
    };
    drop(socket.send(Message::Close(Some(frame))).await);
}

async fn going_away(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::AWAY,
        reason: "server shutting down".into(),
    };
    // The client may already be gone; nothing to do then.
    drop(socket.send(Message::Close(Some(frame))).await);
}
