//! API tests against the full router on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

mod access;
mod alerts;
mod auth;
mod bars;
mod commands;
mod common;
mod flow;
mod forward;
mod malformed;
mod misc;
mod sign_in;
mod stream;
