//! Evaluation: the users events touched, the periodic sweep over every
//! series (with sampling at each new bucket), the light pass between sweeps;
//! what changed goes to the dispatcher once silences and inhibition are
//! re-applied.

use std::time::Instant;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::Alert;
use ordermon_domain::ids::UserId;

use super::Worker;
use crate::alerting::eval::{
    Subject, eval_instruments, eval_system, eval_user, eval_venues, next_deadlines,
};
use crate::alerting::flow::bucket_of;

impl Worker {
    /// Re-applies silences and inhibition; routes the alerts whose flags changed.
    pub(super) fn remute(&mut self, now: DateTime<Utc>) {
        self.silences.retain(|s| s.ends_at > now);
        let changed = self.book.apply_mutes(&self.silences, &self.inhibit, now);
        for a in &changed {
            self.dispatcher.observe(a, now);
        }
    }

    /// Evaluates the users events touched since the last evaluation.
    pub(super) fn evaluate_dirty(&mut self) {
        if !self.observed.system_dirty && (self.observed.dirty.is_empty() || !self.seeded) {
            return;
        }
        let started = Instant::now();
        let now = self.clock.now();
        let mut changed = Vec::new();
        if self.observed.system_dirty {
            self.observed.system_dirty = false;
            let hits = eval_system(
                &self.rules,
                &self.observed,
                &self.sampled,
                &self.env.context(now),
            );
            changed.extend(self.book.reconcile(&Subject::System, hits, now));
        }
        if self.seeded && !self.observed.dirty.is_empty() {
            let dirty: Vec<UserId> = self.observed.dirty.drain().collect();
            let stuck_after = self.env.settings.venue_stuck_after;
            for user in dirty {
                let Some(u) = self.observed.users.get(&user) else {
                    continue;
                };
                let rules = self.rules.for_user(&user);
                self.deadlines
                    .schedule(&user, next_deadlines(rules, u, stuck_after), now);
                let hits = eval_user(&self.rules, &user, u, &self.sampled, &self.env.context(now));
                changed.extend(self.book.reconcile(&Subject::User(user), hits, now));
            }
        }
        self.route(changed, now);
        self.status.record_busy(started.elapsed());
    }

    pub(super) fn route(&mut self, changed: Vec<Alert>, now: DateTime<Utc>) {
        if changed.is_empty() {
            return;
        }
        for a in &changed {
            count_transition(a);
            self.dispatcher.observe(a, now);
        }
        // New alerts learn their silences and inhibitions before any flush.
        self.remute(now);
    }

    /// Evaluates every rule on every series; samples at each new bucket.
    pub(super) fn sweep(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        let bucket = bucket_of(now);
        let mut changed = self.book.promote_due(now);
        if self.seeded {
            if bucket != self.last_bucket {
                self.last_bucket = bucket;
                for u in self.observed.users.values_mut() {
                    u.trim(now);
                }
                self.sample_equity(now);
                // The sampler reads the series and writes its own state.
                let mut sampled = std::mem::take(&mut self.sampled);
                sampled.sample(&self.rules, &self.observed, &self.env.context(now));
                self.sampled = sampled;
            }
            let ctx = self.env.context(now);
            let stuck_after = self.env.settings.venue_stuck_after;
            for (user, u) in &self.observed.users {
                let rules = self.rules.for_user(user);
                self.deadlines
                    .schedule(user, next_deadlines(rules, u, stuck_after), now);
                let hits = eval_user(&self.rules, user, u, &self.sampled, &ctx);
                if hits.is_empty() && self.book.quiet(user) {
                    continue;
                }
                changed.extend(self.book.reconcile(&Subject::User(user.clone()), hits, now));
            }
            self.observed.dirty.clear();
            let hits = eval_instruments(&self.rules, &self.sampled, &self.env.context(now));
            changed.extend(self.book.reconcile(&Subject::Instruments, hits, now));
            let hits = eval_venues(
                &self.rules,
                &self.observed,
                &self.sampled,
                &self.env.context(now),
            );
            changed.extend(self.book.reconcile(&Subject::Venues, hits, now));
        }
        let hits = eval_system(
            &self.rules,
            &self.observed,
            &self.sampled,
            &self.env.context(now),
        );
        changed.extend(self.book.reconcile(&Subject::System, hits, now));
        self.observed.system_dirty = false;
        for a in &changed {
            count_transition(a);
            self.dispatcher.observe(a, now);
        }
        // Silences start and end with time: re-applied at every sweep.
        self.remute(now);
        let took = started.elapsed();
        self.status
            .record_sweep(took, self.book.len(), self.sampled.series());
        self.export_counts();
        metrics::histogram!("ordermon_alert_evaluation_seconds").record(took.as_secs_f64());
        self.last_sweep = Some(started);
    }

    /// Between full evaluations: pending alerts whose `for` has passed, the
    /// market data and the instance rules (a handful of series).
    pub(super) fn light(&mut self) {
        let now = self.clock.now();
        let mut changed = self.book.promote_due(now);
        if self.seeded {
            let hits = eval_instruments(&self.rules, &self.sampled, &self.env.context(now));
            changed.extend(self.book.reconcile(&Subject::Instruments, hits, now));
        }
        let hits = eval_system(
            &self.rules,
            &self.observed,
            &self.sampled,
            &self.env.context(now),
        );
        changed.extend(self.book.reconcile(&Subject::System, hits, now));
        self.route(changed, now);
    }

    /// `ordermon_alerts{state, severity}`: unresolved alerts now.
    fn export_counts(&self) {
        use ordermon_domain::alert::{AlertState, Severity};
        let mut counts = [[0u64; 3]; 2];
        for a in self.book.alerts() {
            let s = usize::from(a.state == AlertState::Firing);
            let v = match a.severity {
                Severity::Info => 0,
                Severity::Warning => 1,
                Severity::Critical => 2,
            };
            counts[s][v] += 1;
        }
        for (si, state) in ["pending", "firing"].iter().enumerate() {
            for (vi, sev) in ["info", "warning", "critical"].iter().enumerate() {
                metrics::gauge!("ordermon_alerts", "state" => *state, "severity" => *sev)
                    .set(counts[si][vi] as f64);
            }
        }
    }

    /// Records each user's equity at the end of a bucket (high-water mark,
    /// day start, history for loss velocity).
    fn sample_equity(&mut self, now: DateTime<Utc>) {
        let ctx = self.env.context(now);
        let mut samples = Vec::new();
        for (id, u) in &self.observed.users {
            if let Some(e) = crate::alerting::eval::equity(u, &ctx) {
                samples.push((id.clone(), e));
            }
        }
        for (id, e) in samples {
            if let Some(u) = self.observed.users.get_mut(&id) {
                u.sample_equity(now, e);
            }
        }
    }
}

/// `ordermon_alert_transitions_total{state, severity}`: raised (pending or
/// firing), promoted, resolved.
fn count_transition(a: &Alert) {
    metrics::counter!("ordermon_alert_transitions_total", "state" => a.state.as_str(), "severity" => a.severity.as_str())
        .increment(1);
}
