//! Exponential backoff with jitter for reconnect loops (backon): the bus's
//! consumers and the cache's invalidation feed.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays that double from `min` up to `max`, each 50–100 % of the
/// nominal one (backon).
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

    /// The next delay.
    pub(crate) fn delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Back to the first delay (after a success).
    pub(crate) fn reset(&mut self) {
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
