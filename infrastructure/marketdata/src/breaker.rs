//! The circuit breaker of one provider.
//!
//! - **Closed**: requests go out. `failures` failed requests in a row open it.
//! - **Open**: calls fail at once with `MarketDataError::Unavailable`, sending
//!   nothing, for `cool_down`.
//! - **Half-open**: after the cool-down one request — the probe — goes out;
//!   everyone else still fails fast. The probe's success closes the circuit,
//!   its failure opens it for another cool-down. A probe abandoned without an
//!   answer (its caller gave up) frees the slot for the next caller.
//!
//! A *failure* is a request that got no usable answer from the server: a
//! connection error, a timeout, a cut-short body, HTTP 408 or 5xx. Any other
//! answer — success, 4xx, a 429 or 418 (the rate limiter's business), a body
//! that does not parse — proves the server is there, and counts as success.
//!
//! State changes are logged and exported: the gauge
//! `ordermon_marketdata_breaker_state{provider}` (0 closed, 1 half-open,
//! 2 open) and the counter `ordermon_marketdata_breaker_transitions_total
//! {provider, state}`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::metrics as m;

/// Where a provider's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests go out.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe request is allowed to test the provider.
    HalfOpen,
}

impl BreakerState {
    /// The state's name (`closed`, `open`, `half_open`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    /// When the circuit last opened (while open).
    opened_at: Option<Instant>,
    /// A half-open probe is out.
    probing: bool,
    last_failure: Option<String>,
}

/// What the breaker shows for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) state: BreakerState,
    pub(crate) consecutive_failures: u32,
    /// While open: time until the probe may go.
    pub(crate) probe_in: Option<Duration>,
    pub(crate) last_failure: Option<String>,
}

/// One provider's circuit breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    provider: String,
    failures_to_open: u32,
    cool_down: Duration,
    inner: Mutex<Inner>,
}

/// Leave to send one request; say how it went with [`Permit::success`] or
/// [`Permit::failure`].
#[derive(Debug)]
#[must_use = "a permit must report how the request went"]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub(crate) fn new(provider: &str, failures_to_open: u32, cool_down: Duration) -> Self {
        metrics::gauge!(m::BREAKER_STATE, "provider" => provider.to_owned())
            .set(BreakerState::Closed.gauge());
        Self {
            provider: provider.to_owned(),
            failures_to_open: failures_to_open.max(1),
            cool_down,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                probing: false,
                last_failure: None,
            }),
        }
    }

    /// Leave to send a request, or the time until a probe may go.
    pub(crate) fn try_acquire(&self) -> Result<Permit<'_>, Duration> {
        let mut inner = self.inner.lock();
        match inner.state {
            BreakerState::Closed => Ok(self.permit(false)),
            BreakerState::Open => {
                let since = inner.opened_at.map_or(self.cool_down, |at| at.elapsed());
                if since < self.cool_down {
                    return Err(self.cool_down - since);
                }
                self.move_to(&mut inner, BreakerState::HalfOpen);
                inner.probing = true;
                Ok(self.permit(true))
            }
            BreakerState::HalfOpen if inner.probing => Err(Duration::ZERO),
            BreakerState::HalfOpen => {
                inner.probing = true;
                Ok(self.permit(true))
            }
        }
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            reported: false,
        }
    }

    /// The state now (an open circuit past its cool-down still shows open
    /// until a caller probes).
    pub(crate) fn state(&self) -> BreakerState {
        self.inner.lock().state
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock();
        Snapshot {
            state: inner.state,
            consecutive_failures: inner.consecutive_failures,
            probe_in: match (inner.state, inner.opened_at) {
                (BreakerState::Open, Some(at)) => Some(self.cool_down.saturating_sub(at.elapsed())),
                _ => None,
            },
            last_failure: inner.last_failure.clone(),
        }
    }

    fn move_to(&self, inner: &mut Inner, to: BreakerState) {
        if inner.state == to {
            return;
        }
        let from = inner.state;
        inner.state = to;
        inner.opened_at = (to == BreakerState::Open).then(Instant::now);
        metrics::gauge!(m::BREAKER_STATE, "provider" => self.provider.clone()).set(to.gauge());
        metrics::counter!(m::BREAKER_TRANSITIONS, "provider" => self.provider.clone(), "state" => to.as_str())
            .increment(1);
        match to {
            BreakerState::Open => tracing::warn!(
                provider = %self.provider,
                from = from.as_str(),
                failures = inner.consecutive_failures,
                last_failure = inner.last_failure.as_deref().unwrap_or(""),
                "market data circuit opened"
            ),
            BreakerState::HalfOpen => {
                tracing::info!(provider = %self.provider, "market data circuit half-open: probing");
            }
            BreakerState::Closed => {
                tracing::info!(provider = %self.provider, "market data circuit closed");
            }
        }
    }

    fn on_success(&self, probe: bool) {
        let mut inner = self.inner.lock();
        inner.consecutive_failures = 0;
        if probe {
            inner.probing = false;
        }
        if inner.state != BreakerState::Closed && (probe || inner.state == BreakerState::HalfOpen) {
            self.move_to(&mut inner, BreakerState::Closed);
        }
    }

    fn on_failure(&self, probe: bool, reason: &str) {
        let mut inner = self.inner.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.last_failure = Some(reason.to_owned());
        if probe {
            inner.probing = false;
            self.move_to(&mut inner, BreakerState::Open);
        } else if inner.state == BreakerState::Closed
            && inner.consecutive_failures >= self.failures_to_open
        {
            self.move_to(&mut inner, BreakerState::Open);
        }
    }

    fn on_abandoned(&self, probe: bool) {
        if probe {
            self.inner.lock().probing = false;
        }
    }
}

impl Permit<'_> {
    /// The server answered.
    pub(crate) fn success(mut self) {
        self.reported = true;
        self.breaker.on_success(self.probe);
    }

    /// The request got no usable answer.
    pub(crate) fn failure(mut self, reason: &str) {
        self.reported = true;
        self.breaker.on_failure(self.probe, reason);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.on_abandoned(self.probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_a_probe() {
        let b = Breaker::new("t", 3, Duration::from_millis(30));
        b.try_acquire().unwrap().failure("boom");
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure("boom");
        b.try_acquire().unwrap().failure("boom");
        assert_eq!(b.state(), BreakerState::Closed, "a success reset the count");
        b.try_acquire().unwrap().failure("boom 3");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_err(), "open fails fast");
        assert_eq!(b.snapshot().last_failure.as_deref(), Some("boom 3"));

        std::thread::sleep(Duration::from_millis(40));
        let probe = b.try_acquire().unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire().is_err(), "one probe at a time");
        probe.failure("still down");
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");

        std::thread::sleep(Duration::from_millis(40));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().consecutive_failures, 0);
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let b = Breaker::new("t", 1, Duration::from_millis(1));
        b.try_acquire().unwrap().failure("down");
        std::thread::sleep(Duration::from_millis(5));
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
