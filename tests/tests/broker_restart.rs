//! RabbitMQ restarted in the middle of a stream of 10,000 events going through
//! the outbox relay and the consumer framework: every event arrives, none has a
//! double effect, and nothing is left in the outbox. Unlike the fault suite in
//! `bus/` (which breaks only this process's connections), the broker itself
//! goes down (`rabbitmqctl stop_app`) and comes back (`start_app`), so what
//! it held in durable queues must survive it.
//!
//! It stops the shared broker, so it is ignored in the parallel run and run on
//! its own afterwards: `cargo test -p ordermon-tests --test broker_restart --
//! --ignored --test-threads=1`. A guard starts the broker again even when the
//! test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fault suite's stream fixture and helpers (this binary uses a part).
#[allow(dead_code)]
#[path = "bus/faults.rs"]
mod faults;
#[allow(dead_code)]
#[path = "bus/support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use faults::{Pace, Stream};
use ordermon_tests::bus::{BusKind, BusOptions, provision_bus};

/// Starts the broker's application again when dropped.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        rabbitmqctl("start_app");
    }
}

fn rabbitmqctl(action: &str) {
    let out = Command::new("rabbitmqctl")
        .args(["-q", action])
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {action}: {e}"));
    assert!(
        out.status.success(),
        "rabbitmqctl {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts RabbitMQ: run alone with --ignored --test-threads=1"]
async fn rabbitmq_restarted_mid_stream_loses_and_doubles_nothing() {
    let Some(t) = provision_bus(BusKind::RabbitMq, BusOptions::default()).await else {
        return;
    };
    // Commits keep coming the whole time, the restart included.
    let stream = Stream::start(
        &t,
        "restart",
        Pace {
            between_commits: Duration::from_millis(10),
            relay_backoff: (Duration::from_millis(50), Duration::from_secs(1)),
            settle: Duration::from_secs(1),
        },
    )
    .await;
    stream.handled(2000, Duration::from_secs(60)).await;
    {
        let _guard = Restart;
        rabbitmqctl("stop_app");
        eprintln!(
            "rabbitmq stopped with {} events handled",
            stream.effects.distinct()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("rabbitmq started again");
    stream.finish(&t).await;
}
