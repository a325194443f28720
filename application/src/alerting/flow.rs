//! A user's order flow in time buckets: counters per 10-second bucket over the
//! last 15 minutes, summed over any window as a sliding window (the oldest
//! bucket counts for the part of it still inside the window), so a 10-second
//! rate does not jump at bucket boundaries.
//!
//! Every user is evaluated every second, so a window's sum must be cheap and
//! the ring small: it keeps the running total of everything ever added and,
//! per bucket, only the total when the bucket began (and the bucket's slowest
//! acknowledgement). A window is then a difference of two totals (plus the
//! weighted part of its oldest bucket), whatever its length; only the slowest
//! acknowledgement, a maximum, is found by looking at the window's buckets.

use chrono::{DateTime, Utc};

/// Length of a bucket, seconds.
pub const BUCKET_SECS: i64 = 10;
/// Buckets kept: 15 minutes.
pub const BUCKETS: usize = 90;

/// The bucket index of an instant.
#[must_use]
pub fn bucket_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(BUCKET_SECS)
}

/// One bucket's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Orders submitted.
    pub orders: f64,
    /// Denied or rejected.
    pub rejects: f64,
    /// Canceled.
    pub cancels: f64,
    /// Orders that got their first fill.
    pub first_fills: f64,
    /// Fills.
    pub fills: f64,
    /// Orders identical to one sent less than 10 s before.
    pub duplicates: f64,
    /// Denied for the orders-per-second limit.
    pub throttled: f64,
    /// Overfills and refused execution reports.
    pub mismatches: f64,
    /// Acknowledgements measured.
    pub acks: f64,
    /// Slowest acknowledgement, ms (a maximum, not a sum; not filled in by
    /// [`FlowRing::window`]: see [`FlowRing::ack_max`]).
    pub ack_max_ms: f64,
    /// Sum of the orders' notional (first currency-agnostic: a statistic).
    pub notional: f64,
}

impl Counts {
    /// `part ÷ orders`, 0 without orders.
    #[must_use]
    pub fn per_order(&self, part: f64) -> f64 {
        if self.orders > 0.0 {
            part / self.orders
        } else {
            0.0
        }
    }
}

/// Running totals: counts wrap (differences of wrapping counters are exact
/// as long as a window holds fewer than 2³² of one thing).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    orders: u32,
    rejects: u32,
    cancels: u32,
    first_fills: u32,
    fills: u32,
    duplicates: u32,
    throttled: u32,
    mismatches: u32,
    acks: u32,
    notional: f64,
}

/// A count of whole events from `Counts` (they are whole by construction).
fn whole(x: f64) -> u32 {
    if x.is_finite() && x > 0.0 {
        x.round().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

impl Totals {
    fn add(&mut self, d: &Counts) {
        self.orders = self.orders.wrapping_add(whole(d.orders));
        self.rejects = self.rejects.wrapping_add(whole(d.rejects));
        self.cancels = self.cancels.wrapping_add(whole(d.cancels));
        self.first_fills = self.first_fills.wrapping_add(whole(d.first_fills));
        self.fills = self.fills.wrapping_add(whole(d.fills));
        self.duplicates = self.duplicates.wrapping_add(whole(d.duplicates));
        self.throttled = self.throttled.wrapping_add(whole(d.throttled));
        self.mismatches = self.mismatches.wrapping_add(whole(d.mismatches));
        self.acks = self.acks.wrapping_add(whole(d.acks));
        if d.notional.is_finite() {
            self.notional += d.notional;
        }
    }

    /// `out += w × (self − earlier)`.
    fn diff_into(&self, earlier: &Self, w: f64, out: &mut Counts) {
        let f = |a: u32, b: u32| f64::from(a.wrapping_sub(b)) * w;
        out.orders += f(self.orders, earlier.orders);
        out.rejects += f(self.rejects, earlier.rejects);
        out.cancels += f(self.cancels, earlier.cancels);
        out.first_fills += f(self.first_fills, earlier.first_fills);
        out.fills += f(self.fills, earlier.fills);
        out.duplicates += f(self.duplicates, earlier.duplicates);
        out.throttled += f(self.throttled, earlier.throttled);
        out.mismatches += f(self.mismatches, earlier.mismatches);
        out.acks += f(self.acks, earlier.acks);
        out.notional += (self.notional - earlier.notional) * w;
    }
}

/// One bucket: when it began (the running totals then) and its slowest
/// acknowledgement. Its own counts are the difference to the next bucket's
/// start (or to the running total for the newest).
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: i64,
    start: Totals,
    ack_max_ms: f32,
}

/// The ring of buckets (about 64 bytes a bucket, 6 KB a user).
#[derive(Debug, Clone)]
pub struct FlowRing {
    slots: Box<[Slot; BUCKETS]>,
    /// Everything ever added.
    total: Totals,
    /// The newest bucket written.
    newest: i64,
}

impl Default for FlowRing {
    fn default() -> Self {
        Self {
            slots: Box::new(
                [Slot {
                    index: i64::MIN,
                    start: Totals::default(),
                    ack_max_ms: 0.0,
                }; BUCKETS],
            ),
            total: Totals::default(),
            newest: i64::MIN,
        }
    }
}

fn slot_of(index: i64) -> usize {
    usize::try_from(index.rem_euclid(BUCKETS as i64)).unwrap_or(0)
}

impl FlowRing {
    /// Adds what `f` adds to an empty [`Counts`] to the bucket holding `t`
    /// (counts are whole numbers; `ack_max_ms` is a maximum).
    pub fn bump(&mut self, t: DateTime<Utc>, f: impl Fn(&mut Counts)) {
        let index = bucket_of(t);
        let mut delta = Counts::default();
        f(&mut delta);
        let total = self.total;
        let slot = &mut self.slots[slot_of(index)];
        if slot.index != index {
            *slot = Slot {
                index,
                start: total,
                ack_max_ms: 0.0,
            };
        }
        slot.ack_max_ms = slot.ack_max_ms.max(delta.ack_max_ms as f32);
        self.total.add(&delta);
        self.newest = self.newest.max(index);
    }

    /// The running total before bucket `index` began.
    fn total_before(&self, index: i64) -> Totals {
        // The first bucket at or after `index` that holds data began with the
        // total before `index` (nothing was added in between).
        let mut i = index.max(self.newest - (BUCKETS as i64 - 1));
        while i <= self.newest {
            let s = &self.slots[slot_of(i)];
            if s.index == i {
                return s.start;
            }
            i += 1;
        }
        self.total
    }

    /// The counters over the `window_secs` before `now`, the oldest bucket
    /// weighted by how much of it lies inside the window (`ack_max_ms` is
    /// left at 0: see [`FlowRing::ack_max`]).
    #[must_use]
    pub fn window(&self, now: DateTime<Utc>, window_secs: i64) -> Counts {
        let window = window_secs.clamp(1, BUCKET_SECS * BUCKETS as i64);
        let current = bucket_of(now);
        let into = (now.timestamp_millis() - current * BUCKET_SECS * 1000) as f64 / 1000.0;
        // The window [now - window, now] holds the current bucket up to
        // `into` seconds, then whole buckets back, then part of the oldest.
        let before_current = (window as f64 - into).max(0.0);
        let whole_buckets = (before_current / BUCKET_SECS as f64).floor() as i64;
        let part = before_current / BUCKET_SECS as f64 - whole_buckets as f64;
        let first_whole = (current - whole_buckets).max(current - (BUCKETS as i64 - 1));
        let mut out = Counts::default();
        let from = self.total_before(first_whole);
        // Up to the end of the current bucket (events stamped later, by a
        // clock ahead of ours, are not in the window yet).
        let to = self.total_before(current + 1);
        to.diff_into(&from, 1.0, &mut out);
        let oldest = first_whole - 1;
        if part > 0.0 && current - oldest < BUCKETS as i64 {
            let s = &self.slots[slot_of(oldest)];
            if s.index == oldest {
                from.diff_into(&s.start, part, &mut out);
            }
        }
        out
    }

    /// The slowest acknowledgement in the window (its buckets, the oldest one
    /// partly inside included), ms; a maximum needs the buckets themselves.
    #[must_use]
    pub fn ack_max(&self, now: DateTime<Utc>, window_secs: i64) -> f64 {
        let window = window_secs.clamp(1, BUCKET_SECS * BUCKETS as i64);
        let current = bucket_of(now);
        let into = (now.timestamp_millis() - current * BUCKET_SECS * 1000) as f64 / 1000.0;
        let before_current = (window as f64 - into).max(0.0);
        let back = (before_current / BUCKET_SECS as f64).ceil() as i64;
        let mut max = 0.0_f32;
        let mut i = (current - back).max(current - (BUCKETS as i64 - 1));
        while i <= current.min(self.newest) {
            let s = &self.slots[slot_of(i)];
            if s.index == i {
                max = max.max(s.ack_max_ms);
            }
            i += 1;
        }
        f64::from(max)
    }

    /// The counters of one whole bucket.
    #[must_use]
    pub fn bucket(&self, index: i64) -> Counts {
        let s = &self.slots[slot_of(index)];
        let mut out = Counts::default();
        if s.index == index {
            let end = self.total_before(index + 1);
            end.diff_into(&s.start, 1.0, &mut out);
            out.ack_max_ms = f64::from(s.ack_max_ms);
        }
        out
    }

    /// True when nothing happened in the last 15 minutes.
    #[must_use]
    pub fn idle(&self, now: DateTime<Utc>) -> bool {
        self.newest <= bucket_of(now) - BUCKETS as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
    }

    #[test]
    fn sliding_window_weights_the_oldest_bucket() {
        let mut r = FlowRing::default();
        let t = t0();
        r.bump(t, |c| c.orders += 10.0); // bucket [0, 10)
        r.bump(t + Duration::seconds(10), |c| c.orders += 4.0); // bucket [10, 20)
        // At 15 s a 10 s window covers [5, 15]: half the first bucket and the
        // current one.
        let w = r.window(t + Duration::seconds(15), 10);
        assert!((w.orders - 9.0).abs() < 1e-9, "{}", w.orders);
        // A 60 s window holds all of it.
        assert!((r.window(t + Duration::seconds(15), 60).orders - 14.0).abs() < 1e-9);
        // 15 minutes later nothing is left.
        assert_eq!(r.window(t + Duration::minutes(16), 900).orders, 0.0);
        assert!(r.idle(t + Duration::minutes(16)));
        assert!(!r.idle(t + Duration::seconds(15)));
    }

    #[test]
    fn a_reused_slot_is_cleared() {
        let mut r = FlowRing::default();
        let t = t0();
        r.bump(t, |c| c.rejects += 3.0);
        let later = t + Duration::seconds(BUCKET_SECS * BUCKETS as i64);
        r.bump(later, |c| c.orders += 1.0);
        assert_eq!(r.bucket(bucket_of(later)).rejects, 0.0);
        assert_eq!(r.bucket(bucket_of(t)).rejects, 0.0);
        assert_eq!(r.window(later, 900).rejects, 0.0);
    }

    #[test]
    fn ack_max_is_a_max_not_a_sum() {
        let mut r = FlowRing::default();
        let t = t0();
        r.bump(t, |c| c.ack_max_ms = c.ack_max_ms.max(40.0));
        r.bump(t + Duration::seconds(10), |c| {
            c.ack_max_ms = c.ack_max_ms.max(25.0)
        });
        assert_eq!(r.ack_max(t + Duration::seconds(12), 60), 40.0);
        assert_eq!(r.window(t + Duration::seconds(12), 60).per_order(1.0), 0.0);
        // Out of a 1 s window, only the newer one counts.
        assert_eq!(r.ack_max(t + Duration::seconds(12), 1), 25.0);
    }

    /// The totals give the same sums as adding up the buckets, for any
    /// window, whatever the gaps between active buckets.
    #[test]
    fn totals_agree_with_summing_the_buckets() {
        let mut r = FlowRing::default();
        let t = t0();
        let mut events = Vec::new();
        let mut x: u64 = 7;
        for i in 0..400 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            if x.is_multiple_of(3) {
                continue;
            }
            let at = t + Duration::milliseconds(i * 2_750);
            let n = ((x >> 33) % 5) as f64;
            r.bump(at, |c| c.orders += n);
            events.push((at, n));
        }
        // (Windows are read at or after the newest event: the ring keeps the
        // last 15 minutes before its newest bucket, not before any instant.)
        for (k, now_s) in [(0, 1100), (1, 1103), (2, 1500), (3, 1350)] {
            let now = t + Duration::milliseconds(now_s * 1000 + 370 * k);
            for w in [1, 7, 10, 45, 60, 300, 600, 900] {
                // The reference: whole buckets inside, the oldest weighted.
                let current = bucket_of(now);
                let into = (now.timestamp_millis() - current * BUCKET_SECS * 1000) as f64 / 1000.0;
                let mut expect = 0.0;
                for (at, n) in &events {
                    let b = bucket_of(*at);
                    if b > current || current - b >= BUCKETS as i64 {
                        continue;
                    }
                    let end_ago = if b == current {
                        0.0
                    } else {
                        into + ((current - b - 1) * BUCKET_SECS) as f64
                    };
                    let start_ago = end_ago
                        + if b == current {
                            into
                        } else {
                            BUCKET_SECS as f64
                        };
                    let wf = w as f64;
                    if b == current || start_ago <= wf {
                        expect += n;
                    } else if end_ago < wf {
                        expect += n * (wf - end_ago) / BUCKET_SECS as f64;
                    }
                }
                let got = r.window(now, w).orders;
                assert!(
                    (got - expect).abs() < 1e-6,
                    "now {now_s} w {w}: {got} vs {expect}"
                );
            }
        }
    }
}
