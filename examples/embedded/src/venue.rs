//! A venue adapter of the embedder's: `touch` fills market orders at once at
//! the touch (buys at the ask, sells at the bid), rests limit orders and fills
//! them when a later quote crosses their price.
//!
//! A real adapter would send the same calls to an exchange gateway; what it
//! shows is the contract: `submit`, `modify` and `cancel` answer with what is
//! known at once, everything later goes through the report sink, and
//! `adopt` takes back the open orders the store holds after a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use ordermon::VenueContext;
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{OrderId, TradeId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::{Order, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{
    Adoption, ExecutionReport, ExecutionReportKind, ExecutionVenue, OrderChange, VenueError,
};
use ordermon_domain::values::{Money, Price, Quantity};
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The venue's name in logs and on orders.
pub const TOUCH: &str = "touch";

/// A resting limit order: what the venue needs to fill it later.
#[derive(Debug, Clone)]
struct Resting {
    order: Order,
    leaves: Quantity,
    price: Price,
}

/// The `touch` venue. Clones share one book.
#[derive(Debug, Clone)]
pub struct TouchVenue {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: VenueContext,
    resting: Mutex<HashMap<OrderId, Resting>>,
    next_trade: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("resting", &self.resting.lock().len())
            .field("trades", &self.next_trade.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TouchVenue {
    /// A venue over the application's quotes, reporting to its owners.
    #[must_use]
    pub fn new(ctx: VenueContext) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx,
                resting: Mutex::new(HashMap::new()),
                next_trade: AtomicU64::new(0),
            }),
        }
    }

    /// Trades this venue has reported.
    #[must_use]
    pub fn trades(&self) -> u64 {
        self.inner.next_trade.load(Ordering::Relaxed)
    }

    /// Limit orders resting here.
    #[must_use]
    pub fn resting(&self) -> usize {
        self.inner.resting.lock().len()
    }

    /// Fills resting orders as quotes cross them, until `cancel` fires.
    #[must_use]
    pub fn spawn(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let venue = self.clone();
        let mut quotes = self.inner.ctx.quotes.subscribe();
        tokio::spawn(async move {
            loop {
                let quote = tokio::select! {
                    () = cancel.cancelled() => return,
                    q = quotes.recv() => q,
                };
                match quote {
                    Ok(quote) => venue.match_resting(&quote).await,
                    // Behind: the next quote is as good as the missed ones.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    async fn match_resting(&self, quote: &Quote) {
        let crossed: Vec<Resting> = {
            let mut book = self.inner.resting.lock();
            let ids: Vec<OrderId> = book
                .iter()
                .filter(|(_, r)| r.order.instrument_id == quote.instrument_id && crosses(r, quote))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| book.remove(id)).collect()
        };
        for r in crossed {
            // A resting order fills at its own price: it was the maker.
            match self.fill(&r.order, r.leaves, r.price, LiquiditySide::Maker) {
                Ok(fill) => self.inner.ctx.reports.report(fill).await,
                Err(reason) => {
                    tracing::warn!(order_id = %r.order.id, %reason, "resting order not filled");
                }
            }
        }
    }

    fn report(&self, order: &Order, kind: ExecutionReportKind) -> ExecutionReport {
        ExecutionReport {
            order_id: order.id,
            user_id: order.user_id.clone(),
            kind,
            ts_event: self.inner.ctx.clock.now(),
        }
    }

    fn fill(
        &self,
        order: &Order,
        quantity: Quantity,
        price: Price,
        liquidity_side: LiquiditySide,
    ) -> Result<ExecutionReport, String> {
        let instrument = self
            .inner
            .ctx
            .catalog
            .get(&order.instrument_id)
            .ok_or_else(|| format!("unknown instrument {}", order.instrument_id))?;
        let n = self.inner.next_trade.fetch_add(1, Ordering::Relaxed) + 1;
        let trade_id = TradeId::new(format!("{TOUCH}-{n}")).map_err(|e| e.to_string())?;
        let kind = ExecutionReportKind::Fill {
            trade_id,
            quantity,
            price,
            // No fees at this venue, in the instrument's currency.
            commission: Money::zero(instrument.quote_currency.clone()),
            liquidity_side,
        };
        Ok(self.report(order, kind))
    }

    /// Accepted and filled at once, or rejected when the fill cannot be made.
    fn taken(&self, order: &Order, quantity: Quantity, price: Price) -> Vec<ExecutionReport> {
        match self.fill(order, quantity, price, LiquiditySide::Taker) {
            Ok(fill) => vec![self.accepted(order), fill],
            Err(reason) => vec![self.rejected(order, &reason)],
        }
    }

    fn accepted(&self, order: &Order) -> ExecutionReport {
        self.report(
            order,
            ExecutionReportKind::Accepted {
                venue_order_id: Some(format!("{TOUCH}:{}", order.id)),
            },
        )
    }

    fn rejected(&self, order: &Order, reason: &str) -> ExecutionReport {
        self.report(
            order,
            ExecutionReportKind::Rejected {
                reason: reason.to_owned(),
            },
        )
    }
}

fn crosses(r: &Resting, quote: &Quote) -> bool {
    match r.order.side {
        Side::Buy => quote.ask <= r.price,
        Side::Sell => quote.bid >= r.price,
    }
}

#[async_trait]
impl ExecutionVenue for TouchVenue {
    fn name(&self) -> &str {
        TOUCH
    }

    async fn submit(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError> {
        let Some(quote) = self.inner.ctx.quotes.latest(&order.instrument_id) else {
            return Ok(vec![
                self.rejected(order, "no quote for this instrument yet"),
            ]);
        };
        let touch = match order.side {
            Side::Buy => quote.ask,
            Side::Sell => quote.bid,
        };
        let leaves = order.leaves_qty();
        match (order.order_type, order.price) {
            (OrderType::Market, _) => Ok(self.taken(order, leaves, touch)),
            (OrderType::Limit, Some(price)) => {
                let resting = Resting {
                    order: order.clone(),
                    leaves,
                    price,
                };
                if crosses(&resting, &quote) {
                    // Marketable: fills at the touch, which is at least as good.
                    return Ok(self.taken(order, leaves, touch));
                }
                if matches!(order.time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
                    return Ok(vec![
                        self.accepted(order),
                        self.report(order, ExecutionReportKind::Canceled),
                    ]);
                }
                self.inner.resting.lock().insert(order.id, resting);
                Ok(vec![self.accepted(order)])
            }
            _ => Ok(vec![self.rejected(
                order,
                "the touch venue takes market and limit orders only",
            )]),
        }
    }

    async fn modify(
        &self,
        order: &Order,
        change: &OrderChange,
    ) -> Result<Vec<ExecutionReport>, VenueError> {
        let mut book = self.inner.resting.lock();
        let Some(resting) = book.get_mut(&order.id) else {
            return Ok(vec![self.report(
                order,
                ExecutionReportKind::ModifyRejected {
                    reason: "not resting at the venue".to_owned(),
                },
            )]);
        };
        if let Some(price) = change.price {
            resting.price = price;
        }
        if let Some(quantity) = change.quantity {
            // The new total, less what already filled.
            let leaves = quantity.get() - order.filled_qty.get();
            match Quantity::new(leaves) {
                Ok(q) if !q.get().is_zero() => resting.leaves = q,
                _ => {
                    return Ok(vec![self.report(
                        order,
                        ExecutionReportKind::ModifyRejected {
                            reason: "the new quantity leaves nothing to fill".to_owned(),
                        },
                    )]);
                }
            }
        }
        Ok(vec![self.report(
            order,
            ExecutionReportKind::Updated {
                change: change.clone(),
            },
        )])
    }

    async fn cancel(&self, order: &Order) -> Result<Vec<ExecutionReport>, VenueError> {
        let kind = if self.inner.resting.lock().remove(&order.id).is_some() {
            ExecutionReportKind::Canceled
        } else {
            ExecutionReportKind::CancelRejected {
                reason: "not resting at the venue".to_owned(),
            }
        };
        Ok(vec![self.report(order, kind)])
    }

    async fn adopt(&self, orders: &[Order]) -> Result<Adoption, VenueError> {
        // This venue keeps nothing across a restart: resting limit orders
        // are taken back as they were; anything else cannot be worked again.
        let mut adoption = Adoption::default();
        for order in orders {
            match (order.order_type, order.price) {
                (OrderType::Limit, Some(price)) => {
                    self.inner.resting.lock().insert(
                        order.id,
                        Resting {
                            order: order.clone(),
                            leaves: order.leaves_qty(),
                            price,
                        },
                    );
                    adoption.taken += 1;
                }
                _ => {
                    let expired = self.report(order, ExecutionReportKind::Expired);
                    self.inner.ctx.reports.report(expired).await;
                    adoption
                        .unknown
                        .push((order.id, "not a limit order; not kept".to_owned()));
                }
            }
        }
        Ok(adoption)
    }
}
