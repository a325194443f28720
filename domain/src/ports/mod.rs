//! Ports: the traits infrastructure implements and the application depends on.
//!
//! Each is held as `Arc<dyn Port>` so the implementation is chosen at run time
//! from configuration.

mod bus;
mod cache;
mod clock;
mod lease;
mod log_sink;
mod market_data;
mod notifier;
mod projection;
mod repos;
mod store;
mod venue;

pub use bus::{
    BusError, BusMessage, DeadLetter, Delivery, MessageBus, Subscription, SubscriptionSpec,
    topic_matches,
};
pub use cache::{Cache, CacheError, CacheKey};
pub use clock::{Clock, ManualClock, SystemClock};
pub use lease::{Fence, LEASE_NAME_MAX, Lease, LeaseStore, check_lease_name};
pub use log_sink::{LogPage, LogSinkError, UserLogSink};
pub use market_data::{MarketDataError, MarketDataProvider};
pub use notifier::{Notification, Notifier, NotifyError};
pub use projection::{HighWaterRepository, ProjectionScan, PurgeCounts, Retention, StoredRow};
pub use repos::{
    AccountRepository, AlertQuery, AlertRepository, AlertRuleRepository, BarRepository,
    CredentialRepository, EventLog, FillQuery, FillRepository, InstrumentRepository,
    NotificationLog, OrderQuery, OrderRepository, Outbox, OutboxRecord, Page, PositionRepository,
    SilenceQuery, SilenceRepository, StoredEvent, StrategyRepository, UserRepository,
};
pub use store::{
    ChangeSet, CommitReceipt, OutboxMessage, ReservationWrite, StateChange, Store, StoreError,
};
pub use venue::{
    Adoption, ExecutionReport, ExecutionReportKind, ExecutionReportSink, ExecutionVenue,
    OrderChange, VenueError,
};
