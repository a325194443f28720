//! Rule evaluation: from the observed series to *hits*, the conditions that
//! hold now, each with the labels that identify its alert and the value that
//! fired. Threshold rules are decided here at every evaluation; sampled rules
//! (detectors, baselines, predictions, the forest) are decided when their
//! samples are taken ([`super::sampled`]) and only read here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::alert::Severity;
use ordermon_domain::ids::{RuleName, UserId};

pub use super::measure::{EvalContext, RuleSet, SeriesKey, SystemFigures, equity, series_value};
use super::measure::{Num, UserView, secs, system_value, user_value};
use super::observed::Observed;
use super::rule::{Condition, Rule};
use super::sampled::Sampled;
use super::series::{UserSeries, Waiting};
use super::signal::{Signal, SignalScope};

/// What an evaluation covers; an alert belongs to exactly one subject, and an
/// evaluation of a subject resolves that subject's alerts it did not hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One user's rules (all its series: instruments, venues, strategies).
    User(UserId),
    /// Every instrument's market data.
    Instruments,
    /// Every venue.
    Venues,
    /// The instance.
    System,
}

impl Subject {
    /// The subject an alert with `labels` belongs to.
    #[must_use]
    pub fn of_labels(labels: &BTreeMap<String, String>) -> Self {
        if let Some(u) = labels
            .get("user_id")
            .and_then(|u| UserId::new(u.clone()).ok())
        {
            Self::User(u)
        } else if labels.contains_key("instrument_id") {
            Self::Instruments
        } else if labels.contains_key("venue") {
            Self::Venues
        } else {
            Self::System
        }
    }
}

/// How a hit's annotations are made.
#[derive(Debug, Clone)]
pub enum Text {
    /// From the rule's templates.
    Rule(Arc<Rule>),
    /// Given (a strategy's own alert).
    Fixed(BTreeMap<String, String>),
}

/// A condition that holds now.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The rule's name.
    pub rule: RuleName,
    /// Severity.
    pub severity: Severity,
    /// Identifying labels (without `rule`, which the alert adds).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: Decimal,
    /// The user it concerns.
    pub user: Option<UserId>,
    /// The rule's `for` duration.
    pub for_duration: Duration,
    /// Annotations.
    pub text: Text,
}

impl Hit {
    /// The annotations with the value filled in.
    #[must_use]
    pub fn annotations(&self) -> BTreeMap<String, String> {
        match &self.text {
            Text::Fixed(a) => a.clone(),
            Text::Rule(rule) => {
                let value = show(self.value);
                let threshold = rule.condition.threshold().map(show);
                let window = if rule.signal.windowed() {
                    ordermon_domain::duration::format(rule.window)
                } else {
                    String::new()
                };
                let mut labels = self.labels.clone();
                labels.insert("rule".to_owned(), rule.name.to_string());
                let fields = super::template::Fields {
                    value: &value,
                    threshold: threshold.as_deref(),
                    window: &window,
                    rule: rule.name.as_str(),
                    severity: self.severity.as_str(),
                    labels: &labels,
                };
                rule.annotations
                    .iter()
                    .map(|(k, t)| (k.clone(), super::template::render(t, &fields)))
                    .collect()
            }
        }
    }
}

/// A decimal for people: at most 4 decimal places, no trailing zeros.
#[must_use]
pub fn show(d: Decimal) -> String {
    d.round_dp(4).normalize().to_string()
}

fn hit(rule: &Arc<Rule>, key: &SeriesKey, value: Decimal, ctx: &EvalContext<'_>) -> Hit {
    let mut labels = key.labels(ctx.instance);
    for (k, v) in &rule.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert("severity".to_owned(), rule.severity.as_str().to_owned());
    Hit {
        rule: rule.name.clone(),
        severity: rule.severity,
        labels,
        value,
        user: key.user().cloned(),
        for_duration: rule.for_duration,
        text: Text::Rule(rule.clone()),
    }
}

/// Decides one rule on one series: a threshold now, or the sampled decision.
///
/// The key is only built when it is needed (a hit, or a sampled rule's
/// lookup): evaluation runs for every user every second, and most rules do
/// not hold for most users.
fn decide<V: Into<Num>>(
    idx: usize,
    rule: &Arc<Rule>,
    key: impl FnOnce() -> SeriesKey,
    value: impl FnOnce() -> Option<V>,
    sampled: &Sampled,
    ctx: &EvalContext<'_>,
    out: &mut Vec<Hit>,
) {
    match &rule.condition {
        Condition::Threshold { op, value: t } => {
            let holds = match value().map(Into::into) {
                Some(Num::F(x)) => op.holds_f64(x, rule.threshold_f64).then_some(Num::F(x)),
                Some(Num::D(d)) => op.holds(d, *t).then_some(Num::D(d)),
                None => None,
            };
            if let Some(v) = holds {
                out.push(hit(rule, &key(), v.decimal(), ctx));
            }
        }
        _ => {
            if sampled.is_empty() {
                return;
            }
            let key = key();
            if let Some(v) = sampled.decision(idx, &key) {
                out.push(hit(rule, &key, v, ctx));
            }
        }
    }
}

/// Evaluates every rule of one user.
pub fn eval_user(
    rules: &RuleSet,
    user: &UserId,
    u: &UserSeries,
    sampled: &Sampled,
    ctx: &EvalContext<'_>,
) -> Vec<Hit> {
    let mut out = Vec::new();
    let view = UserView::new(u, ctx);
    for (idx, rule) in rules.for_user(user).iter().enumerate() {
        if !rule.enabled {
            continue;
        }
        match rule.scope() {
            SignalScope::User => decide(
                idx,
                rule,
                || SeriesKey::User(user.clone()),
                || user_value(rule.signal, rule.window, rule.min_count, &view),
                sampled,
                ctx,
                &mut out,
            ),
            SignalScope::UserInstrument => {
                for (instrument, h) in &u.positions {
                    let value = || {
                        let limit = u.limits.max_position.filter(|l| *l > Decimal::ZERO)?;
                        Some((h.quantity.abs() / limit).round_dp(6))
                    };
                    decide(
                        idx,
                        rule,
                        || SeriesKey::UserInstrument(user.clone(), instrument.clone()),
                        value,
                        sampled,
                        ctx,
                        &mut out,
                    );
                }
            }
            SignalScope::UserVenue => {
                let wanted = match rule.signal {
                    Signal::OldestUnackedSecs => Waiting::Ack,
                    _ => Waiting::Cancel,
                };
                for (venue, since) in u.oldest_waiting_by_venue(wanted) {
                    decide(
                        idx,
                        rule,
                        || SeriesKey::UserVenue(user.clone(), venue.to_owned()),
                        || Some(secs(ctx.now - since)),
                        sampled,
                        ctx,
                        &mut out,
                    );
                }
            }
            SignalScope::Strategy => {
                for (id, s) in &u.strategies {
                    let value = || match rule.signal {
                        Signal::HeartbeatMissing => {
                            Some(Decimal::from(u8::from(s.heartbeat_missing)))
                        }
                        _ => {
                            let from = ctx.now
                                - chrono::Duration::from_std(rule.window).unwrap_or_default();
                            Some(Decimal::from(
                                s.restarts.iter().filter(|t| **t >= from).count(),
                            ))
                        }
                    };
                    decide(
                        idx,
                        rule,
                        || SeriesKey::Strategy(user.clone(), id.clone()),
                        value,
                        sampled,
                        ctx,
                        &mut out,
                    );
                }
            }
            SignalScope::Instrument | SignalScope::Venue | SignalScope::System => {}
        }
    }
    strategy_alerts(user, u, ctx, &mut out);
    out
}

/// The alerts the user's strategies asked for, while they are recent.
fn strategy_alerts(user: &UserId, u: &UserSeries, ctx: &EvalContext<'_>, out: &mut Vec<Hit>) {
    let hold = chrono::Duration::from_std(ctx.strategy_alert_hold).unwrap_or_default();
    for a in &u.strategy_alerts {
        if ctx.now - a.last > hold {
            continue;
        }
        let mut labels = a.labels.clone();
        labels.retain(|k, _| ordermon_domain::alert::matcher::check_label_name(k).is_ok());
        labels.insert("user_id".to_owned(), user.to_string());
        labels.insert("strategy_id".to_owned(), a.strategy.to_string());
        labels.insert("severity".to_owned(), a.severity.as_str().to_owned());
        labels.remove("rule");
        let mut text = BTreeMap::new();
        text.insert("summary".to_owned(), a.summary.clone());
        out.push(Hit {
            rule: a.rule.clone(),
            severity: a.severity,
            labels,
            value: Decimal::ONE,
            user: Some(user.clone()),
            for_duration: Duration::ZERO,
            text: Text::Fixed(text),
        });
    }
}

/// When a user's rules next need a look because time alone makes one of them
/// hold: the earliest instant an order waiting for its acknowledgement (or
/// its cancel) crosses the waiting threshold. Returns that and the earliest
/// instant one of the user's waiting orders counts toward
/// `venue_stuck_orders`.
#[must_use]
pub fn next_deadlines(
    rules: &[Arc<Rule>],
    u: &UserSeries,
    venue_stuck_after: Duration,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    if u.waiting.is_empty() {
        return (None, None);
    }
    let mut user = None::<DateTime<Utc>>;
    let mut venue = None::<DateTime<Utc>>;
    let stuck = chrono::Duration::from_std(venue_stuck_after).unwrap_or_default();
    let earlier = |slot: &mut Option<DateTime<Utc>>, t: DateTime<Utc>| {
        *slot = Some(slot.map_or(t, |s| s.min(t)));
    };
    for r in rules.iter().filter(|r| r.enabled) {
        let wanted = match r.signal {
            Signal::OldestUnackedSecs => Waiting::Ack,
            Signal::OldestPendingCancelSecs => Waiting::Cancel,
            _ => continue,
        };
        let Condition::Threshold { op, value } = &r.condition else {
            continue;
        };
        if !matches!(op, super::rule::Op::Ge | super::rule::Op::Gt) {
            continue;
        }
        // Seconds to milliseconds; just past it for `>`.
        let ms = (value * Decimal::from(1000)).round();
        let Ok(ms) = i64::try_from(ms) else { continue };
        let wait =
            chrono::Duration::milliseconds(ms.max(0) + i64::from(*op == super::rule::Op::Gt));
        if let Some(since) = u.oldest_waiting(wanted) {
            earlier(&mut user, since + wait);
        }
    }
    for what in [Waiting::Ack, Waiting::Cancel] {
        if let Some(since) = u.oldest_waiting(what) {
            earlier(&mut venue, since + stuck);
        }
    }
    (user, venue)
}

/// Evaluates the instrument rules (market data).
pub fn eval_instruments(rules: &RuleSet, sampled: &Sampled, ctx: &EvalContext<'_>) -> Vec<Hit> {
    let mut out = Vec::new();
    let instruments = ctx.catalog.all();
    for (idx, rule) in rules.rules.iter().enumerate() {
        if !rule.enabled || rule.scope() != SignalScope::Instrument {
            continue;
        }
        for inst in &instruments {
            let value = || {
                let last = ctx.quotes.latest(&inst.id).map_or(ctx.started_at, |q| q.ts);
                Some(secs(ctx.now - last))
            };
            decide(
                idx,
                rule,
                || SeriesKey::Instrument(inst.id.clone()),
                value,
                sampled,
                ctx,
                &mut out,
            );
        }
    }
    out
}

/// Evaluates the venue rules across users.
pub fn eval_venues(
    rules: &RuleSet,
    observed: &Observed,
    sampled: &Sampled,
    ctx: &EvalContext<'_>,
) -> Vec<Hit> {
    let mut out = Vec::new();
    let wanted: Vec<_> = rules
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled && r.scope() == SignalScope::Venue)
        .collect();
    if wanted.is_empty() {
        return out;
    }
    let stuck_after = chrono::Duration::from_std(ctx.venue_stuck_after).unwrap_or_default();
    let mut stuck: BTreeMap<&str, u64> = BTreeMap::new();
    for u in observed.users.values() {
        for (venue, n) in u.waiting_since_by_venue(ctx.now - stuck_after) {
            if n > 0 {
                *stuck.entry(venue).or_default() += n;
            }
        }
    }
    for (idx, rule) in wanted {
        for (venue, n) in &stuck {
            decide(
                idx,
                rule,
                || SeriesKey::Venue((*venue).to_owned()),
                || Some(Decimal::from(*n)),
                sampled,
                ctx,
                &mut out,
            );
        }
    }
    out
}

/// Evaluates the instance rules.
pub fn eval_system(
    rules: &RuleSet,
    observed: &Observed,
    sampled: &Sampled,
    ctx: &EvalContext<'_>,
) -> Vec<Hit> {
    let mut out = Vec::new();
    for (idx, rule) in rules.rules.iter().enumerate() {
        if !rule.enabled || rule.scope() != SignalScope::System {
            continue;
        }
        let value = || system_value(rule.signal, observed, ctx);
        decide(
            idx,
            rule,
            || SeriesKey::System,
            value,
            sampled,
            ctx,
            &mut out,
        );
    }
    out
}
