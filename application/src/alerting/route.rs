//! The routing tree, as Alertmanager has it: each route selects alerts with
//! label matchers and names a receiver, a grouping and its timings; children
//! inherit what they do not set. An alert goes to the first matching child
//! (depth first), and on to the next siblings too when that child says
//! `continue`; when no child matches, the route itself takes it.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::alert::matcher::{Matcher, all_match, check_label_name};
use serde::{Deserialize, Serialize};

/// A route as written in configuration (`[alerting.route]`, nested `routes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver (inherited when unset; none at the root = no notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Matchers the alert must satisfy (`severity="critical"`, `user_id=~"desk-.*"`).
    #[serde(default, with = "matcher_text", skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    /// Labels grouping alerts into one notification (`["..."]` = every label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group.
    #[serde(
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_wait: Option<Duration>,
    /// Wait between notifications of a group whose alerts changed.
    #[serde(
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_interval: Option<Duration>,
    /// Wait before repeating an unchanged, still firing (and unacknowledged) group.
    #[serde(
        default,
        with = "ordermon_domain::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_interval: Option<Duration>,
    /// Go on to the next sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Child routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

/// Timings and grouping a route resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Position in the tree, e.g. `0`, `0.1`.
    pub id: String,
    /// The receiver.
    pub receiver: Option<String>,
    /// Grouping labels (`None` = every label).
    pub group_by: Option<Vec<String>>,
    /// First wait.
    pub group_wait: Duration,
    /// Wait between changes.
    pub group_interval: Duration,
    /// Wait between repeats.
    pub repeat_interval: Duration,
}

struct Node {
    route: Route,
    matchers: Vec<Matcher>,
    continue_matching: bool,
    children: Vec<Node>,
}

/// The resolved tree.
pub struct RouteTree {
    root: Node,
}

impl std::fmt::Debug for RouteTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTree").finish_non_exhaustive()
    }
}

/// Defaults of the root route.
pub const DEFAULT_GROUP_BY: &[&str] = &["rule", "user_id"];
/// Default first wait.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_millis(500);
/// Default wait between changes.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(60);
/// Default wait between repeats.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

impl RouteTree {
    /// Resolves the configuration (children inherit unset fields).
    ///
    /// # Errors
    /// A bad `group_by` label, a zero interval, or a receiver not in
    /// `receivers`; the message names the route.
    pub fn new(config: &RouteConfig, receivers: &[&str]) -> Result<Self, String> {
        let root = Route {
            id: "0".to_owned(),
            receiver: None,
            group_by: Some(DEFAULT_GROUP_BY.iter().map(|s| (*s).to_owned()).collect()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        };
        Ok(Self {
            root: build(config, &root, "0".to_owned(), receivers)?,
        })
    }

    /// The routes an alert with `labels` goes to (none when no route has a
    /// receiver).
    #[must_use]
    pub fn routes_for(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        let mut out = Vec::new();
        walk(&self.root, labels, &mut out);
        out.retain(|r| r.receiver.is_some());
        out
    }
}

fn build(c: &RouteConfig, parent: &Route, id: String, receivers: &[&str]) -> Result<Node, String> {
    let err = |m: String| format!("alerting.route {id}: {m}");
    if let Some(r) = &c.receiver
        && !receivers.contains(&r.as_str())
    {
        return Err(err(format!(
            "unknown receiver `{r}` (configured: {})",
            if receivers.is_empty() {
                "none".to_owned()
            } else {
                receivers.join(", ")
            }
        )));
    }
    let group_by = match &c.group_by {
        None => parent.group_by.clone(),
        Some(g) if g.iter().any(|l| l == "...") => {
            if g.len() > 1 {
                return Err(err("group_by: `...` stands alone".to_owned()));
            }
            None
        }
        Some(g) => {
            for l in g {
                check_label_name(l).map_err(|e| err(format!("group_by: {e}")))?;
            }
            Some(g.clone())
        }
    };
    let route = Route {
        id: id.clone(),
        receiver: c.receiver.clone().or_else(|| parent.receiver.clone()),
        group_by,
        group_wait: c.group_wait.unwrap_or(parent.group_wait),
        group_interval: c.group_interval.unwrap_or(parent.group_interval),
        repeat_interval: c.repeat_interval.unwrap_or(parent.repeat_interval),
    };
    if route.group_interval.is_zero() || route.repeat_interval.is_zero() {
        return Err(err(
            "group_interval and repeat_interval must be positive".to_owned()
        ));
    }
    if route.group_wait > Duration::from_secs(3600) {
        return Err(err("group_wait must be at most 1h".to_owned()));
    }
    let children = c
        .routes
        .iter()
        .enumerate()
        .map(|(i, child)| build(child, &route, format!("{id}.{i}"), receivers))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Node {
        route,
        matchers: c.matchers.clone(),
        continue_matching: c.continue_matching,
        children,
    })
}

/// True when the node (or a descendant) took the alert.
fn walk<'a>(node: &'a Node, labels: &BTreeMap<String, String>, out: &mut Vec<&'a Route>) -> bool {
    if !all_match(&node.matchers, labels) {
        return false;
    }
    let mut taken = false;
    for child in &node.children {
        if walk(child, labels, out) {
            taken = true;
            if !child.continue_matching {
                break;
            }
        }
    }
    if !taken {
        out.push(&node.route);
    }
    true
}

/// Matchers written as Alertmanager text in configuration.
pub(crate) mod matcher_text {
    use ordermon_domain::alert::matcher::Matcher;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(m: &[Matcher], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(ToString::to_string))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Matcher>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| t.parse::<Matcher>().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn tree(text: &str) -> Result<RouteTree, String> {
        let c: RouteConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        RouteTree::new(&c, &["ops", "pager", "desk"])
    }

    #[test]
    fn first_match_wins_unless_continue_and_children_inherit() {
        let t = tree(
            r#"
            receiver = "ops"
            group_wait = "1s"
            [[routes]]
            matchers = ['severity="critical"']
            receiver = "pager"
            continue = true
            group_wait = "0s"
            [[routes]]
            matchers = ['user_id=~"desk-.*"']
            receiver = "desk"
            group_by = ["..."]
            "#,
        )
        .unwrap();
        let crit_desk = t.routes_for(&labels(&[("severity", "critical"), ("user_id", "desk-1")]));
        let ids: Vec<_> = crit_desk
            .iter()
            .map(|r| r.receiver.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["pager", "desk"]);
        assert_eq!(crit_desk[0].group_wait, Duration::ZERO);
        assert_eq!(crit_desk[1].group_wait, Duration::from_secs(1), "inherited");
        assert_eq!(crit_desk[1].group_by, None);
        assert_eq!(
            crit_desk[0].group_by.as_deref(),
            Some(&["rule".to_owned(), "user_id".to_owned()][..])
        );
        let other = t.routes_for(&labels(&[("severity", "warning"), ("user_id", "bob")]));
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].receiver.as_deref(), Some("ops"));
        assert_eq!(other[0].id, "0");
    }

    #[test]
    fn no_receiver_no_route_and_bad_trees_are_refused() {
        let t = tree("").unwrap();
        assert!(t.routes_for(&labels(&[("rule", "x")])).is_empty());
        let e = tree(r#"receiver = "nobody""#).unwrap_err();
        assert!(e.contains("unknown receiver `nobody`"), "{e}");
        assert!(
            tree(
                r#"receiver = "ops"
            group_by = ["bad-label"]"#
            )
            .is_err()
        );
        assert!(
            tree(
                r#"receiver = "ops"
            group_interval = "0s""#
            )
            .is_err()
        );
        assert!(
            tree(
                r#"receiver = "ops"
            matchers = ['user_id=~"(("']"#
            )
            .is_err()
        );
    }
}
