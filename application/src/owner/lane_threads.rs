//! The quote lanes' threads: each lane takes every quote from the quote book
//! and calls the strategies of its share of the users that trade the quote's
//! instrument (see [`super::lanes`] for the slots and the subscriptions).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Context;

/// Starts lane `lane` on a thread of its own, with a single-threaded
/// runtime for its waits. The returned future must be run (tracked) on the
/// engine's runtime: it ends when the lane has stopped, and the lane stops
/// when `cancel` fires or when that future is dropped (its runtime shut
/// down without cancelling), so no lane outlives the engine's runtime. When
/// the thread cannot be started, the future runs the lane itself.
///
/// Why a thread: a lane is CPU work without I/O. On the shared runtime it
/// waits behind whatever task holds its worker (an owner's commit, a round of
/// ticks, a scan), and those wait behind a burst of its calls; on a thread of
/// its own the operating system shares the cores, and a lane woken by a
/// quote after sleeping runs promptly. A decision handed to a full mailbox
/// is awaited on the lane's runtime (see `lanes::Handover`).
pub(crate) fn start_lane(
    ctx: Arc<Context>,
    lane: usize,
    cancel: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let on_thread = spawn_lane_thread(ctx.clone(), lane, cancel.clone());
    async move {
        match on_thread {
            Ok(stopped) => stopped.await,
            Err(e) => {
                tracing::error!(lane, error = %e, "quote lane thread cannot start; the lane runs on the runtime");
                run_lane(ctx, lane, cancel).await;
            }
        }
    }
}

/// The thread of [`start_lane`]; the future ends when the lane has stopped.
fn spawn_lane_thread(
    ctx: Arc<Context>,
    lane: usize,
    cancel: CancellationToken,
) -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (done, stopped) = tokio::sync::oneshot::channel::<()>();
    let (keep, dropped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("ordermon-lane-{lane}"))
        .spawn(move || {
            super::lane_priority::take_lane_nice(lane, ctx.config.monitor.lane_nice);
            runtime.block_on(async move {
                tokio::select! {
                    () = run_lane(ctx, lane, cancel) => {}
                    _ = dropped => {}
                }
            });
            let _ = done.send(());
        })?;
    Ok(async move {
        let _keep = keep;
        let _ = stopped.await;
    })
}

/// Runs lane `lane` until `cancel`: every quote of the book goes to the
/// lane's strategies that trade its instrument.
async fn run_lane(ctx: Arc<Context>, lane: usize, cancel: CancellationToken) {
    let mut rx = ctx.quotes.subscribe();
    // One cancellation future for the lane's life, looked at first: a feed
    // that never pauses must not keep a lane past shutdown.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let quote = tokio::select! {
            biased;
            () = &mut cancelled => return,
            q = rx.recv() => q,
        };
        let quote = match quote {
            Ok(q) => q,
            Err(RecvError::Lagged(n)) => {
                ctx.lanes.count_lagged(n);
                metrics::counter!("ordermon_quotes_lagged_total").increment(n);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(slots) = ctx.lanes.slots(lane, &quote.instrument_id) else {
            continue;
        };
        let quote = Arc::new(quote);
        let now = ctx.clock.now();
        let mut called = 0_u64;
        for slot in slots.iter() {
            if slot.on_quote(&quote, now) {
                called += 1;
            }
        }
        if called > 0 {
            ctx.counters.events.fetch_add(called, Ordering::Relaxed);
            let latency = (ctx.clock.now() - quote.ts)
                .num_microseconds()
                .unwrap_or(0)
                .max(0);
            #[allow(clippy::cast_precision_loss)]
            metrics::histogram!("ordermon_quote_to_decision_seconds").record(latency as f64 / 1e6);
        }
        // Let owners (and the other lane's work) run between quotes.
        tokio::task::consume_budget().await;
    }
}
