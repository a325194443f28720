//! A user's order flow in time buckets: counters per 10-second bucket over the
//! last 15 minutes, summed over any window as a sliding window (the oldest
//! bucket counts for the part of it still inside the window), so a 10-second
//! rate does not jump at bucket boundaries.

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
    /// Slowest acknowledgement, ms.
    pub ack_max_ms: f64,
    /// Sum of the orders' notional (first currency-agnostic: a statistic).
    pub notional: f64,
}

impl Counts {
    fn add_scaled(&mut self, other: &Self, w: f64) {
        self.orders += other.orders * w;
        self.rejects += other.rejects * w;
        self.cancels += other.cancels * w;
        self.first_fills += other.first_fills * w;
        self.fills += other.fills * w;
        self.duplicates += other.duplicates * w;
        self.throttled += other.throttled * w;
        self.mismatches += other.mismatches * w;
        self.acks += other.acks * w;
        self.notional += other.notional * w;
        if w > 0.0 {
            self.ack_max_ms = self.ack_max_ms.max(other.ack_max_ms);
        }
    }

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

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    index: i64,
    counts: Counts,
}

/// The ring of buckets.
#[derive(Debug, Clone)]
pub struct FlowRing {
    slots: Box<[Slot; BUCKETS]>,
}

impl Default for FlowRing {
    fn default() -> Self {
        Self {
            slots: Box::new(
                [Slot {
                    index: i64::MIN,
                    counts: Counts::default(),
                }; BUCKETS],
            ),
        }
    }
}

impl FlowRing {
    /// The counters of the bucket holding `t` (cleared when it held an older
    /// bucket).
    pub fn at(&mut self, t: DateTime<Utc>) -> &mut Counts {
        let index = bucket_of(t);
        let slot = &mut self.slots[index.rem_euclid(BUCKETS as i64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                counts: Counts::default(),
            };
        }
        &mut slot.counts
    }

    /// The counters over the `window_secs` before `now`, the oldest bucket
    /// weighted by how much of it lies inside the window.
    #[must_use]
    pub fn window(&self, now: DateTime<Utc>, window_secs: i64) -> Counts {
        let window = window_secs.clamp(1, BUCKET_SECS * BUCKETS as i64);
        let current = bucket_of(now);
        let into = (now.timestamp_millis() - current * BUCKET_SECS * 1000) as f64 / 1000.0;
        let mut out = Counts::default();
        // The window [now - window, now] covers the current bucket up to `into`
        // seconds, then whole buckets back, then part of the oldest one.
        let mut remaining = window as f64 - into;
        self.add(&mut out, current, 1.0);
        let mut index = current - 1;
        while remaining > 0.0 && current - index < BUCKETS as i64 {
            let w = (remaining / BUCKET_SECS as f64).min(1.0);
            self.add(&mut out, index, w);
            remaining -= BUCKET_SECS as f64;
            index -= 1;
        }
        out
    }

    /// The counters of one whole bucket.
    #[must_use]
    pub fn bucket(&self, index: i64) -> Counts {
        let slot = &self.slots[index.rem_euclid(BUCKETS as i64) as usize];
        if slot.index == index {
            slot.counts
        } else {
            Counts::default()
        }
    }

    fn add(&self, out: &mut Counts, index: i64, w: f64) {
        let slot = &self.slots[index.rem_euclid(BUCKETS as i64) as usize];
        if slot.index == index {
            out.add_scaled(&slot.counts, w);
        }
    }

    /// True when nothing happened in the last 15 minutes.
    #[must_use]
    pub fn idle(&self, now: DateTime<Utc>) -> bool {
        let current = bucket_of(now);
        self.slots
            .iter()
            .all(|s| s.index <= current - BUCKETS as i64 || s.counts == Counts::default())
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
        r.at(t).orders += 10.0; // bucket [0, 10)
        r.at(t + Duration::seconds(10)).orders += 4.0; // bucket [10, 20)
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
        r.at(t).rejects += 3.0;
        let later = t + Duration::seconds(BUCKET_SECS * BUCKETS as i64);
        assert_eq!(r.at(later).rejects, 0.0);
        assert_eq!(r.bucket(bucket_of(t)).rejects, 0.0);
    }

    #[test]
    fn ack_max_is_a_max_not_a_sum() {
        let mut r = FlowRing::default();
        let t = t0();
        r.at(t).ack_max_ms = 40.0;
        r.at(t + Duration::seconds(10)).ack_max_ms = 25.0;
        let w = r.window(t + Duration::seconds(12), 60);
        assert_eq!(w.ack_max_ms, 40.0);
        assert_eq!(w.per_order(1.0), 0.0);
    }
}
