//! Alerting and notifications at server level: the real app
//! (`ordermon::build` on port 0) over each backend, with real receivers on
//! loopback — an HTTP server standing in for webhooks, Slack and DingTalk,
//! and an SMTP server for email — so an alert is followed from the API call
//! that causes it to the bytes a receiver gets, through failures, restarts
//! and escalation.
//!
//! `ORDERMON_REQUIRE_SERVICES=1 cargo test -p ordermon-tests --test alerting`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod wire;

mod acceptance;
mod escalation;
mod faults;
mod notifiers;
mod restart;
mod secrets;
mod status;

/// Instantiates async test functions `fn(Backend)` in a module named after
/// the backend.
macro_rules! on_backend {
    ($module:ident, $backend:ident: $($test:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(ordermon_tests::Backend::$backend).await
                }
            )*
        }
    };
}
pub(crate) use on_backend;

/// Instantiates async test functions `fn(Backend)` once per backend; with
/// `durable:` first, once per backend that survives a restart (SQLite,
/// PostgreSQL, MySQL: the in-memory store cannot).
macro_rules! per_backend {
    (durable: $($durable:ident),* $(,)?) => {
        $crate::on_backend!(sqlite, Sqlite: $($durable),*);
        $crate::on_backend!(postgres, Postgres: $($durable),*);
        $crate::on_backend!(mysql, MySql: $($durable),*);
    };
    ($($test:ident),* $(,)?) => {
        $crate::on_backend!(memory, Memory: $($test),*);
        $crate::per_backend!(durable: $($test),*);
    };
}
pub(crate) use per_backend;
