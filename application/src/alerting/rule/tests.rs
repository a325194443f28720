//! Rules from TOML: validation, overrides and comparisons.

use std::time::Duration;

use ordermon_domain::Decimal;
use ordermon_domain::alert::{RuleOverride, Severity};

use super::*;

fn rule(toml_text: &str) -> Result<Rule, RuleError> {
    // `;` separates keys on one line in the cases below.
    let text = toml_text.replace(';', "\n");
    let c: RuleConfig =
        toml::from_str(&text).map_err(|e| RuleError::new("?", "toml", e.to_string()))?;
    c.validate(false)
}

#[test]
fn a_threshold_rule_from_toml() {
    let r = rule(
        r#"
        name = "big_rejects"
        signal = "reject_ratio"
        window = "5m"
        threshold = 0.4
        min_count = 20
        for = "1m"
        severity = "critical"
        labels = { team = "risk" }
        annotations = { summary = "{{value}} rejected" }
        "#,
    )
    .unwrap();
    assert_eq!(r.window, Duration::from_secs(300));
    assert_eq!(
        r.condition,
        Condition::Threshold {
            op: Op::Ge,
            value: Decimal::new(4, 1)
        }
    );
    assert_eq!((r.min_count, r.severity), (20, Severity::Critical));
    assert_eq!(r.for_duration, Duration::from_secs(60));
}

#[test]
fn bad_rules_are_refused_naming_rule_and_field() {
    let cases = [
        (r#"name = "a"; signal = "orders""#, "threshold"),
        (
            r#"name = "a"; signal = "open_orders"; window = "1m"; threshold = "1""#,
            "window",
        ),
        (
            r#"name = "a"; signal = "orders"; window = "16m"; threshold = "1""#,
            "window",
        ),
        (
            r#"name = "a"; signal = "orders"; threshold = "1"; min_count = 3"#,
            "min_count",
        ),
        (
            r#"name = "a"; signal = "orders"; threshold = "1"; labels = { user_id = "x" }"#,
            "labels.user_id",
        ),
        (
            r#"name = "a"; signal = "orders"; threshold = "1"; labels = { "bad-name" = "x" }"#,
            "labels",
        ),
        (
            r#"name = "a b"; signal = "orders"; threshold = "1""#,
            "name",
        ),
        (
            r#"name = "a"; signal = "orders"; threshold = "1"; for = "2d""#,
            "for",
        ),
        (r#"name = "a"; signal = "order_flow""#, "isolation_forest"),
        (
            r#"name = "a"; signal = "fill_ratio"; threshold = "1"; baseline = { ratio = 0.5 }"#,
            "threshold",
        ),
        (
            r#"name = "a"; signal = "fill_ratio"; baseline = { ratio = 0.5, alpha = 2.0 }"#,
            "baseline",
        ),
        (
            r#"name = "a"; signal = "position_utilization"; predict = { limit = "1", within = "0s" }"#,
            "predict",
        ),
    ];
    for (text, field) in cases {
        let e = rule(text).expect_err(text);
        assert_eq!(e.field, field, "{text}: {e}");
        assert!(e.to_string().starts_with("alert rule `a"), "{e}");
    }
    // An unknown field is refused by the parser itself.
    assert!(
        rule(r#"name = "a"; signal = "orders"; treshold = "1""#).is_err_and(|e| e.field == "toml")
    );
    assert!(
        rule(r#"name = "a"; signal = "no_such_signal"; threshold = "1""#)
            .is_err_and(|e| e.field == "toml")
    );
}

#[test]
fn overrides_move_the_threshold_for_severity_and_enabled() {
    let r =
        rule(r#"name = "rate"; signal = "order_rate"; window = "10s"; threshold = "20""#).unwrap();
    let o = RuleOverride {
        rule: r.name.clone(),
        user_id: ordermon_domain::ids::UserId::new("alice").unwrap(),
        enabled: Some(false),
        threshold: Some(Decimal::new(50, 0)),
        for_duration: Some(Duration::from_secs(5)),
        severity: Some(Severity::Critical),
        updated_by: "root".to_owned(),
        updated_at: chrono::Utc::now(),
        version: 1,
    };
    r.check_override(&o).unwrap();
    let e = r.overridden(&o);
    assert!(!e.enabled);
    assert_eq!(e.condition.threshold(), Some(Decimal::new(50, 0)));
    assert_eq!(e.for_duration, Duration::from_secs(5));
    assert_eq!(e.severity, Severity::Critical);
    let sys = rule(r#"name = "dl"; signal = "dead_letters"; threshold = "1""#).unwrap();
    assert_eq!(sys.check_override(&o).unwrap_err().field, "rule");
}

#[test]
fn ops_compare() {
    let (a, b) = (Decimal::ONE, Decimal::TWO);
    assert!(Op::Lt.holds(a, b) && Op::Le.holds(a, a) && Op::Gt.holds(b, a));
    assert!(Op::Ge.holds(b, b) && Op::Eq.holds(a, a) && Op::Ne.holds(a, b));
    assert!(!Op::Gt.holds(a, a));
}
