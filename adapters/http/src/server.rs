//! The HTTP server loop: accepts connections up to a cap and serves each with
//! hyper, bounding how long a client may take to send a request's headers.
//!
//! `axum::serve` sets neither: without a timer hyper enforces no header-read
//! timeout, so a client trickling a header byte at a time (slowloris) holds a
//! connection for ever, and nothing bounds how many connections are open. A
//! client that connects and sends nothing is cut off after the same timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits of the connections the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers (a keep-alive
    /// connection's next request included) before the connection is closed.
    pub header_read_timeout: Duration,
    /// Most connections open at once; beyond it new ones wait in the
    /// listener's backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, asks every open connection to finish its in-flight request and
/// close, and returns once all have (bound it with a timeout for a deadline).
/// Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let connections = TaskTracker::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // CONNECT is how WebSockets run over HTTP/2.
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = Slot::taken(permit);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let builder = builder.clone();
        let mut closed = closed.clone();
        let first_byte = limits.header_read_timeout;
        connections.spawn(async move {
            // The slot goes back when this task ends, whichever way.
            let _slot = slot;
            // hyper times the headers from their first byte: a client that
            // connects and sends nothing would hold its slot for ever.
            let closing = async move {
                let _ = closed.wait_for(|c| *c).await;
            };
            tokio::pin!(closing);
            let mut probe = [0u8; 1];
            tokio::select! {
                first = tokio::time::timeout(first_byte, stream.peek(&mut probe)) => match first {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                },
                () = &mut closing => return,
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, %peer, "connection ended");
                    }
                }
                () = &mut closing => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    connections.close();
    connections.wait().await;
}

/// A connection's place under the cap, counted in `ordermon_http_connections`;
/// given back on drop.
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Slot {
    fn taken(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        metrics::gauge!("ordermon_http_connections").increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("ordermon_http_connections").decrement(1.0);
    }
}
