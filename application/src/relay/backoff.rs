//! The retry schedule of the relay, shared with the bus consumers.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Exponential backoff with jitter (backon): each delay is 50–100 % of a
/// nominal one that doubles from `min` up to `max`; `reset` starts over
/// after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    schedule: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        // backon's jitter adds up to the delay itself: half the nominal
        // delays, jittered, fall in [d/2, d).
        let schedule = ExponentialBuilder::new()
            .with_min_delay(min / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            schedule,
            delays: schedule.build(),
            max,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    pub(crate) fn reset(&mut self) {
        self.delays = self.schedule.build();
    }
}
