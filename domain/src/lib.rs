//! ordermon's domain: value types, the order, position and account aggregates,
//! pre-trade risk, alerts, domain events and the ports infrastructure implements.
//!
//! This crate is pure: no async runtime, no I/O. CI checks that its dependency
//! tree holds none of tokio, sqlx, redis, deadpool, lapin, rdkafka, reqwest or axum.

pub mod account;
pub mod alert;
pub mod credential;
pub mod duration;
pub mod event;
pub mod fill;
pub mod high_water;
pub mod ids;
pub mod instrument;
pub mod market;
pub mod order;
pub mod ports;
pub mod position;
pub mod replay;
pub mod risk;
pub mod side;
pub mod strategy;
mod tagged;
pub mod user;
pub mod values;

pub use rust_decimal::Decimal;
