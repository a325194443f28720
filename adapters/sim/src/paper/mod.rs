//! The paper-trading venue: fills orders against the quote book (the default venue).
//!
//! Orders arriving at the venue take the current quote as a taker: market orders
//! at the ask (buys) or bid (sells) moved by the configured slippage, crossing
//! limit orders at the quote's price. What cannot fill at once rests (IOC cancels
//! the rest, FOK fills all or nothing). A task subscribed to the quote book then
//! triggers stops, fills resting limit orders at their limit as makers, and
//! expires DAY and GTD orders. Each quote offers its bid and ask size once, shared
//! by every order that meets it, so large orders fill across several quotes.
//!
//! With no latency, `submit`/`modify`/`cancel` return their reports at once; with
//! latency, the request is handled after the delay (in arrival order) and every
//! report goes through the sink.

mod book;
mod matching;
mod positions;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_application::market::QuoteBook;
use ordermon_domain::ids::{InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{Order, OrderType};
use ordermon_domain::ports::{
    Adoption, Clock, ExecutionReport, ExecutionReportKind, ExecutionReportSink, ExecutionVenue,
    OrderChange, VenueError,
};
use ordermon_domain::values::decimal_string;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use book::{Book, Ctx};

/// Requests waiting out the latency; a full queue makes the caller wait.
const DELAY_QUEUE: usize = 1024;

/// The rejection reason of a market order whose only quote is stale.
pub const MARKET_DATA_STALE: &str = "market data stale";

/// Settings of the paper venue (`[paper]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperConfig {
    /// Delay before a request reaches the venue, in milliseconds (default 0:
    /// reports come back from the call itself).
    pub latency_ms: u64,
    /// Slippage of market orders against the trader, in basis points of the
    /// touch price (default `"1"`).
    #[serde(with = "decimal_string")]
    pub slippage_bps: Decimal,
    /// Commission as a fraction of the fill's notional (default `"0.001"`).
    #[serde(with = "decimal_string")]
    pub fee_rate: Decimal,
    /// How often DAY and GTD expiries are checked when no quote arrives, in
    /// milliseconds (default 1000).
    pub expiry_check_ms: u64,
    /// Staleness guard: a quote older than this many milliseconds is not
    /// executed against (a market order without a fresh quote is rejected
    /// `market data stale`; resting orders wait for a fresh one). Default 30000.
    pub max_quote_age_ms: u64,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            slippage_bps: Decimal::ONE,
            fee_rate: Decimal::new(1, 3),
            expiry_check_ms: 1000,
            max_quote_age_ms: 30_000,
        }
    }
}

/// Why a paper venue could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperError {
    /// A setting is out of range.
    #[error("invalid paper venue setting: {0}")]
    InvalidConfig(&'static str),
}

impl PaperConfig {
    /// Checks the ranges of the settings.
    ///
    /// # Errors
    /// Returns [`PaperError::InvalidConfig`] for a negative slippage or fee rate,
    /// or a zero expiry check interval.
    pub fn validate(&self) -> Result<(), PaperError> {
        if self.slippage_bps < Decimal::ZERO {
            return Err(PaperError::InvalidConfig(
                "slippage_bps must not be negative",
            ));
        }
        if self.fee_rate < Decimal::ZERO {
            return Err(PaperError::InvalidConfig("fee_rate must not be negative"));
        }
        if self.expiry_check_ms == 0 {
            return Err(PaperError::InvalidConfig(
                "expiry_check_ms must be positive",
            ));
        }
        if self.max_quote_age_ms == 0 {
            return Err(PaperError::InvalidConfig(
                "max_quote_age_ms must be positive",
            ));
        }
        Ok(())
    }
}

/// Where the venue looks up tick size, lot size, quote currency and multiplier.
/// Any `Fn(&InstrumentId) -> Option<Arc<Instrument>>` is one.
pub trait InstrumentLookup: Send + Sync {
    /// The instrument's reference data, if known.
    fn instrument(&self, id: &InstrumentId) -> Option<Arc<Instrument>>;
}

impl<F> InstrumentLookup for F
where
    F: Fn(&InstrumentId) -> Option<Arc<Instrument>> + Send + Sync,
{
    fn instrument(&self, id: &InstrumentId) -> Option<Arc<Instrument>> {
        self(id)
    }
}

impl InstrumentLookup for ordermon_application::catalog::InstrumentCatalog {
    fn instrument(&self, id: &InstrumentId) -> Option<Arc<Instrument>> {
        self.get(id)
    }
}

/// A request to the venue.
#[derive(Debug)]
enum Request {
    Submit(Box<Order>),
    Modify(Box<Order>, OrderChange),
    Cancel(Box<Order>),
}

/// A request waiting out the latency.
#[derive(Debug)]
struct Delayed {
    due: Instant,
    request: Request,
}

struct Inner {
    config: PaperConfig,
    quotes: Arc<QuoteBook>,
    sink: Arc<dyn ExecutionReportSink>,
    clock: Arc<dyn Clock>,
    instruments: Arc<dyn InstrumentLookup>,
    book: Mutex<Book>,
    delayed: OnceLock<mpsc::Sender<Delayed>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaperVenue")
            .field("config", &self.config)
            .field("working", &self.book.try_lock().map(|b| b.len()))
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn ctx(&self) -> Ctx {
        Ctx {
            now: self.clock.now(),
            slippage_bps: self.config.slippage_bps,
            fee_rate: self.config.fee_rate,
        }
    }

    /// Handles one request; reference data and the quote are read before the
    /// lock is taken, and the lock is released before anything is sent.
    fn process(&self, request: &Request) -> Result<Vec<ExecutionReport>, VenueError> {
        match request {
            Request::Submit(order) => {
                let instrument = self.instruments.instrument(&order.instrument_id);
                let ctx = self.ctx();
                let latest = self.quotes.latest(&order.instrument_id);
                let stale = latest.as_ref().is_some_and(|q| !self.fresh(q, ctx.now));
                if stale && order.order_type == OrderType::Market {
                    let kind = ExecutionReportKind::Rejected {
                        reason: MARKET_DATA_STALE.to_owned(),
                    };
                    return Ok(vec![book::order_report(order, kind, ctx.now)]);
                }
                let quote = latest.filter(|_| !stale);
                self.book.lock().submit(order, instrument, quote, ctx)
            }
            Request::Modify(order, change) => {
                let ctx = self.ctx();
                let quote = self
                    .quotes
                    .latest(&order.instrument_id)
                    .filter(|q| self.fresh(q, ctx.now));
                Ok(self.book.lock().modify(order, change, quote, ctx))
            }
            Request::Cancel(order) => {
                let now = self.clock.now();
                Ok(self.book.lock().cancel(order, now))
            }
        }
    }

    /// Whether a quote is recent enough to execute against.
    fn fresh(&self, quote: &Quote, now: DateTime<Utc>) -> bool {
        let limit = chrono::Duration::milliseconds(
            i64::try_from(self.config.max_quote_age_ms).unwrap_or(i64::MAX),
        );
        now - quote.ts <= limit
    }

    fn on_quote(&self, quote: Quote) -> Vec<ExecutionReport> {
        let ctx = self.ctx();
        if !self.fresh(&quote, ctx.now) {
            return Vec::new();
        }
        self.book.lock().on_quote(quote, ctx)
    }

    fn expire_due(&self) -> Vec<ExecutionReport> {
        let now = self.clock.now();
        let mut out = Vec::new();
        self.book.lock().expire_due(now, &mut out);
        out
    }

    async fn deliver(&self, reports: Vec<ExecutionReport>) {
        for report in reports {
            self.sink.report(report).await;
        }
    }
}

/// The paper-trading venue. Cloning gives another handle to the same venue.
#[derive(Debug, Clone)]
pub struct PaperVenue {
    inner: Arc<Inner>,
}

impl PaperVenue {
    /// A venue filling against `quotes`, reporting later events to `sink`,
    /// stamping reports with `clock` and reading reference data from `instruments`.
    ///
    /// # Errors
    /// Returns [`PaperError::InvalidConfig`] when the configuration is invalid.
    pub fn new(
        config: PaperConfig,
        quotes: Arc<QuoteBook>,
        sink: Arc<dyn ExecutionReportSink>,
        clock: Arc<dyn Clock>,
        instruments: Arc<dyn InstrumentLookup>,
    ) -> Result<Self, PaperError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                quotes,
                sink,
                clock,
                instruments,
                book: Mutex::new(Book::default()),
                delayed: OnceLock::new(),
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// The venue's settings.
    #[must_use]
    pub fn config(&self) -> &PaperConfig {
        &self.inner.config
    }

    /// Number of orders working at the venue.
    #[must_use]
    pub fn working_orders(&self) -> usize {
        self.inner.book.lock().len()
    }

    /// True when the order is working at the venue.
    #[must_use]
    pub fn is_working(&self, id: &OrderId) -> bool {
        self.inner.book.lock().contains(id)
    }

    /// Starts matching: a task that follows every quote of the book (stops,
    /// resting fills, expiries) and checks expiries periodically, until `cancel`
    /// fires. The subscription is taken before this returns, so no later quote
    /// is missed.
    #[must_use = "the task stops only when cancelled; keep or track its handle"]
    pub fn spawn(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let mut rx = self.inner.quotes.subscribe();
        let inner = Arc::clone(&self.inner);
        let every = Duration::from_millis(inner.config.expiry_check_ms);
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval_at(Instant::now() + every, every);
            sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let reports = tokio::select! {
                    () = cancel.cancelled() => break,
                    msg = rx.recv() => match msg {
                        Ok(quote) => inner.on_quote(quote),
                        // Quotes are state: after a lag, the next one is as good.
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(skipped = n, "paper venue lagged behind quotes");
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = sweep.tick() => inner.expire_due(),
                };
                inner.deliver(reports).await;
            }
            inner.shutdown.cancel();
            tracing::debug!("paper venue stopped");
        })
    }

    /// Handles a request now, or queues it behind the latency.
    async fn request(&self, request: Request) -> Result<Vec<ExecutionReport>, VenueError> {
        if self.inner.config.latency_ms == 0 {
            return self.inner.process(&request);
        }
        let due = Instant::now() + Duration::from_millis(self.inner.config.latency_ms);
        self.delay_queue()
            .send(Delayed { due, request })
            .await
            .map_err(|_| VenueError::Unavailable("paper venue stopped".to_owned()))?;
        Ok(Vec::new())
    }

    /// The queue of delayed requests, with its worker started on first use.
    fn delay_queue(&self) -> &mpsc::Sender<Delayed> {
        self.inner.delayed.get_or_init(|| {
            let (tx, rx) = mpsc::channel(DELAY_QUEUE);
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(run_delayed(weak, rx, self.inner.shutdown.clone()));
            tx
        })
    }
}

/// Handles delayed requests one by one in arrival order (all wait the same
/// latency, so due times only increase), until the venue is dropped or stopped.
async fn run_delayed(
    venue: Weak<Inner>,
    mut rx: mpsc::Receiver<Delayed>,
    shutdown: CancellationToken,
) {
    loop {
        let delayed = tokio::select! {
            () = shutdown.cancelled() => break,
            next = rx.recv() => match next {
                Some(d) => d,
                None => break,
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(delayed.due) => {}
        }
        let Some(inner) = venue.upgrade() else {
            break;
        };
        match inner.process(&delayed.request) {
            Ok(reports) => inner.deliver(reports).await,
            Err(e) => tracing::warn!(error = %e, "paper venue refused a delayed request"),
        }
    }
}

#[async_trait]
impl ExecutionVenue for PaperVenue {
    fn name(&self) -> &str {
        "paper"
    }

    async fn submit(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError> {
        self.request(Request::Submit(Box::new(order.clone()))).await
    }

    async fn modify(
        &self,
        order: &Order,
        change: &OrderChange,
    ) -> Result<Vec<ExecutionReport>, VenueError> {
        let request = Request::Modify(Box::new(order.clone()), change.clone());
        self.request(request).await
    }

    async fn cancel(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError> {
        self.request(Request::Cancel(Box::new(order.clone()))).await
    }

    /// Takes back what a restart made it forget: acknowledged orders rest
    /// again as they were; an order sent but never acknowledged is handled
    /// now as a new one; a cancel left pending is carried out; a modify left
    /// pending is refused (the change was lost with the venue's memory). An
    /// acknowledged order it cannot rest again (its instrument is no longer
    /// traded here) is expired and named as unknown.
    async fn adopt(&self, orders: &[Order]) -> Result<Adoption, VenueError> {
        use ordermon_domain::order::OrderStatus;
        let now = self.inner.clock.now();
        let mut adoption = Adoption::default();
        let mut reports = Vec::new();
        for order in orders {
            if self.inner.book.lock().contains(&order.id) {
                continue;
            }
            match order.status {
                OrderStatus::Submitted => {
                    reports.extend(
                        self.inner
                            .process(&Request::Submit(Box::new(order.clone())))?,
                    );
                    adoption.taken += 1;
                }
                OrderStatus::Accepted
                | OrderStatus::PartiallyFilled
                | OrderStatus::Triggered
                | OrderStatus::PendingCancel
                | OrderStatus::PendingUpdate => {
                    let restored = match self.inner.instruments.instrument(&order.instrument_id) {
                        None => Err(format!(
                            "the paper venue does not trade {} any more",
                            order.instrument_id
                        )),
                        Some(instrument) => {
                            if self.inner.book.lock().restore(order, instrument) {
                                Ok(())
                            } else {
                                Err("the paper venue could not rest it again".to_owned())
                            }
                        }
                    };
                    if let Err(why) = restored {
                        reports.push(book::order_report(order, ExecutionReportKind::Expired, now));
                        adoption.unknown.push((order.id, why));
                        continue;
                    }
                    adoption.taken += 1;
                    match order.status {
                        OrderStatus::PendingCancel => {
                            reports.extend(self.inner.book.lock().cancel(order, now));
                        }
                        OrderStatus::PendingUpdate => {
                            reports.push(book::order_report(
                                order,
                                ExecutionReportKind::ModifyRejected {
                                    reason: "the venue restarted and lost the change".to_owned(),
                                },
                                now,
                            ));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if adoption.taken > 0 {
            tracing::info!(
                orders = adoption.taken,
                "paper venue took back orders it had forgotten"
            );
        }
        if !reports.is_empty() {
            // Through the sink, later: the owner is not reading its mailbox yet.
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move { inner.deliver(reports).await });
        }
        Ok(adoption)
    }

    fn position_changed(
        &self,
        user: &UserId,
        instrument: &InstrumentId,
        net: Decimal,
        trade: Option<&TradeId>,
    ) {
        self.inner
            .book
            .lock()
            .confirm_position(user, instrument, net, trade);
    }
}
