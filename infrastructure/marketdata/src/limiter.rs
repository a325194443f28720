//! The weight budget of one provider, shared by every caller of it (the live
//! feed, backfills, several instruments): the limiter lives in the provider
//! value, which is cloned and `Arc`-shared, never per caller.
//!
//! Three things must all admit a request before it is sent:
//!
//! 1. **The gate**: closed while the exchange asked us to stay away — a
//!    `Retry-After` on 429, an IP ban (418), or its used-weight header
//!    (`X-MBX-USED-WEIGHT-1M`) reporting the minute's weight nearly spent,
//!    in which case it opens when the minute rolls.
//! 2. **The per-second budget** and 3. **the per-minute budget**, linked: a
//!    request of weight `w` takes `w` from both. Each is a governor GCRA
//!    sized so that the weight admitted in *any* sliding window never exceeds
//!    the budget `N`: a bucket of burst `B` refilled over the window at
//!    `N − B` per window admits at most `B + (N − B) = N` in any window. `B`
//!    is half of `N` for the per-second budget (it smooths bursts) and a tenth
//!    of `N` for the per-minute one (it caps the exchange's window), and never
//!    less than the heaviest endpoint's weight. The sustained rate is
//!    therefore `N − B` per window.
//!
//! Admission is serialised by an async mutex so callers are served in
//! arrival order and the two budgets are taken together: the per-second
//! budget is taken first; if the per-minute budget then refuses, the caller
//! waits for it and takes both again (the per-second weight taken in vain
//! only delays, it never lets more through). A caller whose call deadline
//! comes before its turn gets a refusal with the time to wait instead.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;

use crate::metrics as m;

type Gcra = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<Instant>>;

/// Why the gate is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// A `Retry-After` with a 429 (or a 5xx).
    RetryAfter,
    /// An IP ban (418).
    Ban,
    /// The exchange reported the minute's weight nearly spent.
    UsedWeight,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Self::RetryAfter => "retry_after",
            Self::Ban => "ban",
            Self::UsedWeight => "used_weight",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Gate {
    until: Instant,
    why: Closed,
}

/// The budget refused: wait this long before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) retry_after: Duration,
}

/// One provider's weight budget.
pub(crate) struct Limiter {
    provider: String,
    second: Gcra,
    minute: Gcra,
    /// The largest weight one request may take (the smaller burst).
    max_weight: u32,
    turn: tokio::sync::Mutex<()>,
    gate: Mutex<Option<Gate>>,
    /// The exchange's per-minute limit and the share of it that closes the gate.
    server_per_minute: Option<u32>,
    slow_down_at_percent: u8,
    /// The last used weight the exchange reported (`u32::MAX`: none yet).
    used_weight: AtomicU32,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("provider", &self.provider)
            .field("max_weight", &self.max_weight)
            .field("gate", &*self.gate.lock())
            .finish_non_exhaustive()
    }
}

/// The GCRA for a budget of `budget` per `window` with a burst of
/// `budget / burst_divisor` (at least `heaviest`), and that burst.
fn budget(budget: u32, window: Duration, burst_divisor: u32, heaviest: u32) -> (Quota, u32) {
    let burst = budget
        .div_ceil(burst_divisor)
        .max(heaviest)
        .min(budget.saturating_sub(1))
        .max(1);
    let refill = u128::from(budget.saturating_sub(burst).max(1));
    // Rounded up: a period a nanosecond short would let one cell too many
    // through over a long enough run.
    let nanos = window.as_nanos().div_ceil(refill);
    let period = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
    let burst_nz = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst_nz);
    (quota, burst)
}

impl Limiter {
    /// A limiter of `per_second` and `per_minute` weight for requests of at
    /// most `heaviest` weight (the configuration checked both exceed it).
    pub(crate) fn new(
        provider: &str,
        per_second: u32,
        per_minute: u32,
        heaviest: u32,
        server_per_minute: Option<u32>,
        slow_down_at_percent: u8,
    ) -> Self {
        Self::with_windows(
            provider,
            (per_second, Duration::from_secs(1)),
            (per_minute, Duration::from_secs(60)),
            heaviest,
            server_per_minute,
            slow_down_at_percent,
        )
    }

    /// As [`Limiter::new`] with other window lengths (tests shrink the minute).
    fn with_windows(
        provider: &str,
        (per_second, second_window): (u32, Duration),
        (per_minute, minute_window): (u32, Duration),
        heaviest: u32,
        server_per_minute: Option<u32>,
        slow_down_at_percent: u8,
    ) -> Self {
        let (second, second_burst) = budget(per_second, second_window, 2, heaviest);
        let (minute, minute_burst) = budget(per_minute, minute_window, 10, heaviest);
        Self {
            provider: provider.to_owned(),
            second: RateLimiter::direct_with_clock(second, MonotonicClock),
            minute: RateLimiter::direct_with_clock(minute, MonotonicClock),
            max_weight: second_burst.min(minute_burst),
            turn: tokio::sync::Mutex::new(()),
            gate: Mutex::new(None),
            server_per_minute,
            slow_down_at_percent,
            used_weight: AtomicU32::new(u32::MAX),
        }
    }

    /// Waits until `weight` may be sent, or refuses when that would be after
    /// `deadline`. On `Ok` the request must be sent at once.
    pub(crate) async fn acquire(&self, weight: u32, deadline: Instant) -> Result<(), Refused> {
        let started = Instant::now();
        let weight = NonZeroU32::new(weight.clamp(1, self.max_weight)).unwrap_or(NonZeroU32::MIN);
        let Ok(_turn) = tokio::time::timeout_at(deadline.into(), self.turn.lock()).await else {
            return Err(self.refuse("queue", self.gate_wait().unwrap_or(Duration::from_secs(1))));
        };
        loop {
            if let Some(wait) = self.gate_wait() {
                self.wait_or_refuse(wait, deadline, "gate").await?;
                continue;
            }
            match self.second.check_n(weight) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(Instant::now());
                    self.wait_or_refuse(wait, deadline, "budget").await?;
                    continue;
                }
                // Unreachable: weights are clamped to the burst.
                Err(_) => return Err(self.refuse("budget", Duration::from_secs(1))),
            }
            match self.minute.check_n(weight) {
                Ok(Ok(())) => break,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(Instant::now());
                    self.wait_or_refuse(wait, deadline, "budget").await?;
                }
                Err(_) => return Err(self.refuse("budget", Duration::from_secs(1))),
            }
        }
        metrics::histogram!(m::RATE_LIMIT_WAIT, "provider" => self.provider.clone())
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn wait_or_refuse(
        &self,
        wait: Duration,
        deadline: Instant,
        reason: &'static str,
    ) -> Result<(), Refused> {
        if Instant::now() + wait > deadline {
            return Err(self.refuse(reason, wait));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn refuse(&self, reason: &'static str, retry_after: Duration) -> Refused {
        metrics::counter!(m::THROTTLED, "provider" => self.provider.clone(), "reason" => reason)
            .increment(1);
        Refused { retry_after }
    }

    /// How long the gate stays closed, if it is.
    pub(crate) fn gate_wait(&self) -> Option<Duration> {
        let mut gate = self.gate.lock();
        let now = Instant::now();
        match *gate {
            Some(g) if g.until > now => Some(g.until - now),
            Some(_) => {
                *gate = None;
                None
            }
            None => None,
        }
    }

    /// Why the gate is closed and for how long, if it is.
    pub(crate) fn gate_state(&self) -> Option<(&'static str, Duration)> {
        let wait = self.gate_wait()?;
        let why = self.gate.lock().map(|g| g.why.as_str())?;
        Some((why, wait))
    }

    /// Closes the gate for `wait` (or keeps it closed longer if it already is).
    pub(crate) fn close_for(&self, wait: Duration, why: Closed) {
        let until = Instant::now() + wait;
        let mut gate = self.gate.lock();
        if gate.is_none_or(|g| g.until < until) {
            *gate = Some(Gate { until, why });
            tracing::warn!(
                provider = %self.provider,
                reason = why.as_str(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "market data requests paused"
            );
        }
    }

    /// Takes the exchange's report of the weight used this minute: at or
    /// above the threshold, the gate closes until the minute rolls.
    pub(crate) fn observe_used_weight(&self, used: u32) {
        self.used_weight.store(used, Ordering::Relaxed);
        metrics::gauge!(m::USED_WEIGHT, "provider" => self.provider.clone()).set(f64::from(used));
        let Some(limit) = self.server_per_minute else {
            return;
        };
        let threshold = u64::from(limit) * u64::from(self.slow_down_at_percent) / 100;
        if u64::from(used) >= threshold {
            self.close_for(until_next_minute(SystemTime::now()), Closed::UsedWeight);
        }
    }

    /// The last used weight the exchange reported.
    pub(crate) fn used_weight(&self) -> Option<u32> {
        match self.used_weight.load(Ordering::Relaxed) {
            u32::MAX => None,
            n => Some(n),
        }
    }
}

/// Time until the next wall-clock minute (the exchange counts weight per
/// calendar minute), plus a little for clock skew.
fn until_next_minute(now: SystemTime) -> Duration {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let into = u64::try_from(since.as_millis() % 60_000).unwrap_or(0);
    Duration::from_millis(60_000 - into + 250)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_never_admit_more_than_n_per_window() {
        // Burst B and refill (N - B) per window: B + (N - B) = N.
        for (n, div, heaviest) in [
            (10, 2, 2),
            (100, 2, 20),
            (6000, 10, 20),
            (30, 10, 4),
            (3, 2, 2),
        ] {
            let (quota, burst) = budget(n, Duration::from_secs(60), div, heaviest);
            assert!(burst >= heaviest && burst < n, "{n}: burst {burst}");
            let refills =
                Duration::from_secs(60).as_nanos() / quota.replenish_interval().as_nanos();
            assert!(
                u128::from(burst) + refills <= u128::from(n),
                "{n}: {burst} + {refills}"
            );
            assert_eq!(quota.burst_size().get(), burst);
        }
    }

    #[test]
    fn the_next_minute_is_at_most_a_minute_away() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(59_900);
        let wait = until_next_minute(at);
        assert!(wait <= Duration::from_millis(60_250), "{wait:?}");
        let at_20s = UNIX_EPOCH + Duration::from_secs(1_700_000_000 - 1_700_000_000 % 60 + 20);
        assert_eq!(until_next_minute(at_20s), Duration::from_millis(40_250));
    }

    /// The most weight admitted in any window of `window`.
    fn busiest(admitted: &[(Instant, u32)], window: Duration) -> u32 {
        (0..admitted.len())
            .map(|i| {
                admitted[i..]
                    .iter()
                    .take_while(|(at, _)| *at - admitted[i].0 < window)
                    .map(|(_, w)| w)
                    .sum()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn linked_budgets_hold_in_every_sliding_window() {
        // A "second" of 200 ms and a "minute" of 1 s, so a test sees the
        // minute roll several times.
        let limiter = std::sync::Arc::new(Limiter::with_windows(
            "t",
            (10, Duration::from_millis(200)),
            (24, Duration::from_secs(1)),
            3,
            None,
            90,
        ));
        let admitted = std::sync::Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_millis(2500);
        let tasks: Vec<_> = (0..120_u32)
            .map(|i| {
                let (limiter, admitted) = (limiter.clone(), admitted.clone());
                tokio::spawn(async move {
                    let weight = 1 + i % 3;
                    if limiter.acquire(weight, deadline).await.is_ok() {
                        admitted.lock().push((Instant::now(), weight));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut admitted = admitted.lock().clone();
        admitted.sort_by_key(|(at, _)| *at);
        let total: u32 = admitted.iter().map(|(_, w)| w).sum();
        assert!(total > 30, "the minute budget rolled over: {total}");
        // Timestamps are taken just after admission: allow a few ms of noise.
        let second = busiest(&admitted, Duration::from_millis(195));
        let minute = busiest(&admitted, Duration::from_millis(995));
        assert!(second <= 10, "{second} in a second window");
        assert!(minute <= 24, "{minute} in a minute window");
    }

    #[tokio::test]
    async fn admits_within_budget_then_refuses_past_the_deadline() {
        let limiter = Limiter::new("t", 10, 1000, 2, None, 90);
        let deadline = Instant::now() + Duration::from_millis(50);
        // Burst 5 of the per-second budget: two requests of weight 2.
        assert!(limiter.acquire(2, deadline).await.is_ok());
        assert!(limiter.acquire(2, deadline).await.is_ok());
        let refused = limiter.acquire(2, deadline).await.unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_closed_gate_refuses_callers_that_cannot_wait() {
        let limiter = Limiter::new("t", 10, 1000, 2, Some(100), 90);
        limiter.observe_used_weight(50);
        assert_eq!(limiter.gate_wait(), None);
        limiter.observe_used_weight(95);
        let (why, wait) = limiter.gate_state().unwrap();
        assert_eq!(why, "used_weight");
        assert!(wait <= Duration::from_millis(60_250));
        let refused = limiter
            .acquire(1, Instant::now() + Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert_eq!(limiter.used_weight(), Some(95));
    }
}
