//! Rules decided on samples: every `alerting` bucket (10 s) each series of a
//! detector, baseline, prediction or forest rule gives one sample, the
//! condition is decided on it, and the decision stands until the next sample.
//! Detector state is kept per rule and series, and dropped after a day without
//! samples (so memory follows the users that trade, not every user ever seen).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use ordermon_domain::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::detect::{Detector, IsolationForest, LinearTrend, TrendConfig};
use super::flow::BUCKET_SECS;
use super::measure::{EvalContext, RuleSet, SeriesKey, series_value};
use super::observed::Observed;
use super::rule::{Condition, Rule};
use super::signal::{Signal, SignalScope};

/// A sampled condition's state for one series.
enum Kind {
    Detector(Box<dyn Detector>),
    Baseline {
        mean: f64,
        samples: u32,
    },
    Trend(LinearTrend),
    Forest(Box<IsolationForest>),
    /// The configuration could not build a detector (refused at start; kept
    /// so a bad state never panics).
    Broken,
}

struct State {
    kind: Kind,
    last: DateTime<Utc>,
}

/// Sampled state and the decisions it gives.
#[derive(Default)]
pub struct Sampled {
    states: HashMap<(usize, SeriesKey), State>,
    decisions: HashMap<(usize, SeriesKey), Decimal>,
}

impl std::fmt::Debug for Sampled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampled")
            .field("series", &self.states.len())
            .field("holding", &self.decisions.len())
            .finish()
    }
}

/// Drop a series' state after this long without a sample.
const FORGET_AFTER_HOURS: i64 = 24;

fn seed(key: &SeriesKey) -> u64 {
    // FNV-1a of the key's text: a stable, per-series seed.
    let text = format!("{key:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn new_kind(rule: &Rule, key: &SeriesKey) -> Kind {
    match &rule.condition {
        Condition::Detector { spec, .. } => spec.build().map_or(Kind::Broken, Kind::Detector),
        Condition::Baseline { .. } => Kind::Baseline {
            mean: 0.0,
            samples: 0,
        },
        Condition::Predict(p) => {
            let n = (p.fit_window.as_secs() / BUCKET_SECS.unsigned_abs()).max(2);
            let config = TrendConfig {
                window: usize::try_from(n).unwrap_or(usize::MAX),
                min_samples: 6,
                ..TrendConfig::default()
            };
            LinearTrend::new(&config).map_or(Kind::Broken, Kind::Trend)
        }
        Condition::Forest(cfg) => {
            IsolationForest::new(cfg, seed(key)).map_or(Kind::Broken, |f| Kind::Forest(Box::new(f)))
        }
        Condition::Threshold { .. } => Kind::Broken,
    }
}

impl Sampled {
    /// The value a sampled rule holds at on a series, if it holds.
    #[must_use]
    pub fn decision(&self, rule: usize, key: &SeriesKey) -> Option<Decimal> {
        self.decisions.get(&(rule, key.clone())).copied()
    }

    /// True when no sampled rule holds anywhere.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// Series with state.
    #[must_use]
    pub fn series(&self) -> usize {
        self.states.len()
    }

    /// Takes one sample of every sampled rule on every series.
    pub fn sample(&mut self, rules: &RuleSet, observed: &Observed, ctx: &EvalContext<'_>) {
        let now = ctx.now;
        for (idx, rule) in rules.rules.iter().enumerate() {
            if !rule.condition.sampled() {
                continue;
            }
            match rule.scope() {
                SignalScope::User => {
                    for (user, u) in &observed.users {
                        let rule = &rules.for_user(user)[idx];
                        if !rule.enabled {
                            continue;
                        }
                        // Flow signals of users without flow have no sample.
                        if rule.signal.windowed() && u.flow.is_none() {
                            continue;
                        }
                        self.one(idx, rule, SeriesKey::User(user.clone()), observed, ctx);
                    }
                }
                SignalScope::UserInstrument => {
                    for (user, u) in &observed.users {
                        let rule = &rules.for_user(user)[idx];
                        if !rule.enabled {
                            continue;
                        }
                        for i in u.positions.keys() {
                            let key = SeriesKey::UserInstrument(user.clone(), i.clone());
                            self.one(idx, rule, key, observed, ctx);
                        }
                    }
                }
                SignalScope::Instrument => {
                    if rule.enabled {
                        for i in ctx.catalog.all() {
                            self.one(
                                idx,
                                rule,
                                SeriesKey::Instrument(i.id.clone()),
                                observed,
                                ctx,
                            );
                        }
                    }
                }
                SignalScope::System => {
                    if rule.enabled {
                        self.one(idx, rule, SeriesKey::System, observed, ctx);
                    }
                }
                // Refused at validation: nothing to sample there.
                SignalScope::UserVenue | SignalScope::Strategy | SignalScope::Venue => {}
            }
        }
        let horizon = now - Duration::hours(FORGET_AFTER_HOURS);
        self.states.retain(|_, s| s.last >= horizon);
        let states = &self.states;
        self.decisions.retain(|k, _| states.contains_key(k));
    }

    fn one(
        &mut self,
        idx: usize,
        rule: &Rule,
        key: SeriesKey,
        observed: &Observed,
        ctx: &EvalContext<'_>,
    ) {
        let now = ctx.now;
        let slot = (idx, key);
        let value = if rule.signal == Signal::OrderFlow {
            None
        } else {
            series_value(rule, &slot.1, observed, ctx)
        };
        let vector = if rule.signal == Signal::OrderFlow {
            order_flow(&slot.1, rule, observed, ctx)
        } else {
            None
        };
        if value.is_none() && vector.is_none() {
            self.decisions.remove(&slot);
            return;
        }
        let state = self.states.entry(slot.clone()).or_insert_with(|| State {
            kind: new_kind(rule, &slot.1),
            last: now,
        });
        state.last = now;
        let decided = match (&mut state.kind, &rule.condition) {
            (Kind::Detector(d), Condition::Detector { floor, .. }) => value.and_then(|v| {
                let verdict = d.observe(now, v.to_f64()?)?;
                let floor_ok = floor.is_none_or(|(op, t)| op.holds(v, t));
                (verdict.anomalous && floor_ok).then_some(v)
            }),
            (Kind::Baseline { mean, samples }, Condition::Baseline { op, spec }) => {
                value.and_then(|v| {
                    let x = v.to_f64()?;
                    let judged = if *samples >= spec.min_samples {
                        let line = Decimal::try_from(*mean * spec.ratio).ok()?;
                        op.holds(v, line).then_some(v)
                    } else {
                        None
                    };
                    *mean = if *samples == 0 {
                        x
                    } else {
                        spec.alpha * x + (1.0 - spec.alpha) * *mean
                    };
                    *samples = samples.saturating_add(1);
                    judged
                })
            }
            (Kind::Trend(t), Condition::Predict(p)) => value.and_then(|v| {
                t.push(now, v.to_f64()?);
                // At or past the limit: it is reached (no time left).
                if v >= p.limit {
                    return Some(Decimal::ZERO);
                }
                let limit = p.limit.to_f64()?;
                let left = t.time_to(limit)?;
                (left <= p.within).then(|| Decimal::from(left.as_secs()))
            }),
            (Kind::Forest(f), Condition::Forest(_)) => vector.and_then(|x| {
                let verdict = f.observe(&x)?;
                verdict
                    .anomalous
                    .then(|| Decimal::try_from(verdict.score).ok())
                    .flatten()
                    .map(|d| d.round_dp(3))
            }),
            _ => None,
        };
        match decided {
            Some(v) => {
                if !self.decisions.contains_key(&slot) {
                    metrics::counter!("ordermon_alert_detections_total", "condition" => condition_kind(&rule.condition))
                        .increment(1);
                }
                self.decisions.insert(slot, v);
            }
            None => {
                self.decisions.remove(&slot);
            }
        }
    }
}

/// The condition's kind for metrics: the detector's kind, `baseline`,
/// `predict` or `isolation_forest`.
fn condition_kind(c: &Condition) -> &'static str {
    match c {
        Condition::Detector { spec, .. } => spec.kind(),
        Condition::Baseline { .. } => "baseline",
        Condition::Predict(_) => "predict",
        Condition::Forest(_) => "isolation_forest",
        Condition::Threshold { .. } => "threshold",
    }
}

/// The order-flow vector of a user over the rule's window: order rate,
/// reject ratio, cancel ratio, notional per order, fill ratio.
fn order_flow(
    key: &SeriesKey,
    rule: &Rule,
    observed: &Observed,
    ctx: &EvalContext<'_>,
) -> Option<Vec<f64>> {
    let SeriesKey::User(user) = key else {
        return None;
    };
    let flow = observed.users.get(user)?.flow.as_ref()?;
    let window = i64::try_from(rule.window.as_secs()).unwrap_or(i64::MAX);
    let c = flow.window(ctx.now, window);
    // The forest models how the user trades, not whether: idle windows are
    // not samples.
    if c.orders < 1.0 {
        return None;
    }
    Some(vec![
        c.orders / rule.window.as_secs_f64().max(1.0),
        c.per_order(c.rejects),
        c.per_order(c.cancels),
        c.per_order(c.notional),
        c.per_order(c.first_fills),
    ])
}
