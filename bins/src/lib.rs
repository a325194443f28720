//! ordermon: the configuration and the composition root embedders depend on.
//!
//! [`build`] turns a [`Config`] into an [`App`]: the store `database.url` selects
//! (migrated at start), the engine with its monitors, demo instruments, the
//! quote feed (simulated, or polled from a market data provider), the paper
//! venue and the HTTP API. The `monitor-server`
//! binary is a thin shell over this crate, and tests run the same app on port 0.
//! An embedder that brings its own strategy types, venue, market data
//! providers, notifiers or clock builds through [`AppBuilder`]; the
//! `examples/embedded` crate shows one.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ordermon::config::{Config, ServiceUrl};
//! let mut config = Config::default();
//! config.database.url = ServiceUrl::new("memory");
//! let app = ordermon::build(config).await?;
//! let running = app.spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
//! println!("listening on {}", running.base_url());
//! running.stop().await?;
//! # Ok(()) }
//! ```

mod alerting;
mod app;
pub mod backfill;
mod bootstrap;
mod cache;
pub mod client;
pub mod config;
mod demo;
mod live_market;
pub mod logs;
mod market;
mod messaging;
pub mod ops;
pub mod secret;
mod store;

pub use app::{App, AppBuilder, RunningApp, VenueContext, build, token_settings};
pub use cache::CacheOpenError;
pub use config::{Config, Registered};
pub use messaging::BusOpenError;
pub use store::OpenError;
