//! The HTTP suites of the integration harness: the real app (`ordermon::build`)
//! on port 0 over each backend — memory, SQLite, PostgreSQL and MySQL — driven
//! through its REST API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod concurrency;
mod dashboard;
mod lifecycle;
mod malformed;
mod monitoring;
mod sign_in;
mod strategies;

/// Instantiates async test functions `fn(Backend)` once per backend.
macro_rules! per_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread")] async fn $test() { super::$test(ordermon_tests::Backend::Memory).await } )*
        }
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread")] async fn $test() { super::$test(ordermon_tests::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread")] async fn $test() { super::$test(ordermon_tests::Backend::Postgres).await } )*
        }
        mod mysql {
            $( #[tokio::test(flavor = "multi_thread")] async fn $test() { super::$test(ordermon_tests::Backend::MySql).await } )*
        }
    };
}
pub(crate) use per_backend;
