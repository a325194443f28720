//! The alerting service over a real engine (in-memory store) and a manual
//! clock: each built-in rule made to happen through the engine's own use
//! cases, the lifecycle, silences, inhibition, grouping, escalation and
//! delivery with a recording notifier (the real channels are tested against
//! real receivers in the integration harness).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod lifecycle;
mod rules;
