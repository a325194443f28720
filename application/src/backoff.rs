//! Exponential backoff with jitter for retry and reconnect loops (backon):
//! the outbox relay, the bus consumers, and the adapters' own reconnects
//! (the Redis bus and the Redis cache's invalidation feed).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays that double from `min` up to `max`, each 50–100 % of the nominal
/// one; [`Backoff::reset`] starts over after a success.
#[derive(Debug)]
pub struct Backoff {
    schedule: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// A schedule from `min` to `max` (`max` below `min` counts as `min`).
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
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

    /// The next delay.
    pub fn delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.delays = self.schedule.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_and_start_over_on_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(300));
        let d: Vec<Duration> = (0..5).map(|_| b.delay()).collect();
        assert!(d[0] >= ms(50) && d[0] <= ms(100), "{d:?}");
        assert!(d[1] >= ms(100) && d[1] <= ms(200), "{d:?}");
        assert!(
            d[2..].iter().all(|d| *d >= ms(150) && *d <= ms(300)),
            "{d:?}"
        );
        b.reset();
        assert!(b.delay() <= ms(100));
    }
}
