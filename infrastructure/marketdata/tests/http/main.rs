//! The providers against a scripted local server: recorded payloads in the
//! providers' formats, and faults (429, 418, 5xx bursts, slow and cut-short
//! answers, bad payloads) to check the budget, retries, breaker, cache and
//! redaction.

// Test helpers outside `#[test]` functions panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binance;
mod cache;
mod faults;
mod limits;
mod observability;
mod secrets;
mod support;
mod yahoo;
