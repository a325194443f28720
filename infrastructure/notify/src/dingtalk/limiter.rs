//! A sliding-window limiter: at most `limit` messages in any `window`. The
//! DingTalk notifier takes a slot before each message, so it never goes past
//! the robot's 20 a minute; when the window is full it tells the caller how
//! long until the oldest message leaves it, and sends nothing.
//!
//! The window is per process: several instances posting to one robot share
//! DingTalk's limit but not this one, and the robot's own `130101` answer
//! covers that case.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// At most `limit` acquisitions per `window`.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: usize,
    window: Duration,
    /// When each message of the current window was sent, oldest first.
    sent: Mutex<VecDeque<Instant>>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            sent: Mutex::new(VecDeque::with_capacity(limit)),
        }
    }

    /// Takes a slot at `now`; when the window is full, how long until a slot
    /// frees instead.
    pub(crate) fn try_acquire(&self, now: Instant) -> Result<Instant, Duration> {
        let mut sent = self.sent.lock();
        while sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            sent.pop_front();
        }
        if sent.len() < self.limit {
            sent.push_back(now);
            return Ok(now);
        }
        let wait = sent.front().map_or(self.window, |oldest| {
            (*oldest + self.window).saturating_duration_since(now)
        });
        Err(wait)
    }

    /// Gives back the slot taken at `at` by a message that never left (the
    /// connection failed), so it does not count against the limit.
    pub(crate) fn release(&self, at: Instant) {
        let mut sent = self.sent.lock();
        if let Some(i) = sent.iter().rposition(|t| *t == at) {
            sent.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_then_says_when_a_slot_frees() {
        let w = SlidingWindow::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(w.try_acquire(t0).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_secs(10)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_secs(20)).is_ok());
        assert_eq!(
            w.try_acquire(t0 + Duration::from_secs(30)),
            Err(Duration::from_secs(30))
        );
        // The first message leaves the window at t0 + 60 s.
        assert_eq!(
            w.try_acquire(t0 + Duration::from_millis(59_999)),
            Err(Duration::from_millis(1))
        );
        assert!(w.try_acquire(t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(
            w.try_acquire(t0 + Duration::from_secs(61)),
            Err(Duration::from_secs(9))
        );
    }

    #[test]
    fn a_released_slot_is_free_again() {
        let w = SlidingWindow::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        let slot = w.try_acquire(t0).unwrap();
        assert!(w.try_acquire(t0).is_err());
        w.release(slot);
        assert!(w.try_acquire(t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_zero_limit_never_allows() {
        let w = SlidingWindow::new(0, Duration::from_secs(60));
        assert_eq!(w.try_acquire(Instant::now()), Err(Duration::from_secs(60)));
    }
}
