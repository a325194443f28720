//! Sign-in attempt limits: one GCRA bucket per account and one per client
//! address, each refilling over a minute. An attempt must pass both; a
//! refused attempt is told how long to wait and its password is never
//! checked, so guessing costs the guesser time and the server nothing.
//!
//! The address key is the IPv4 address, or the /64 prefix of an IPv6 one
//! (one host usually holds a whole /64, so per-address limits would not
//! bind). Both maps only grow with distinct keys; every few thousand attempts
//! the keys whose buckets are full again are dropped.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ordermon_domain::ids::UserId;

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Attempts between two sweeps of the idle keys.
const SWEEP_EVERY: u64 = 4096;

/// The address an attempt is counted against: IPv4 as is (IPv4-mapped IPv6
/// too), IPv6 by its /64 prefix.
#[must_use]
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why an attempt was refused: wait this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) retry_after: Duration,
}

/// The per-account and per-address buckets.
pub(crate) struct AttemptLimits<C: Clock = DefaultClock> {
    accounts: Keyed<UserId, C>,
    addresses: Keyed<IpAddr, C>,
    clock: C,
    attempts: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for AttemptLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptLimits")
            .field("accounts", &self.accounts.len())
            .field("addresses", &self.addresses.len())
            .finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl AttemptLimits {
    /// `per_account` and `per_address` attempts a minute (0 counts as 1),
    /// each allowed in a burst.
    pub(crate) fn new(per_account: u32, per_address: u32) -> Self {
        Self::with_clock(per_account, per_address, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AttemptLimits<C> {
    /// As [`AttemptLimits::new`], on `clock` (tests move a fake one).
    pub(crate) fn with_clock(per_account: u32, per_address: u32, clock: C) -> Self {
        Self {
            accounts: RateLimiter::new(
                per_minute(per_account),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            addresses: RateLimiter::new(
                per_minute(per_address),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
            attempts: AtomicU64::new(0),
        }
    }

    /// Counts an attempt from `ip` (and on `account`, when the name is a
    /// valid user id): the address first, so an address already refused
    /// does not use up the account's budget.
    pub(crate) fn check(&self, account: Option<&UserId>, ip: IpAddr) -> Result<(), Limited> {
        self.sweep();
        let now = || self.clock.now();
        self.addresses
            .check_key(&client_key(ip))
            .map_err(|not| Limited {
                retry_after: not.wait_time_from(now()),
            })?;
        if let Some(account) = account {
            self.accounts.check_key(account).map_err(|not| Limited {
                retry_after: not.wait_time_from(now()),
            })?;
        }
        Ok(())
    }

    fn sweep(&self) {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.accounts.retain_recent();
            self.addresses.retain_recent();
            self.accounts.shrink_to_fit();
            self.addresses.shrink_to_fit();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_account_has_its_own_budget() {
        let clock = FakeRelativeClock::default();
        let limits = AttemptLimits::with_clock(3, 100, clock.clone());
        let (alice, bob) = (UserId::new("alice").unwrap(), UserId::new("bob").unwrap());
        for _ in 0..3 {
            limits.check(Some(&alice), ip("10.0.0.1")).unwrap();
        }
        let refused = limits.check(Some(&alice), ip("10.0.0.2")).unwrap_err();
        // Three a minute: one more every 20 s.
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        limits.check(Some(&bob), ip("10.0.0.1")).unwrap();
        clock.advance(Duration::from_secs(20));
        limits.check(Some(&alice), ip("10.0.0.1")).unwrap();
        assert!(limits.check(Some(&alice), ip("10.0.0.1")).is_err());
    }

    #[test]
    fn each_address_has_its_own_budget_whatever_the_account() {
        let clock = FakeRelativeClock::default();
        let limits = AttemptLimits::with_clock(100, 2, clock.clone());
        limits.check(None, ip("192.0.2.1")).unwrap();
        let carol = UserId::new("carol").unwrap();
        limits.check(Some(&carol), ip("192.0.2.1")).unwrap();
        let refused = limits.check(Some(&carol), ip("192.0.2.1")).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        limits.check(Some(&carol), ip("192.0.2.2")).unwrap();
        // The mapped form and the plain form are one address.
        assert!(limits.check(None, ip("::ffff:192.0.2.1")).is_err());
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        let limits = AttemptLimits::with_clock(100, 1, FakeRelativeClock::default());
        limits.check(None, ip("2001:db8::1")).unwrap();
        assert!(limits.check(None, ip("2001:db8::ffff")).is_err());
        limits.check(None, ip("2001:db8:0:1::1")).unwrap();
    }
}
