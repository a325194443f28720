//! The user's strategy book: the strategy configurations the owner holds
//! (loaded on first use, written only by the owner), the checks a
//! configuration must pass, and what a change makes of a configuration and
//! which events it records. The owner records the changes (versions,
//! events) and makes the running monitor match them (`strategy_ops.rs`).

use std::collections::HashMap;

use ordermon_domain::event::StrategyEvent;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStats, StrategyStatus};
use serde::Deserialize;

use crate::catalog::InstrumentCatalog;
use crate::error::{AppError, FieldError};
use crate::strategy::StrategyRegistry;

/// Most instruments one strategy may name (after duplicates are dropped).
pub(super) const MAX_STRATEGY_INSTRUMENTS: usize = 100;

/// Largest `params` of one strategy, as JSON bytes.
pub(super) const MAX_STRATEGY_PARAMS_BYTES: usize = 16 * 1024;

/// Changes to a strategy (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyPatch {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New parameters (validated by the type; applied without restart).
    #[serde(default)]
    pub params: Option<serde_json::Value>,
    /// Enable or disable.
    #[serde(default)]
    pub status: Option<StrategyStatus>,
    /// New instruments.
    #[serde(default)]
    pub instruments: Option<Vec<InstrumentId>>,
}

/// A user's strategy configurations by id; `None` until loaded.
#[derive(Debug, Default)]
pub(super) struct StrategyBook(Option<HashMap<StrategyId, StrategyConfig>>);

impl StrategyBook {
    /// True once the configurations were read from the store.
    pub(super) fn is_loaded(&self) -> bool {
        self.0.is_some()
    }

    /// Holds `list` as the user's configurations.
    pub(super) fn load(&mut self, list: Vec<StrategyConfig>) {
        self.0 = Some(list.into_iter().map(|s| (s.id.clone(), s)).collect());
    }

    /// Forgets the configurations: they are read again on next use.
    pub(super) fn forget(&mut self) {
        self.0 = None;
    }

    /// One configuration.
    pub(super) fn get(&self, id: &StrategyId) -> Option<&StrategyConfig> {
        self.0.as_ref().and_then(|m| m.get(id))
    }

    /// One configuration, to change in place (stats, versions).
    pub(super) fn get_mut(&mut self, id: &StrategyId) -> Option<&mut StrategyConfig> {
        self.0.as_mut().and_then(|m| m.get_mut(id))
    }

    /// Updates the results of a strategy (orders, fills, P&L); does nothing
    /// for a strategy not in the book.
    pub(super) fn update_stats(&mut self, id: &StrategyId, f: impl FnOnce(&mut StrategyStats)) {
        if let Some(s) = self.get_mut(id) {
            f(&mut s.stats);
        }
    }

    /// Adds or replaces a configuration.
    pub(super) fn put(&mut self, strategy: StrategyConfig) {
        self.0
            .get_or_insert_with(HashMap::new)
            .insert(strategy.id.clone(), strategy);
    }

    /// Removes a configuration.
    pub(super) fn remove(&mut self, id: &StrategyId) {
        if let Some(m) = self.0.as_mut() {
            m.remove(id);
        }
    }

    /// The enabled strategies' ids.
    pub(super) fn enabled(&self) -> Vec<StrategyId> {
        self.0
            .iter()
            .flat_map(HashMap::values)
            .filter(|s| s.status == StrategyStatus::Enabled)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Every configuration, by id.
    pub(super) fn list(&self) -> Vec<StrategyConfig> {
        let mut v: Vec<StrategyConfig> = self.0.iter().flat_map(|m| m.values().cloned()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Replaces the book with `fresh` (the store's view), keeping the
    /// in-memory stats (not yet written) of the strategies that remain.
    /// Returns each strategy of either side with what it was before: its old
    /// configuration, or for a new one a disabled copy of the fresh one.
    pub(super) fn replace_all(
        &mut self,
        fresh: Vec<StrategyConfig>,
    ) -> Vec<(StrategyId, StrategyConfig)> {
        let old = self.0.take().unwrap_or_default();
        let mut map: HashMap<StrategyId, StrategyConfig> =
            fresh.into_iter().map(|s| (s.id.clone(), s)).collect();
        for (id, s) in &mut map {
            if let Some(o) = old.get(id) {
                s.stats = o.stats.clone();
            }
        }
        let mut ids: Vec<&StrategyId> = old.keys().chain(map.keys()).collect();
        ids.sort();
        ids.dedup();
        let before = ids
            .into_iter()
            .filter_map(|id| {
                let b = old.get(id).cloned().or_else(|| {
                    map.get(id).cloned().map(|mut b| {
                        b.status = StrategyStatus::Disabled;
                        b
                    })
                })?;
                Some((id.clone(), b))
            })
            .collect();
        self.0 = Some(map);
        before
    }
}

/// `current` with `patch` applied (instruments without repeats), not yet
/// checked.
pub(super) fn patched(current: &StrategyConfig, patch: &StrategyPatch) -> StrategyConfig {
    let mut next = current.clone();
    if let Some(n) = &patch.name {
        next.name.clone_from(n);
    }
    if let Some(p) = &patch.params {
        next.params = p.clone();
    }
    if let Some(i) = &patch.instruments {
        next.instruments.clone_from(i);
        dedupe_instruments(&mut next.instruments);
    }
    if let Some(st) = patch.status {
        next.status = st;
    }
    next
}

/// The events that record the change from `before` to `next`.
pub(super) fn change_events(before: &StrategyConfig, next: &StrategyConfig) -> Vec<StrategyEvent> {
    let mut events = Vec::new();
    if before.params != next.params || before.instruments != next.instruments {
        events.push(StrategyEvent::ParamsUpdated {
            params: next.params.clone(),
        });
    }
    if before.status != next.status {
        events.push(StrategyEvent::StatusChanged {
            status: next.status,
        });
    }
    events
}

/// A new strategy of `user` as the book keeps it: instruments without
/// repeats, versions from zero.
pub(super) fn new_strategy(mut s: StrategyConfig, user: &UserId) -> StrategyConfig {
    dedupe_instruments(&mut s.instruments);
    s.version = 0;
    s.sequence = 0;
    s.user_id = user.clone();
    s
}

/// Checks a configuration: bounds first (a strategy is stored, evented and
/// relayed whole, so its size is capped before anything looks at each of
/// its parts), then the name, the instruments against the catalog and the
/// params against the type.
///
/// # Errors
/// Validation, naming each field.
pub(super) fn validate(
    s: &StrategyConfig,
    catalog: &InstrumentCatalog,
    registry: &StrategyRegistry,
) -> Result<(), AppError> {
    if s.instruments.len() > MAX_STRATEGY_INSTRUMENTS {
        return Err(AppError::Validation(vec![FieldError::new(
            "instruments",
            format!("at most {MAX_STRATEGY_INSTRUMENTS} instruments"),
        )]));
    }
    let params_len = serde_json::to_vec(&s.params).map_or(usize::MAX, |b| b.len());
    if params_len > MAX_STRATEGY_PARAMS_BYTES {
        return Err(AppError::Validation(vec![FieldError::new(
            "params",
            format!("at most {MAX_STRATEGY_PARAMS_BYTES} bytes of JSON"),
        )]));
    }
    let mut errors = Vec::new();
    if s.name.trim().is_empty() || s.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1-200 characters"));
    }
    for (i, inst) in s.instruments.iter().enumerate() {
        if catalog.get(inst).is_none() {
            errors.push(FieldError::new(
                format!("instruments[{i}]"),
                "unknown instrument",
            ));
        }
    }
    if let Err(mut e) = registry.validate(&s.strategy_type, &s.params, &s.instruments) {
        errors.append(&mut e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Drops repeated instruments, keeping the first of each in order.
fn dedupe_instruments(instruments: &mut Vec<InstrumentId>) {
    let mut seen = std::collections::HashSet::new();
    instruments.retain(|i| seen.insert(i.clone()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use ordermon_domain::instrument::Instrument;
    use ordermon_domain::values::{Currency, Price, Quantity};
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;

    fn inst(s: &str) -> InstrumentId {
        InstrumentId::new(s).unwrap()
    }

    fn config(id: &str, instruments: &[&str]) -> StrategyConfig {
        let now = Utc::now();
        StrategyConfig {
            id: StrategyId::new(id).unwrap(),
            user_id: UserId::new("alice").unwrap(),
            strategy_type: "price_alert".to_owned(),
            name: format!("strategy {id}"),
            instruments: instruments.iter().map(|i| inst(i)).collect(),
            params: json!({"level": "100"}),
            status: StrategyStatus::Enabled,
            stats: Default::default(),
            created_at: now,
            updated_at: now,
            version: 3,
            sequence: 5,
        }
    }

    fn catalog() -> InstrumentCatalog {
        InstrumentCatalog::new([Instrument {
            id: inst("ACME.SIM"),
            quote_currency: Currency::new("USD").unwrap(),
            tick_size: Price::new(dec!(0.01)).unwrap(),
            lot_size: Quantity::new(dec!(1)).unwrap(),
            min_quantity: Quantity::new(dec!(1)).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: dec!(1),
            version: 1,
        }])
    }

    fn fields(r: Result<(), AppError>) -> Vec<String> {
        match r {
            Err(AppError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_drops_repeated_instruments() {
        let before = config("s1", &["ACME.SIM"]);
        let next = patched(
            &before,
            &StrategyPatch {
                instruments: Some(vec![inst("B.SIM"), inst("A.SIM"), inst("B.SIM")]),
                ..StrategyPatch::default()
            },
        );
        assert_eq!(next.instruments, vec![inst("B.SIM"), inst("A.SIM")]);
        assert_eq!(
            (&next.name, &next.params, next.status),
            (&before.name, &before.params, before.status)
        );
        let next = patched(
            &before,
            &StrategyPatch {
                name: Some("renamed".to_owned()),
                status: Some(StrategyStatus::Disabled),
                ..StrategyPatch::default()
            },
        );
        assert_eq!(next.name, "renamed");
        assert_eq!(next.status, StrategyStatus::Disabled);
        assert_eq!(next.instruments, before.instruments);
    }

    #[test]
    fn a_change_records_params_and_status_events_and_nothing_for_a_rename() {
        let before = config("s1", &["ACME.SIM"]);
        let mut renamed = before.clone();
        renamed.name = "other".to_owned();
        assert!(change_events(&before, &renamed).is_empty());
        let mut moved = before.clone();
        moved.instruments = vec![inst("B.SIM")];
        assert!(matches!(
            change_events(&before, &moved).as_slice(),
            [StrategyEvent::ParamsUpdated { .. }]
        ));
        let mut both = before.clone();
        both.params = json!({"level": "101"});
        both.status = StrategyStatus::Disabled;
        assert!(matches!(
            change_events(&before, &both).as_slice(),
            [
                StrategyEvent::ParamsUpdated { .. },
                StrategyEvent::StatusChanged {
                    status: StrategyStatus::Disabled
                }
            ]
        ));
    }

    #[test]
    fn a_new_strategy_belongs_to_its_user_and_starts_at_version_zero() {
        let s = new_strategy(
            config("s1", &["A.SIM", "A.SIM"]),
            &UserId::new("bob").unwrap(),
        );
        assert_eq!((s.version, s.sequence), (0, 0));
        assert_eq!(s.user_id.as_str(), "bob");
        assert_eq!(s.instruments, vec![inst("A.SIM")]);
    }

    #[test]
    fn replacing_the_book_keeps_stats_and_says_what_each_strategy_was() {
        let mut book = StrategyBook::default();
        assert!(!book.is_loaded());
        let mut kept = config("kept", &["ACME.SIM"]);
        kept.stats.orders = 7;
        book.load(vec![kept.clone(), config("gone", &["ACME.SIM"])]);
        assert_eq!(book.enabled().len(), 2);
        let mut fresh_kept = config("kept", &["ACME.SIM"]);
        fresh_kept.params = json!({"level": "120"});
        let before = book.replace_all(vec![fresh_kept, config("new", &["ACME.SIM"])]);
        let ids: Vec<&str> = before.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["gone", "kept", "new"]);
        // The old configurations, and a disabled copy for the new one.
        assert_eq!(before[1].1.params, kept.params);
        assert_eq!(before[0].1.status, StrategyStatus::Enabled);
        assert_eq!(before[2].1.status, StrategyStatus::Disabled);
        // The store's configuration, with the stats not yet written.
        let now_kept = book.get(&StrategyId::new("kept").unwrap()).unwrap();
        assert_eq!(now_kept.params, json!({"level": "120"}));
        assert_eq!(now_kept.stats.orders, 7);
        assert!(book.get(&StrategyId::new("gone").unwrap()).is_none());
        let listed: Vec<String> = book.list().into_iter().map(|s| s.id.to_string()).collect();
        assert_eq!(listed, ["kept", "new"]);
        book.forget();
        assert!(!book.is_loaded());
    }

    #[test]
    fn validation_checks_bounds_first_then_names_every_bad_field() {
        let (catalog, registry) = (catalog(), StrategyRegistry::with_builtins());
        assert!(validate(&config("s1", &["ACME.SIM"]), &catalog, &registry).is_ok());
        let many: Vec<String> = (0..=MAX_STRATEGY_INSTRUMENTS)
            .map(|i| format!("X{i}.SIM"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut s = config("s1", &many);
        s.name = String::new();
        assert_eq!(fields(validate(&s, &catalog, &registry)), ["instruments"]);
        let mut s = config("s1", &["ACME.SIM"]);
        s.params = json!({ "level": "1".repeat(MAX_STRATEGY_PARAMS_BYTES) });
        assert_eq!(fields(validate(&s, &catalog, &registry)), ["params"]);
        let mut s = config("s1", &["ACME.SIM", "NOPE.SIM"]);
        s.name = " ".to_owned();
        s.strategy_type = "no_such_type".to_owned();
        assert_eq!(
            fields(validate(&s, &catalog, &registry)),
            ["name", "instruments[1]", "type"]
        );
    }
}
