//! Annotation templates: `{{value}}`, `{{threshold}}`, `{{window}}`,
//! `{{rule}}`, `{{severity}}` and `{{labels.NAME}}` are replaced; anything
//! else between braces is left as written, so a typo shows in the text
//! instead of failing the alert.

use std::collections::BTreeMap;

/// What a template can refer to.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The value that fired.
    pub value: &'a str,
    /// The rule's threshold, if it has one.
    pub threshold: Option<&'a str>,
    /// The rule's window (`1m`), empty when it has none.
    pub window: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// The severity.
    pub severity: &'a str,
    /// The alert's labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// Fills in a template.
#[must_use]
pub fn render(template: &str, f: &Fields<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        let value = match name {
            "value" => Some(f.value),
            "threshold" => Some(f.threshold.unwrap_or("")),
            "window" => Some(f.window),
            "rule" => Some(f.rule),
            "severity" => Some(f.severity),
            _ => name
                .strip_prefix("labels.")
                .map(|l| f.labels.get(l).map_or("", String::as_str)),
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_known_fields_and_keeps_the_rest() {
        let mut labels = BTreeMap::new();
        labels.insert("user_id".to_owned(), "alice".to_owned());
        let f = Fields {
            value: "0.75",
            threshold: Some("0.5"),
            window: "1m",
            rule: "reject_rate_spike",
            severity: "warning",
            labels: &labels,
        };
        assert_eq!(
            render(
                "{{ value }} > {{threshold}} over {{window}} for {{labels.user_id}}{{labels.none}}",
                &f
            ),
            "0.75 > 0.5 over 1m for alice"
        );
        assert_eq!(render("{{nope}} {{ unclosed", &f), "{{nope}} {{ unclosed");
        assert_eq!(
            render("[{{rule}}/{{severity}}]", &f),
            "[reject_rate_spike/warning]"
        );
    }
}
