//! ordermon's application layer: the use cases over the domain's ports.
//!
//! Each user's commands are serialized through one owner task that holds the
//! user's account, open orders and positions in memory; owners persist through a
//! shared group committer and answer only after their batch is durable.

pub mod access;
pub mod alerting;
pub mod backoff;
pub mod bar_history;
pub mod cache;
pub mod catalog;
pub mod committer;
pub mod config_decimal;
pub mod consume;
pub mod engine;
pub mod error;
mod high_water;
pub mod instance_consumer;
pub mod lease_keeper;
pub mod live_feed;
pub mod lookup;
pub mod market;
pub mod monitoring;
pub mod owner;
pub mod ownership;
pub mod persistence;
pub mod relay;
pub mod replay;
pub mod request_limits;
pub mod sign_in;
mod state_loads;
pub mod strategy;
pub mod strategy_health;
pub mod trace_context;
pub mod trading_switch;
pub mod validate;
pub mod views;

pub use engine::{CreateUser, Engine, EngineStatus, Scope};
pub use error::{AppError, FieldError};
pub use monitoring::{Monitoring, MonitoringStatus};
pub use owner::{EngineConfig, MonitorConfig, StrategyPatch, SubmitOutcome, UserPatch, VenueMode};
