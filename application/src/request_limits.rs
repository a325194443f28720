//! API request limits: one GCRA bucket per user and one per client address,
//! each allowing `per_second` requests a second on average with bursts of as
//! many again. A request over either limit is refused before it does any work
//! (no store read, no database write), and told how long to wait.
//!
//! Addresses are counted as sign-in attempts are (IPv4, or the /64 of an IPv6
//! address). Both maps only grow with distinct keys; every few thousand
//! requests the keys whose buckets are full again are dropped.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ordermon_domain::ids::UserId;

use crate::sign_in::client_key;

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Requests between two sweeps of the idle keys.
const SWEEP_EVERY: u64 = 8192;

/// Settings: requests a second per user and per client address (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestLimitsConfig {
    /// Per signed-in user (every token of the user shares it).
    pub per_user_per_second: u32,
    /// Per client address.
    pub per_ip_per_second: u32,
}

/// A refused request: wait this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the request would pass.
    pub retry_after: Duration,
}

/// The per-user and per-address buckets.
pub struct RequestLimits<C: Clock = DefaultClock> {
    users: Option<Keyed<UserId, C>>,
    addresses: Option<Keyed<IpAddr, C>>,
    clock: C,
    seen: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for RequestLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimits")
            .field("users", &self.users.as_ref().map(RateLimiter::len))
            .field("addresses", &self.addresses.as_ref().map(RateLimiter::len))
            .finish_non_exhaustive()
    }
}

fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RequestLimits {
    /// Limits from `config` on the real clock.
    #[must_use]
    pub fn new(config: RequestLimitsConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RequestLimits<C> {
    /// As [`RequestLimits::new`], on `clock` (tests move a fake one).
    #[must_use]
    pub fn with_clock(config: RequestLimitsConfig, clock: C) -> Self {
        Self {
            users: quota(config.per_user_per_second)
                .map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            addresses: quota(config.per_ip_per_second)
                .map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            clock,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether client addresses are limited at all.
    #[must_use]
    pub fn limits_addresses(&self) -> bool {
        self.addresses.is_some()
    }

    /// Counts a request of `user`.
    ///
    /// # Errors
    /// [`Throttled`] when the user is over its limit.
    pub fn check_user(&self, user: &UserId) -> Result<(), Throttled> {
        self.sweep();
        match &self.users {
            Some(l) => self.verdict(l.check_key(user), "user"),
            None => Ok(()),
        }
    }

    /// Counts a request from `ip`.
    ///
    /// # Errors
    /// [`Throttled`] when the address is over its limit.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.sweep();
        match &self.addresses {
            Some(l) => self.verdict(l.check_key(&client_key(ip)), "address"),
            None => Ok(()),
        }
    }

    fn verdict(
        &self,
        outcome: Result<(), governor::NotUntil<C::Instant>>,
        by: &'static str,
    ) -> Result<(), Throttled> {
        outcome.map_err(|not_until| {
            metrics::counter!("ordermon_http_throttled_total", "by" => by).increment(1);
            Throttled {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }
        })
    }

    fn sweep(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Some(l) = &self.users {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &self.addresses {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::Ipv4Addr;

    fn limits(user: u32, ip: u32) -> (RequestLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let l = RequestLimits::with_clock(
            RequestLimitsConfig {
                per_user_per_second: user,
                per_ip_per_second: ip,
            },
            clock.clone(),
        );
        (l, clock)
    }

    #[test]
    fn a_user_gets_a_burst_then_its_rate() {
        let (l, clock) = limits(10, 0);
        let alice = UserId::new("alice").unwrap();
        let bob = UserId::new("bob").unwrap();
        for _ in 0..20 {
            assert!(l.check_user(&alice).is_ok());
        }
        let refused = l.check_user(&alice).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_millis(100));
        assert!(l.check_user(&bob).is_ok(), "each user has its own bucket");
        clock.advance(Duration::from_millis(100));
        assert!(
            l.check_user(&alice).is_ok(),
            "one more after a tenth of a second"
        );
        assert!(l.check_user(&alice).is_err());
        // Addresses unlimited here.
        for _ in 0..1000 {
            assert!(l.check_address(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_ok());
        }
    }

    #[test]
    fn addresses_are_limited_by_their_key() {
        let (l, _) = limits(0, 5);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..10 {
            assert!(l.check_address(a).is_ok());
        }
        assert!(l.check_address(same_64).is_err(), "one /64, one bucket");
        assert!(l.check_address("192.0.2.7".parse().unwrap()).is_ok());
        assert!(l.check_user(&UserId::new("alice").unwrap()).is_ok());
    }
}
