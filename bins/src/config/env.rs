//! `ORDERMON_*` environment overrides, turned into TOML tables merged over the file.
//!
//! `ORDERMON_DATABASE__URL=postgres://…` becomes `database.url = "postgres://…"`:
//! the prefix is dropped, `__` separates nesting levels and names are lowercased.
//! Variables without `__` (e.g. `ORDERMON_CONFIG`) are not configuration keys
//! and are left alone.
//!
//! A value is a string when the key's default is a string (or the key is one of
//! the optional string keys the caller names); otherwise it is read
//! as a TOML value when it parses as one (`true`, `8`, `0.5`, `["a", "b"]`) and
//! kept as a string when it does not.

use toml::{Table, Value};

/// The prefix of every override.
pub const PREFIX: &str = "ORDERMON_";

/// One override from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The variable's name, for error messages.
    pub var: String,
    /// The key path, e.g. `["database", "url"]`.
    pub path: Vec<String>,
    /// The parsed value.
    pub value: Value,
}

impl Override {
    /// The override as a one-key nested table.
    #[must_use]
    pub fn table(&self) -> Table {
        let mut value = self.value.clone();
        for key in self.path.iter().rev() {
            let mut t = Table::new();
            t.insert(key.clone(), value);
            value = Value::Table(t);
        }
        match value {
            Value::Table(t) => t,
            _ => Table::new(),
        }
    }

    /// The dotted key, e.g. `database.url`.
    #[must_use]
    pub fn key(&self) -> String {
        self.path.join(".")
    }
}

/// The overrides among `vars`, sorted by variable name so the outcome does not
/// depend on the environment's order. `defaults` (the default configuration as
/// TOML) says which keys are strings; `string_keys` names the string keys that
/// have no default (unset options such as `auth.jwt_secret`).
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
    defaults: &Table,
    string_keys: &[&str],
) -> Vec<Override> {
    let mut out: Vec<Override> = vars
        .into_iter()
        .filter_map(|(var, raw)| {
            let rest = var.strip_prefix(PREFIX)?;
            if !rest.contains("__") {
                return None;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let is_string = string_keys.contains(&path.join(".").as_str())
                || matches!(lookup(defaults, &path), Some(Value::String(_)));
            let value = if is_string {
                Value::String(raw)
            } else {
                parse_value(&raw)
            };
            Some(Override { var, path, value })
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out
}

fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get(first)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}

fn parse_value(raw: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// Merges `over` into `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Table {
        toml::from_str(
            r#"
            [http]
            addr = "127.0.0.1:8080"
            body_limit_bytes = 1048576
            [auth]
            jwt_secret_file = "data/jwt_secret"
            "#,
        )
        .unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_map_to_nested_lowercase_keys() {
        let o = overrides(
            vars(&[
                ("ORDERMON_MONITOR__SCAN_INTERVAL", "5s"),
                ("ORDERMON_CONFIG", "x.toml"),
                ("OTHER__THING", "1"),
                ("ORDERMON_ENGINE__RISK__FEE_RATE", "0.002"),
            ]),
            &defaults(),
            &[],
        );
        let keys: Vec<String> = o.iter().map(Override::key).collect();
        assert_eq!(keys, ["engine.risk.fee_rate", "monitor.scan_interval"]);
        assert_eq!(o[1].value, Value::String("5s".into()));
    }

    #[test]
    fn values_are_typed_by_the_default_or_parsed() {
        let o = overrides(
            vars(&[
                ("ORDERMON_HTTP__ADDR", "8080"),
                ("ORDERMON_HTTP__BODY_LIMIT_BYTES", "2048"),
                ("ORDERMON_AUTH__JWT_SECRET", "12345"),
                ("ORDERMON_DEMO__INSTRUMENTS", "false"),
                ("ORDERMON_FEED__SEED", "not a number"),
            ]),
            &defaults(),
            &["auth.jwt_secret"],
        );
        let get = |k: &str| o.iter().find(|x| x.key() == k).unwrap().value.clone();
        // A string default keeps the text even when it looks like a number.
        assert_eq!(get("http.addr"), Value::String("8080".into()));
        assert_eq!(get("http.body_limit_bytes"), Value::Integer(2048));
        // A named optional string key too.
        assert_eq!(get("auth.jwt_secret"), Value::String("12345".into()));
        // Otherwise parsed as TOML when it parses.
        assert_eq!(get("demo.instruments"), Value::Boolean(false));
        assert_eq!(get("feed.seed"), Value::String("not a number".into()));
    }

    #[test]
    fn merge_is_deep() {
        let mut base: Table = toml::from_str("[a]\nx = 1\ny = 2\n[b]\nz = 3").unwrap();
        let over: Table = toml::from_str("[a]\ny = 20\nw = 4").unwrap();
        merge(&mut base, over);
        assert_eq!(
            base,
            toml::from_str::<Table>("[a]\nx = 1\ny = 20\nw = 4\n[b]\nz = 3").unwrap()
        );
    }
}
