//! ordermon's simulated market: what the default run trades on when nothing
//! real is configured.
//!
//! - [`paper`]: the paper-trading venue, the domain's `ExecutionVenue` port
//!   filling orders against the application's quote book;
//! - [`feed`]: the simulated quote feed, a `MarketDataProvider` publishing a
//!   random walk of quotes to the quote book, with the `[feed]` settings.
//!
//! Both are adapters: they depend on the domain and the application, and only
//! the composition root (`ordermon`) wires them in.

pub mod feed;
pub mod paper;
