//! Exponential backoff with jitter for retrying transient failures.

use std::time::Duration;

use rand::Rng as _;

/// A bounded schedule of delays: `initial`, doubling up to `max`, each with
/// jitter in `[d/2, d]` so retrying callers spread out.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    remaining: u32,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule for `attempts` tries in all (so `attempts - 1` delays).
    pub(crate) fn new(attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            remaining: attempts.saturating_sub(1),
            next: initial,
            max,
        }
    }

    /// The delay before the next attempt, or `None` when attempts are used up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let full = self.next.min(self.max);
        self.next = self.next.saturating_mul(2);
        let nanos = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
        let jittered = rand::rng().random_range(nanos / 2..=nanos);
        Some(Duration::from_nanos(jittered))
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
