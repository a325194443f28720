//! Exponential backoff with jitter for retrying transient failures (backon).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// A bounded schedule of delays: `initial`, doubling up to `max`, each with
/// jitter in `[d/2, d]` so retrying callers spread out.
#[derive(Debug)]
pub(crate) struct Backoff {
    delays: ExponentialBackoff,
}

impl Backoff {
    /// A schedule for `attempts` tries in all (so `attempts - 1` delays).
    pub(crate) fn new(attempts: u32, initial: Duration, max: Duration) -> Self {
        let delays = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        // backon's jitter adds up to the delay itself: half the nominal
        // delays, jittered, fall in [d/2, d).
        let delays = ExponentialBuilder::new()
            .with_min_delay(initial.min(max) / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(delays)
            .build();
        Self { delays }
    }

    /// The delay before the next attempt, or `None` when attempts are used up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        self.delays.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_growing() {
        let mut b = Backoff::new(4, Duration::from_millis(10), Duration::from_millis(25));
        let d: Vec<Duration> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(d.len(), 3);
        assert!(d[0] >= Duration::from_millis(5) && d[0] <= Duration::from_millis(10));
        assert!(d[1] >= Duration::from_millis(10) && d[1] <= Duration::from_millis(20));
        assert!(d[2] >= Duration::from_millis(12) && d[2] <= Duration::from_millis(25));
        assert!(
            Backoff::new(1, Duration::ZERO, Duration::ZERO)
                .next_delay()
                .is_none()
        );
    }
}
