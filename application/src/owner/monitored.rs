//! The users whose monitor runs here, and who of them a tick round wakes.
//!
//! Waking an owner costs a mailbox send, a task switch and its checks: at
//! tens of thousands of monitors, a tick a second for each was a large part
//! of the engine's CPU, while most monitors run only strategies that never
//! take a timer callback. So a round ticks the monitors with a strategy that
//! takes timer callbacks, plus one in [`CHECK_EVERY`] of the others, in
//! turn: every monitor's checks (stuck orders, silent strategies) run at
//! least every `CHECK_EVERY` rounds, spread evenly over them.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use ordermon_domain::ids::UserId;

/// Every how many tick rounds the monitors without a timed strategy are
/// ticked for their checks.
pub(crate) const CHECK_EVERY: u64 = 5;

/// One monitored user.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// A running strategy takes timer callbacks: ticked every round.
    timed: bool,
    /// The round (modulo [`CHECK_EVERY`]) its checks run in otherwise.
    turn: u64,
    /// The last scan pass that found the user in the database, or the pass
    /// running when the monitor started.
    seen: u64,
}

/// The users whose monitor runs (the owner is the source of truth).
#[derive(Debug, Default)]
pub(crate) struct MonitoredUsers {
    users: DashMap<UserId, Entry>,
    /// Hands out turns in order, so they stay even.
    next_turn: AtomicU64,
    /// The latest scan pass begun.
    pass: AtomicU64,
    /// Monitors started, stopped or asked to start so far: the scan may
    /// skip reading the users only while this has not moved.
    changes: AtomicU64,
}

impl MonitoredUsers {
    /// The monitor of `user` started (with no timed strategy yet).
    pub(crate) fn insert(&self, user: UserId) {
        let turn = self.next_turn.fetch_add(1, Ordering::Relaxed) % CHECK_EVERY;
        let seen = self.pass.load(Ordering::Acquire);
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.users.insert(
            user,
            Entry {
                timed: false,
                turn,
                seen,
            },
        );
    }

    /// The monitor of `user` stopped.
    pub(crate) fn remove(&self, user: &UserId) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.users.remove(user);
    }

    /// A monitor was asked to start (by the scan, a user's creation or a
    /// user taken over from another instance): whether it starts or not,
    /// the next scan reads the users.
    pub(crate) fn asked_to_start(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times the set changed or was asked to (see `changes`).
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Whether a running strategy of `user` takes timer callbacks.
    pub(crate) fn set_timed(&self, user: &UserId, timed: bool) {
        if let Some(mut e) = self.users.get_mut(user) {
            e.timed = timed;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    pub(crate) fn contains(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// Begins a scan pass, before the scan reads the users from the
    /// database: monitors started from now on count as found by it.
    /// Passes must not overlap (the scan runs one at a time).
    pub(crate) fn begin_pass(&self) -> u64 {
        self.pass.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The scan pass `pass` found `user` in the database; whether its
    /// monitor runs.
    pub(crate) fn found(&self, user: &UserId, pass: u64) -> bool {
        match self.users.get_mut(user) {
            Some(mut e) => {
                e.seen = e.seen.max(pass);
                true
            }
            None => false,
        }
    }

    /// The users whose monitor runs though scan pass `pass` did not find
    /// them in the database (they were removed there).
    pub(crate) fn not_found(&self, pass: u64) -> Vec<UserId> {
        self.users_where(|e| e.seen < pass)
    }

    /// The users tick round `round` wakes: the timed ones, and those whose
    /// turn for checks it is.
    pub(crate) fn tick_round(&self, round: u64) -> Vec<UserId> {
        let turn = round % CHECK_EVERY;
        self.users_where(|e| e.timed || e.turn == turn)
    }

    fn users_where(&self, keep: impl Fn(&Entry) -> bool) -> Vec<UserId> {
        self.users
            .iter()
            .filter(|e| keep(e.value()))
            .map(|e| e.key().clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: usize) -> UserId {
        UserId::new(format!("u{n}")).unwrap()
    }

    #[test]
    fn every_monitor_is_ticked_once_in_a_cycle_of_rounds_and_timed_ones_every_round() {
        let m = MonitoredUsers::default();
        for n in 0..23 {
            m.insert(user(n));
        }
        m.set_timed(&user(7), true);
        let mut ticks = std::collections::HashMap::new();
        let mut sizes = Vec::new();
        for round in 0..CHECK_EVERY {
            let r = m.tick_round(round);
            sizes.push(r.len());
            for u in r {
                *ticks.entry(u).or_insert(0) += 1;
            }
        }
        assert_eq!(ticks.len(), 23, "every monitor's checks run in a cycle");
        for (u, n) in &ticks {
            let want = if *u == user(7) { CHECK_EVERY } else { 1 };
            assert_eq!(*n, want, "{u}");
        }
        // Turns are even: rounds differ by at most one user (plus the timed one).
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 2, "{sizes:?}");
        m.set_timed(&user(7), false);
        m.remove(&user(3));
        let all: usize = (0..CHECK_EVERY).map(|r| m.tick_round(r).len()).sum();
        assert_eq!(all, 22);
        assert!(!m.contains(&user(3)));
    }

    #[test]
    fn starting_stopping_or_asking_to_start_a_monitor_counts_as_a_change() {
        let m = MonitoredUsers::default();
        let c0 = m.changes();
        m.insert(user(1));
        let c1 = m.changes();
        assert!(c1 > c0);
        m.asked_to_start();
        let c2 = m.changes();
        assert!(c2 > c1);
        m.set_timed(&user(1), true);
        let _ = m.found(&user(1), m.begin_pass());
        let _ = m.tick_round(0);
        assert_eq!(
            m.changes(),
            c2,
            "ticks, timers and scan passes are no change"
        );
        m.remove(&user(1));
        assert!(m.changes() > c2);
    }

    #[test]
    fn a_scan_pass_tells_the_monitors_of_users_it_did_not_find() {
        let m = MonitoredUsers::default();
        m.insert(user(1));
        m.insert(user(2));
        let pass = m.begin_pass();
        // Started while the pass reads the database: not taken for removed.
        m.insert(user(3));
        assert!(m.found(&user(1), pass));
        assert!(!m.found(&user(9), pass), "not monitored");
        assert_eq!(m.not_found(pass), vec![user(2)]);
        let next = m.begin_pass();
        assert!(m.found(&user(2), next));
        let mut missing = m.not_found(next);
        missing.sort();
        assert_eq!(missing, vec![user(1), user(3)]);
    }
}
