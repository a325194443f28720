//! Alerting in the composition root: a notifier per configured receiver, the
//! alerting service over the engine's commit feed, and the instance figures
//! its rules read (relay backlog, dead letters, owners' queues).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use ordermon_application::Engine;
use ordermon_application::alerting::{AlertingDeps, AlertingService, SystemFigures, SystemProbe};
use ordermon_application::consume::ConsumerHandle;
use ordermon_application::relay::RelayHandle;
use ordermon_domain::ports::{Clock, Notifier};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::AlertingSettings;
use crate::messaging::{Messaging, Section};

/// The running alerting service and its tasks.
pub(crate) struct Alerting {
    pub(crate) service: Arc<AlertingService>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Figures of this instance for the system rules.
struct Probe {
    engine: Arc<Engine>,
    relay: Option<RelayHandle>,
    consumer: ConsumerHandle,
}

#[async_trait]
impl SystemProbe for Probe {
    async fn figures(&self) -> SystemFigures {
        let outbox_pending = match &self.relay {
            Some(r) => Some(r.status().pending),
            // Another instance relays: read the backlog from the store.
            None => self.engine.persistence().outbox.pending_count().await.ok(),
        };
        SystemFigures {
            outbox_pending,
            outbox_set_aside: self.relay.as_ref().map(|r| r.status().set_aside_total),
            dead_letters: Some(self.consumer.status().dead_lettered),
            queued_commands: Some(self.engine.status().queued_commands as u64),
        }
    }
}

/// Builds the configured receivers' notifiers and starts the service with
/// them and the `registered` ones (an embedder's, by their names).
///
/// # Errors
/// A receiver that cannot be built, or a configuration the service refuses.
pub(crate) async fn start(
    settings: &AlertingSettings,
    engine: &Arc<Engine>,
    messaging: &Messaging,
    registered: Vec<Arc<dyn Notifier>>,
    clock: Arc<dyn Clock>,
    instance: String,
) -> anyhow::Result<Alerting> {
    let mut notifiers: HashMap<String, Arc<dyn Notifier>> = HashMap::new();
    for (name, receiver) in &settings.receivers {
        let n = ordermon_notify::build(name, receiver)
            .with_context(|| format!("building alert receiver `{name}`"))?;
        notifiers.insert(name.clone(), n);
    }
    for n in registered {
        notifiers.insert(n.name().to_owned(), n);
    }
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    let deps = AlertingDeps {
        persistence: engine.persistence().clone(),
        committer: engine.committer(),
        events: engine.events.subscribe(),
        quotes: engine.instruments.quotes(),
        catalog: engine.instruments.catalog(),
        clock,
        notifiers,
        probe: Some(Arc::new(Probe {
            engine: engine.clone(),
            relay: messaging.relay(),
            consumer: messaging.consumer(),
        })),
        instance,
        global_state: engine.status().trading_state,
    };
    let service = AlertingService::start(settings, deps, &tasks, cancel.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {}", detail(&e)))
        .context("starting alerting")?;
    Ok(Alerting {
        service,
        tasks,
        cancel,
    })
}

fn detail(e: &ordermon_application::AppError) -> String {
    match e {
        ordermon_application::AppError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

impl Alerting {
    /// `/status` → `components.alerting`.
    pub(crate) fn status_section(&self) -> Arc<Section> {
        let service = self.service.clone();
        Arc::new(Section::new("alerting", move || {
            serde_json::to_value(service.status()).unwrap_or_default()
        }))
    }

    /// Stops the worker (after it stored what it decided) and the deliverer.
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
