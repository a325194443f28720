//! Tests of the paper venue: a harness with a manual clock, a scripted quote book
//! and a channel sink.

mod immediate;
mod resting;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use ordermon_application::market::QuoteBook;
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{NewOrder, Order, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{
    Clock, ExecutionReport, ExecutionReportKind, ExecutionReportSink, ExecutionVenue, ManualClock,
};
use ordermon_domain::values::{Currency, Price, Quantity};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{PaperConfig, PaperVenue};

/// A sink that forwards every report to the test.
#[derive(Debug)]
struct ChannelSink(mpsc::UnboundedSender<ExecutionReport>);

#[async_trait]
impl ExecutionReportSink for ChannelSink {
    async fn report(&self, report: ExecutionReport) {
        let _ = self.0.send(report);
    }
}

fn acme_id() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

fn acme() -> Instrument {
    Instrument {
        id: acme_id(),
        quote_currency: Currency::new("USD").unwrap(),
        tick_size: Price::new(dec!(0.01)).unwrap(),
        lot_size: Quantity::new(dec!(1)).unwrap(),
        min_quantity: Quantity::new(dec!(1)).unwrap(),
        max_quantity: None,
        min_notional: None,
        multiplier: dec!(1),
        version: 0,
    }
}

fn es_id() -> InstrumentId {
    InstrumentId::new("ES.SIM").unwrap()
}

/// A future: quarter-point tick, multiplier 50.
fn es() -> Instrument {
    Instrument {
        id: es_id(),
        tick_size: Price::new(dec!(0.25)).unwrap(),
        multiplier: dec!(50),
        ..acme()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
}

fn price(d: Decimal) -> Price {
    Price::new(d).unwrap()
}

/// A running venue with its quote book, clock and report channel.
struct Harness {
    venue: PaperVenue,
    quotes: Arc<QuoteBook>,
    clock: Arc<ManualClock>,
    rx: mpsc::UnboundedReceiver<ExecutionReport>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    next_cid: u32,
}

impl Harness {
    fn new(config: PaperConfig) -> Self {
        let quotes = Arc::new(QuoteBook::new(64));
        let clock = Arc::new(ManualClock::new(t0()));
        let (tx, rx) = mpsc::unbounded_channel();
        let catalog = ordermon_application::catalog::InstrumentCatalog::new([acme(), es()]);
        let venue = PaperVenue::new(
            config,
            Arc::clone(&quotes),
            Arc::new(ChannelSink(tx)),
            clock.clone(),
            Arc::new(catalog),
        )
        .unwrap();
        let cancel = CancellationToken::new();
        let task = venue.spawn(cancel.clone());
        Self {
            venue,
            quotes,
            clock,
            rx,
            cancel,
            task,
            next_cid: 0,
        }
    }

    fn default() -> Self {
        Self::new(PaperConfig::default())
    }

    /// Publishes an ACME quote stamped with the clock's time.
    fn quote(&self, bid: Decimal, ask: Decimal, bid_size: Decimal, ask_size: Decimal) {
        self.quote_of(acme_id(), bid, ask, bid_size, ask_size);
    }

    fn quote_of(
        &self,
        instrument_id: InstrumentId,
        bid: Decimal,
        ask: Decimal,
        bid_size: Decimal,
        ask_size: Decimal,
    ) {
        self.quotes.publish(Quote {
            instrument_id,
            bid: price(bid),
            ask: price(ask),
            bid_size: Quantity::new(bid_size).unwrap(),
            ask_size: Quantity::new(ask_size).unwrap(),
            ts: self.clock.now(),
        });
    }

    /// A new ACME order created at the clock's time.
    fn order(&mut self, side: Side, order_type: OrderType, quantity: Decimal) -> OrderSpec {
        self.next_cid += 1;
        OrderSpec {
            new: NewOrder {
                client_order_id: ClientOrderId::new(format!("c-{}", self.next_cid)).unwrap(),
                user_id: UserId::new("alice").unwrap(),
                strategy_id: None,
                instrument_id: acme_id(),
                side,
                order_type,
                quantity: Quantity::new(quantity).unwrap(),
                price: None,
                trigger_price: None,
                time_in_force: TimeInForce::Gtc,
                expire_at: None,
                reduce_only: false,
                post_only: false,
            },
            now: self.clock.now(),
        }
    }

    async fn submit(&self, order: &Order) -> Vec<ExecutionReport> {
        self.venue.submit(order).await.unwrap()
    }

    /// The next report through the sink (fails after 10 virtual seconds).
    async fn next(&mut self) -> ExecutionReport {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a report within 10 s")
            .expect("sink open")
    }

    /// Asserts that the venue sends nothing more (the venue task goes idle first,
    /// since paused time only advances when every task waits).
    async fn quiet(&mut self) {
        let got = tokio::time::timeout(Duration::from_millis(100), self.rx.recv()).await;
        assert!(got.is_err(), "unexpected report: {got:?}");
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

/// Builder for a test order.
struct OrderSpec {
    new: NewOrder,
    now: DateTime<Utc>,
}

impl OrderSpec {
    fn price(mut self, p: Decimal) -> Self {
        self.new.price = Some(price(p));
        self
    }
    fn trigger(mut self, p: Decimal) -> Self {
        self.new.trigger_price = Some(price(p));
        self
    }
    fn tif(mut self, tif: TimeInForce) -> Self {
        self.new.time_in_force = tif;
        self
    }
    fn expire_at(mut self, at: DateTime<Utc>) -> Self {
        self.new.time_in_force = TimeInForce::Gtd;
        self.new.expire_at = Some(at);
        self
    }
    fn post_only(mut self) -> Self {
        self.new.post_only = true;
        self
    }
    fn reduce_only(mut self) -> Self {
        self.new.reduce_only = true;
        self
    }
    fn build(self) -> Order {
        Order::create(OrderId::generate(), self.new, self.now)
            .unwrap()
            .0
    }
}

/// A fill's quantity, price and liquidity side.
fn fill(report: &ExecutionReport) -> (Decimal, Decimal, LiquiditySide) {
    match &report.kind {
        ExecutionReportKind::Fill {
            quantity,
            price,
            liquidity_side,
            ..
        } => (quantity.get(), price.get(), *liquidity_side),
        other => panic!("expected a fill, got {other:?}"),
    }
}

/// Short names of report kinds, for sequence assertions.
fn kinds(reports: &[ExecutionReport]) -> Vec<&'static str> {
    reports.iter().map(kind).collect()
}

fn kind(report: &ExecutionReport) -> &'static str {
    match &report.kind {
        ExecutionReportKind::Accepted { .. } => "accepted",
        ExecutionReportKind::Rejected { .. } => "rejected",
        ExecutionReportKind::Canceled => "canceled",
        ExecutionReportKind::Expired => "expired",
        ExecutionReportKind::Triggered => "triggered",
        ExecutionReportKind::Updated { .. } => "updated",
        ExecutionReportKind::ModifyRejected { .. } => "modify_rejected",
        ExecutionReportKind::CancelRejected { .. } => "cancel_rejected",
        ExecutionReportKind::Fill { .. } => "fill",
    }
}

fn reason(report: &ExecutionReport) -> &str {
    match &report.kind {
        ExecutionReportKind::Rejected { reason }
        | ExecutionReportKind::ModifyRejected { reason }
        | ExecutionReportKind::CancelRejected { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn config_defaults_and_serde() {
    let c = PaperConfig::default();
    assert_eq!(c.latency_ms, 0);
    assert_eq!(c.slippage_bps, dec!(1));
    assert_eq!(c.fee_rate, dec!(0.001));
    assert!(c.validate().is_ok());
    let c: PaperConfig =
        serde_json::from_str(r#"{"latency_ms": 20, "fee_rate": "0.0002"}"#).unwrap();
    assert_eq!(
        (c.latency_ms, c.fee_rate, c.slippage_bps),
        (20, dec!(0.0002), dec!(1))
    );
    assert!(serde_json::from_str::<PaperConfig>(r#"{"fee_rate": 0.001}"#).is_err());
    assert!(serde_json::from_str::<PaperConfig>(r#"{"fees": "1"}"#).is_err());
    let bad = PaperConfig {
        slippage_bps: dec!(-1),
        ..PaperConfig::default()
    };
    assert!(bad.validate().is_err());
}
