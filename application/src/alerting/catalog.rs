//! The built-in trading rules (SPEC §7) with their defaults. Each can be tuned
//! or turned off in `[alerting.builtin.<name>]` and per user through the API.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::Decimal;
use ordermon_domain::alert::Severity;

use super::detect::{
    DetectorSpec, Direction, EwmaConfig, FusionConfig, IsolationForestConfig, SeasonalConfig,
    ZScoreConfig,
};
use super::rule::{BaselineSpec, Op, PredictSpec, RuleConfig};
use super::signal::Signal;

/// The rule that always fires: the alert pipeline's dead-man switch.
pub const WATCHDOG: &str = "watchdog";

fn base(
    name: &str,
    signal: Signal,
    severity: Severity,
    summary: &str,
    description: &str,
) -> RuleConfig {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_owned(), summary.to_owned());
    annotations.insert("description".to_owned(), description.to_owned());
    RuleConfig {
        name: name.to_owned(),
        signal,
        window: None,
        op: None,
        threshold: None,
        detector: None,
        isolation_forest: None,
        baseline: None,
        predict: None,
        min_count: None,
        for_duration: Duration::ZERO,
        severity,
        labels: BTreeMap::new(),
        annotations,
        enabled: true,
    }
}

fn threshold(mut r: RuleConfig, op: Op, value: Decimal) -> RuleConfig {
    r.op = Some(op);
    r.threshold = Some(value);
    r
}

fn window(mut r: RuleConfig, w: Duration) -> RuleConfig {
    r.window = Some(w);
    r
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Every built-in rule with its defaults, in a stable order.
#[must_use]
pub fn builtin_rules() -> Vec<RuleConfig> {
    use Severity::{Critical, Info, Warning};
    let d = |n: i64, scale: u32| Decimal::new(n, scale);
    let mut rules = vec![
        threshold(
            base(
                "stuck_order",
                Signal::OldestUnackedSecs,
                Warning,
                "order unacknowledged for {{value}} s at {{labels.venue}}",
                "user {{labels.user_id}} has an order the venue {{labels.venue}} has not acknowledged for {{value}} s (threshold {{threshold}} s)",
            ),
            Op::Ge,
            d(30, 0),
        ),
        threshold(
            base(
                "stuck_cancel",
                Signal::OldestPendingCancelSecs,
                Warning,
                "cancel unconfirmed for {{value}} s at {{labels.venue}}",
                "user {{labels.user_id}} has a cancel the venue {{labels.venue}} has not confirmed for {{value}} s (threshold {{threshold}} s)",
            ),
            Op::Ge,
            d(30, 0),
        ),
        {
            let mut r = window(
                threshold(
                    base(
                        "reject_rate_spike",
                        Signal::RejectRatio,
                        Warning,
                        "{{value}} of orders rejected over {{window}}",
                        "user {{labels.user_id}}: reject ratio {{value}} over {{window}} (threshold {{threshold}})",
                    ),
                    Op::Ge,
                    d(5, 1),
                ),
                secs(60),
            );
            r.min_count = Some(10);
            r
        },
        window(
            threshold(
                base(
                    "runaway_order_rate",
                    Signal::OrderRate,
                    Critical,
                    "{{value}} orders/s over {{window}}",
                    "user {{labels.user_id}} sends {{value}} orders per second over {{window}} (threshold {{threshold}}): a runaway strategy?",
                ),
                Op::Ge,
                d(20, 0),
            ),
            secs(10),
        ),
        window(
            threshold(
                base(
                    "duplicate_orders",
                    Signal::DuplicateOrders,
                    Warning,
                    "{{value}} duplicate orders over {{window}}",
                    "user {{labels.user_id}} sent {{value}} orders identical to one sent less than 10 s before, over {{window}} (threshold {{threshold}})",
                ),
                Op::Ge,
                d(5, 0),
            ),
            secs(60),
        ),
        {
            let mut r = window(
                base(
                    "fill_rate_drop",
                    Signal::FillRatio,
                    Warning,
                    "fill ratio fell to {{value}} over {{window}}",
                    "user {{labels.user_id}}: only {{value}} of orders filled over {{window}}, under half of the usual ratio",
                ),
                secs(300),
            );
            r.baseline = Some(BaselineSpec {
                ratio: 0.5,
                alpha: 0.05,
                min_samples: 30,
            });
            r.min_count = Some(20);
            r
        },
        threshold(
            base(
                "position_limit_approach",
                Signal::PositionUtilization,
                Warning,
                "position at {{value}} of the limit in {{labels.instrument_id}}",
                "user {{labels.user_id}} holds {{value}} of max_position in {{labels.instrument_id}} (threshold {{threshold}})",
            ),
            Op::Ge,
            d(8, 1),
        ),
        threshold(
            base(
                "position_limit_breach",
                Signal::PositionUtilization,
                Critical,
                "position beyond the limit in {{labels.instrument_id}} ({{value}})",
                "user {{labels.user_id}} holds {{value}} of max_position in {{labels.instrument_id}}: the limit is breached",
            ),
            Op::Gt,
            d(1, 0),
        ),
        threshold(
            base(
                "drawdown",
                Signal::DrawdownRatio,
                Warning,
                "drawdown {{value}} from the high-water mark",
                "user {{labels.user_id}}: equity is {{value}} below its high-water mark (threshold {{threshold}})",
            ),
            Op::Ge,
            d(1, 1),
        ),
        window(
            threshold(
                base(
                    "loss_velocity",
                    Signal::LossVelocity,
                    Critical,
                    "lost {{value}} of equity in {{window}}",
                    "user {{labels.user_id}} lost {{value}} of equity over {{window}} (threshold {{threshold}})",
                ),
                Op::Ge,
                d(2, 2),
            ),
            secs(300),
        ),
        threshold(
            base(
                "kill_switch_engaged",
                Signal::GlobalTradingHalted,
                Critical,
                "kill switch engaged: all trading halted",
                "the global kill switch halts trading on every account until it is released",
            ),
            Op::Ge,
            d(1, 0),
        ),
        threshold(
            base(
                "user_kill_switch_engaged",
                Signal::TradingHalted,
                Warning,
                "trading halted for {{labels.user_id}}",
                "the kill switch of user {{labels.user_id}} halts their trading",
            ),
            Op::Ge,
            d(1, 0),
        ),
        threshold(
            base(
                "stale_market_data",
                Signal::QuoteAgeSecs,
                Warning,
                "no quote for {{labels.instrument_id}} for {{value}} s",
                "the last quote of {{labels.instrument_id}} is {{value}} s old (threshold {{threshold}} s)",
            ),
            Op::Ge,
            d(30, 0),
        ),
        window(
            threshold(
                base(
                    "api_rate_limit_exhaustion",
                    Signal::ThrottledOrders,
                    Warning,
                    "{{value}} orders throttled over {{window}}",
                    "user {{labels.user_id}} hit their orders-per-second limit {{value}} times over {{window}} (threshold {{threshold}})",
                ),
                Op::Ge,
                d(5, 0),
            ),
            secs(60),
        ),
        {
            let mut r = window(
                base(
                    "latency_spike",
                    Signal::AckLatencyMs,
                    Warning,
                    "venue acknowledgements slowed to {{value}} ms",
                    "user {{labels.user_id}}: the slowest acknowledgement over {{window}} took {{value}} ms, far above its usual level",
                ),
                secs(10),
            );
            r.detector = Some(DetectorSpec::Ewma(EwmaConfig {
                direction: Direction::Up,
                ..EwmaConfig::default()
            }));
            r.op = Some(Op::Ge);
            r.threshold = Some(d(250, 0));
            r
        },
        window(
            threshold(
                base(
                    "reconciliation_mismatch",
                    Signal::ReconMismatches,
                    Critical,
                    "{{value}} disagreements with the venue over {{window}}",
                    "user {{labels.user_id}}: {{value}} fills beyond an order's quantity or refused execution reports over {{window}}",
                ),
                Op::Ge,
                d(1, 0),
            ),
            secs(900),
        ),
        threshold(
            base(
                "strategy_heartbeat_missing",
                Signal::HeartbeatMissing,
                Warning,
                "strategy {{labels.strategy_id}} is silent",
                "strategy {{labels.strategy_id}} of user {{labels.user_id}} has not completed a callback within the heartbeat timeout",
            ),
            Op::Ge,
            d(1, 0),
        ),
        threshold(
            base(
                WATCHDOG,
                Signal::Watchdog,
                Info,
                "alert pipeline heartbeat",
                "always firing: a receiver that stops getting it knows the alert pipeline is down",
            ),
            Op::Ge,
            d(1, 0),
        ),
        window(
            threshold(
                base(
                    "strategy_crashed",
                    Signal::StrategyRestarts,
                    Warning,
                    "strategy {{labels.strategy_id}} failed {{value}} times in {{window}}",
                    "strategy {{labels.strategy_id}} of user {{labels.user_id}} failed and was restarted {{value}} times over {{window}}",
                ),
                Op::Ge,
                d(1, 0),
            ),
            secs(600),
        ),
        threshold(
            base(
                "venue_down",
                Signal::VenueStuckOrders,
                Critical,
                "venue {{labels.venue}} is not answering ({{value}} orders waiting)",
                "{{value}} orders at {{labels.venue}} wait for an acknowledgement or cancel confirmation: the venue looks down",
            ),
            Op::Ge,
            d(3, 0),
        ),
        {
            let mut r = window(
                base(
                    "unusual_trading_behaviour",
                    Signal::OrderFlow,
                    Warning,
                    "unusual trading behaviour (score {{value}})",
                    "user {{labels.user_id}}: the order flow over {{window}} (rate, rejects, cancels, notional, fills) is unlike their own history",
                ),
                secs(60),
            );
            r.isolation_forest = Some(IsolationForestConfig::default());
            r
        },
        threshold(
            base(
                "daily_loss_approach",
                Signal::DailyLossUtilization,
                Warning,
                "daily loss at {{value}} of the limit",
                "user {{labels.user_id}} has lost {{value}} of max_daily_loss today (threshold {{threshold}})",
            ),
            Op::Ge,
            d(8, 1),
        ),
        {
            let mut r = base(
                "position_limit_forecast",
                Signal::PositionUtilization,
                Warning,
                "position limit in {{labels.instrument_id}} reached in {{value}} s at this pace",
                "user {{labels.user_id}}'s position in {{labels.instrument_id}} grows toward max_position: reached in about {{value}} s",
            );
            r.predict = Some(PredictSpec {
                limit: d(1, 0),
                within: secs(600),
                fit_window: secs(600),
            });
            r
        },
        {
            let mut r = base(
                "daily_loss_forecast",
                Signal::DailyLossUtilization,
                Warning,
                "daily loss limit reached in {{value}} s at this pace",
                "user {{labels.user_id}}'s loss today grows toward max_daily_loss: reached in about {{value}} s",
            );
            r.predict = Some(PredictSpec {
                limit: d(1, 0),
                within: secs(900),
                fit_window: secs(900),
            });
            r
        },
        {
            let mut r = base(
                "outbox_backlog_forecast",
                Signal::OutboxPending,
                Warning,
                "the outbox reaches {{threshold}} rows in {{value}} s",
                "events wait to be relayed to the bus and their number grows: {{threshold}} reached in about {{value}} s",
            );
            r.predict = Some(PredictSpec {
                limit: d(100_000, 0),
                within: secs(600),
                fit_window: secs(300),
            });
            r
        },
        threshold(
            base(
                "outbox_rows_set_aside",
                Signal::OutboxSetAside,
                Critical,
                "{{value}} events could not be relayed",
                "the broker refused {{value}} outbox rows for good (too large or malformed); the relay set them aside and went on. Consumers and live streams never got those events; they stay in the event log (GET /api/v1/events) — see the relay's last_set_aside in GET /status",
            ),
            Op::Ge,
            d(1, 0),
        ),
        threshold(
            base(
                "dead_letters",
                Signal::DeadLetters,
                Warning,
                "{{value}} dead letters",
                "{{value}} events failed every retry in this instance's consumer group; list and replay them with `monitor-server dlq`",
            ),
            Op::Ge,
            d(1, 0),
        ),
        {
            let mut r = window(
                base(
                    "order_rate_anomaly",
                    Signal::OrderRate,
                    Warning,
                    "order rate {{value}}/s is unusual",
                    "user {{labels.user_id}} sends {{value}} orders per second over {{window}}: far above both the recent rate and the usual rate at this hour of the week",
                ),
                secs(60),
            );
            // The rolling and the seasonal view must agree: rolling detectors
            // alone page at every open and close (docs/detectors.md); the
            // seasonal one judges after two weeks of history.
            r.detector = Some(DetectorSpec::Fusion(FusionConfig {
                detectors: vec![
                    DetectorSpec::ZScore(ZScoreConfig {
                        direction: Direction::Up,
                        ..ZScoreConfig::default()
                    }),
                    DetectorSpec::Seasonal(SeasonalConfig {
                        direction: Direction::Up,
                        ..SeasonalConfig::default()
                    }),
                ],
                min_agree: 2,
            }));
            r.op = Some(Op::Ge);
            r.threshold = Some(d(1, 0));
            r
        },
    ];
    for r in &mut rules {
        r.labels.clear();
    }
    rules
}

/// The built-in rules as a markdown table (rendered into `docs/alerting.md`;
/// a test keeps the two the same).
#[must_use]
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| rule | signal | condition | window | for | severity |\n|---|---|---|---|---|---|\n",
    );
    for r in builtin_rules() {
        let Ok(rule) = r.validate(true) else { continue };
        let window = if rule.signal.windowed() {
            ordermon_domain::duration::format(rule.window)
        } else {
            "—".to_owned()
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} |\n",
            rule.name,
            rule.signal,
            rule.condition.describe(),
            window,
            ordermon_domain::duration::format(rule.for_duration),
            rule.severity.as_str(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerting_doc_lists_the_builtin_rules_as_they_are() {
        let doc = include_str!("../../../docs/alerting.md");
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/alerting.md must contain this table verbatim:\n{table}"
        );
    }

    #[test]
    fn every_builtin_rule_is_valid_and_named_once() {
        let mut names = std::collections::BTreeSet::new();
        for r in builtin_rules() {
            let v = r.validate(true).unwrap_or_else(|e| panic!("{e}"));
            assert!(names.insert(v.name.to_string()), "{}", v.name);
            assert!(v.annotations.contains_key("summary"));
        }
        // The fourteen of SPEC §7 (runaway order rate and duplicates are two
        // rules; position approach and breach, drawdown and loss velocity too).
        for spec in [
            "stuck_order",
            "stuck_cancel",
            "reject_rate_spike",
            "runaway_order_rate",
            "duplicate_orders",
            "fill_rate_drop",
            "position_limit_approach",
            "position_limit_breach",
            "drawdown",
            "loss_velocity",
            "kill_switch_engaged",
            "stale_market_data",
            "api_rate_limit_exhaustion",
            "latency_spike",
            "reconciliation_mismatch",
            "strategy_heartbeat_missing",
            WATCHDOG,
        ] {
            assert!(names.contains(spec), "{spec} missing");
        }
    }
}
