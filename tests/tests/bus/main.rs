//! The bus contract suite, run against every bus: in-process, RabbitMQ, Kafka
//! and Redis Streams; fault tests (broker connections broken in the middle of
//! 10,000 events); and the outbox relay over each bus. Every test gets uniquely
//! named broker objects, removed afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod faults;
mod relay;
mod support;

/// Declares one test per contract test for a bus kind.
macro_rules! bus_tests {
    ($kind:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(t) = ordermon_tests::bus::provision_bus(
                    $kind,
                    ordermon_tests::bus::BusOptions::default(),
                )
                .await
                else {
                    return;
                };
                crate::$module::$test(&t).await;
            }
        )*
    };
}

/// Every bus test, for one kind.
macro_rules! bus_suite {
    ($name:ident, $kind:expr) => {
        mod $name {
            bus_tests!($kind;
                contract::publish_and_consume,
                contract::order_per_key,
                contract::redelivery_after_failure,
                contract::dead_letter_after_max_attempts,
                contract::replay_from_dead_letters,
                contract::duplicates_have_no_double_effect,
                contract::backlog_counts_what_the_group_has_left,
                faults::connections_broken_mid_stream,
                relay::relay_publishes_each_event_once_in_commit_order,
            );
        }
    };
}

bus_suite!(memory, ordermon_tests::bus::BusKind::Memory);
bus_suite!(rabbitmq, ordermon_tests::bus::BusKind::RabbitMq);
bus_suite!(kafka, ordermon_tests::bus::BusKind::Kafka);
bus_suite!(redis, ordermon_tests::bus::BusKind::Redis);

/// Kafka refuses a message over its size limit (1 MB by default) for good: the
/// relay sets such a row aside instead of retrying it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_refuses_a_message_over_its_size_limit_for_good() {
    use ordermon_domain::ids::EventId;
    use ordermon_domain::ports::{BusError, BusMessage};
    let Some(t) = ordermon_tests::bus::provision_bus(
        ordermon_tests::bus::BusKind::Kafka,
        ordermon_tests::bus::BusOptions::default(),
    )
    .await
    else {
        return;
    };
    let message = |bytes: usize| BusMessage {
        id: EventId::generate(),
        topic: "monitor.stopped.alice".to_owned(),
        key: "alice".to_owned(),
        payload: vec![b'x'; bytes],
        headers: std::collections::BTreeMap::new(),
    };
    let err = t.bus.publish(&[message(2_000_000)]).await.unwrap_err();
    assert!(matches!(err, BusError::Rejected(_)), "{err:?}");
    t.bus.publish(&[message(100)]).await.unwrap();
}
