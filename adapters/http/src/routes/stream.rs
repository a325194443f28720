//! The live event stream over WebSocket: every committed domain event the
//! caller may see, as one JSON text frame each.
//!
//! Browsers cannot set headers on a WebSocket, so besides the bearer header the
//! token may come as `?token=`. A client too slow for the broadcast gets a
//! `{"type":"lagged","skipped":n}` frame and the stream goes on (it can catch up
//! from `GET /api/v1/events`). The server pings every 20 s and drops a client
//! that missed two pongs; it closes with 1001 when the engine shuts down.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ordermon_application::Scope;
use ordermon_domain::event::DomainEvent;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::ApiState;
use crate::auth::authenticate;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;

/// How often the server pings.
const PING_EVERY: Duration = Duration::from_secs(20);

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
    let caller = match authenticate(&state, &headers, q.token.as_deref()) {
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
    // Subscribe before upgrading so nothing delivered after the 101 is missed.
    let rx = state.events.subscribe();
    let user = caller.user_id.clone();
    let engine = state.engine.clone();
    ws.on_upgrade(move |socket| async move {
        tracing::debug!(user_id = %user, "stream opened");
        pump(socket, rx, scope, engine.stopping()).await;
        tracing::debug!(user_id = %user, "stream closed");
    })
}

/// True when `scope` may see `event`.
#[must_use]
pub fn visible(scope: &Scope, event: &DomainEvent) -> bool {
    match scope {
        Scope::All => true,
        Scope::User(u) => event.user_id.as_ref() == Some(u),
    }
}

async fn pump(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<Arc<DomainEvent>>,
    scope: Scope,
    stopping: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopping);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
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
                // Pings are answered by the protocol layer; client text is ignored.
                Some(Ok(_)) => {}
            },
            () = &mut stopping => {
                going_away(&mut socket).await;
                break;
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
async fn going_away(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::AWAY,
        reason: "server shutting down".into(),
    };
    // The client may already be gone; nothing to do then.
    drop(socket.send(Message::Close(Some(frame))).await);
}
