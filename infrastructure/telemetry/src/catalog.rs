//! Every metric ordermon records, with its type, unit and the Prometheus
//! `# HELP` text: one table, [`METRICS`], sorted by name.
//!
//! [`describe_all`] hands the table to the installed recorder; the recorder
//! installer calls it, so every metric is exported with its HELP line (and, for
//! a histogram or gauge of durations, its unit) from the first scrape on.
//!
//! Adding a metric means adding its entry here: the test
//! `tests/catalog_complete.rs` walks the workspace's sources and fails on a
//! metric name missing from the table, or on an entry no source records any
//! more.

use metrics::Unit;

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Only goes up (`counter!`); the name ends in `_total`.
    Counter,
    /// Goes up and down (`gauge!`).
    Gauge,
    /// A distribution of observations (`histogram!`).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`, as the macro that records it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric: its name, kind, unit and HELP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDoc {
    /// The full name, `ordermon_…`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Seconds for `*_seconds`, bytes for `*_bytes`; none otherwise.
    pub unit: Option<Unit>,
    /// The HELP text: one sentence saying what is counted or measured and by
    /// which labels.
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> MetricDoc {
    MetricDoc {
        name,
        kind: MetricKind::Counter,
        unit: None,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> MetricDoc {
    MetricDoc {
        name,
        kind: MetricKind::Gauge,
        unit: None,
        help,
    }
}

const fn histogram(name: &'static str, help: &'static str) -> MetricDoc {
    MetricDoc {
        name,
        kind: MetricKind::Histogram,
        unit: None,
        help,
    }
}

const fn seconds(doc: MetricDoc) -> MetricDoc {
    MetricDoc {
        unit: Some(Unit::Seconds),
        ..doc
    }
}

/// Every metric the workspace records, sorted by name.
pub const METRICS: &[MetricDoc] = &[
    counter(
        "ordermon_alert_detections_total",
        "Anomalies newly detected by sampled alert rules, by detector `condition` (`zscore`, `ewma`, `mad`, `seasonal`, `fusion`, `baseline`, `predict`, `isolation_forest`, `threshold`).",
    ),
    seconds(histogram(
        "ordermon_alert_evaluation_seconds",
        "Time taken by one full evaluation of every alert rule.",
    )),
    counter(
        "ordermon_alert_transitions_total",
        "Alert state changes, by the new `state` (`pending`, `firing`, `resolved`) and `severity` (`info`, `warning`, `critical`).",
    ),
    counter(
        "ordermon_alerting_events_lagged_total",
        "Committed events the alerting service skipped because it fell behind the commit feed.",
    ),
    gauge(
        "ordermon_alerting_sampled_series",
        "Series the alerting service keeps samples of, as of the last evaluation.",
    ),
    gauge(
        "ordermon_alerts",
        "Unresolved alerts now, by `state` (`pending`, `firing`) and `severity` (`info`, `warning`, `critical`).",
    ),
    gauge(
        "ordermon_build_info",
        "Always 1; the labels `version` and `service` say which version of which service runs.",
    ),
    counter(
        "ordermon_bus_dead_letters_total",
        "Bus messages moved to the dead letters after their last failed attempt, by `bus` (`memory`, `redis`, `kafka`, `rabbitmq`).",
    ),
    counter(
        "ordermon_bus_published_total",
        "Messages published to the bus, by `bus` (`redis`, `kafka`, `rabbitmq`).",
    ),
    counter(
        "ordermon_bus_reclaimed_total",
        "Pending bus messages claimed back from a consumer that went quiet, by `bus` (`redis`).",
    ),
    counter(
        "ordermon_bus_reconnects_total",
        "Reconnections after a lost bus connection, by `bus` (`rabbitmq`).",
    ),
    counter(
        "ordermon_bus_replayed_total",
        "Dead letters replayed onto the bus, by `bus` (`redis`, `kafka`, `rabbitmq`).",
    ),
    counter(
        "ordermon_bus_retries_total",
        "Bus messages scheduled for another attempt after a failed one, by `bus` (`redis`, `kafka`, `rabbitmq`).",
    ),
    counter(
        "ordermon_cache_degradations_total",
        "Entries of the tiered cache into degraded mode (Redis or its invalidation feed lost).",
    ),
    gauge(
        "ordermon_cache_degraded",
        "1 while the tiered cache is degraded and reads fall through to the store, else 0.",
    ),
    counter(
        "ordermon_cache_errors_total",
        "Cache reads that failed or returned an undecodable entry, by `namespace`.",
    ),
    counter(
        "ordermon_cache_fence_corrections_total",
        "Cache entries deleted again because their fill raced another instance's invalidation.",
    ),
    counter(
        "ordermon_cache_fenced_fills_total",
        "Cache fills dropped because another instance had just invalidated the key, by `namespace`.",
    ),
    counter(
        "ordermon_cache_hits_total",
        "Read-through cache hits, negative entries included, by `namespace`.",
    ),
    counter(
        "ordermon_cache_invalidations_total",
        "Cache keys invalidated after a write, by `namespace`.",
    ),
    seconds(histogram(
        "ordermon_cache_load_seconds",
        "Time taken to load a value the cache missed, by `namespace`.",
    )),
    counter(
        "ordermon_cache_loads_total",
        "Values loaded from the store or the owner after a cache miss, by `namespace`.",
    ),
    counter(
        "ordermon_cache_local_hits_total",
        "Tiered cache hits in the in-process tier, by `namespace`.",
    ),
    counter(
        "ordermon_cache_misses_total",
        "Read-through cache misses, by `namespace`.",
    ),
    counter(
        "ordermon_cache_negative_hits_total",
        "Read-through cache hits on a cached absence, by `namespace`.",
    ),
    counter(
        "ordermon_cache_remote_errors_total",
        "Failed Redis operations of the tiered cache.",
    ),
    counter(
        "ordermon_cache_remote_evictions_total",
        "In-process cache entries evicted because another instance changed them, by `namespace`.",
    ),
    counter(
        "ordermon_cache_remote_hits_total",
        "Tiered cache hits in the Redis tier, by `namespace`.",
    ),
    counter(
        "ordermon_cache_skipped_fills_total",
        "Loaded values not cached because their key was invalidated during the load, by `namespace`.",
    ),
    histogram(
        "ordermon_client_id_lookup_batch_size",
        "Orders looked up by client order id in one batched store query.",
    ),
    gauge(
        "ordermon_component_up",
        "1 while a `component` of readiness (`store`, `bus`, `cache`, `market_data`, …) answers, 0 while it does not; checked every 5 s.",
    ),
    counter(
        "ordermon_consumer_events_total",
        "Bus deliveries processed by a consumer, by `group` and `outcome` (`handled`, `duplicate`, `retried`, `dead_lettered`).",
    ),
    gauge(
        "ordermon_consumer_lag_messages",
        "Messages a consumer `group` still has to receive or acknowledge, as its broker counts them (read every few seconds; the same on every member of the group).",
    ),
    seconds(histogram(
        "ordermon_consumer_lag_seconds",
        "Time from an event's occurrence to its arrival at this instance's consumer (its lag behind the event log).",
    )),
    seconds(histogram(
        "ordermon_db_pool_acquire_seconds",
        "Time to get a pooled database connection, by `kind` (`read`; `write`: with its transaction begun).",
    )),
    gauge(
        "ordermon_db_pool_connections",
        "Database pool connections open, by `state` (`idle`, `busy`), read at each scrape.",
    ),
    gauge(
        "ordermon_db_pool_waiters",
        "Tasks waiting now for a pooled database connection.",
    ),
    counter(
        "ordermon_events_too_large_total",
        "Changes refused because one of their events exceeded the maximum event size.",
    ),
    counter(
        "ordermon_feed_polls_total",
        "Quote polls of the live feed, by `provider` and `outcome` (`published`, `unchanged`, `stale`, `failed`).",
    ),
    gauge(
        "ordermon_feed_stale_instruments",
        "Instruments whose latest quote is missing or older than the limit, by `provider`.",
    ),
    counter("ordermon_fills_total", "Fills applied to orders."),
    gauge("ordermon_http_connections", "HTTP connections open now."),
    counter(
        "ordermon_http_forwarded_total",
        "Requests forwarded to the instance owning the user, by `outcome` (`forwarded`, `failed`).",
    ),
    seconds(histogram(
        "ordermon_http_request_duration_seconds",
        "HTTP request latency, by `method` and `route` template.",
    )),
    counter(
        "ordermon_http_requests_total",
        "HTTP requests answered, by `method`, `route` template and `status`.",
    ),
    counter(
        "ordermon_http_throttled_total",
        "HTTP requests refused by the request limits, by `by` (`user`, `address`).",
    ),
    counter(
        "ordermon_log_lines_dropped_total",
        "Log lines dropped because the log file writer's queue was full.",
    ),
    counter(
        "ordermon_marketdata_bad_responses_total",
        "Market data answers that could not be understood, by `provider` and `endpoint`.",
    ),
    gauge(
        "ordermon_marketdata_breaker_state",
        "Circuit breaker state, by `provider`: 0 closed, 1 half-open, 2 open.",
    ),
    counter(
        "ordermon_marketdata_breaker_transitions_total",
        "Circuit breaker state changes, by `provider` and the new `state` (`closed`, `half_open`, `open`).",
    ),
    counter(
        "ordermon_marketdata_cache_total",
        "Market data cache lookups, by `provider`, `endpoint` (`quote`, `bars`) and `outcome` (`hit`, `miss`, `error`).",
    ),
    seconds(histogram(
        "ordermon_marketdata_rate_limit_wait_seconds",
        "Time a market data request waited for the request weight budget, by `provider`.",
    )),
    seconds(histogram(
        "ordermon_marketdata_request_seconds",
        "Market data HTTP request latency, by `provider` and `endpoint`.",
    )),
    counter(
        "ordermon_marketdata_requests_total",
        "Market data HTTP requests sent, by `provider`, `endpoint` and `outcome` (`ok`, `refused`, `rate_limited`, `banned`, `server_error`, `timeout`, `connect`, `transport`).",
    ),
    counter(
        "ordermon_marketdata_retries_total",
        "Market data requests retried, by `provider` and `endpoint`.",
    ),
    counter(
        "ordermon_marketdata_short_circuited_total",
        "Market data calls failed fast by an open circuit breaker, by `provider` and `endpoint`.",
    ),
    counter(
        "ordermon_marketdata_throttled_total",
        "Market data calls refused by the local rate limiter before sending, by `provider` and `reason` (`budget`, `gate`, `queue`).",
    ),
    gauge(
        "ordermon_marketdata_used_weight",
        "Request weight used this minute as last reported by the exchange, by `provider`.",
    ),
    seconds(histogram(
        "ordermon_notification_send_seconds",
        "Time taken to send one batch of notifications, by `receiver`.",
    )),
    counter(
        "ordermon_notifications_decided_total",
        "Notifications decided by alert routing and escalation, before delivery.",
    ),
    counter(
        "ordermon_notifications_total",
        "Notification delivery attempts, by `receiver`, `kind` (`webhook`, `slack`, `dingtalk`, `email`) and `outcome` (`sent`, `failed`, `retried`).",
    ),
    counter(
        "ordermon_orders_denied_total",
        "Orders denied by the pre-trade risk check, by `reason`.",
    ),
    counter(
        "ordermon_orders_submitted_total",
        "Orders that passed the risk check and reservation and were submitted.",
    ),
    histogram(
        "ordermon_outbox_batch_size",
        "Outbox rows published in one relay batch.",
    ),
    seconds(gauge(
        "ordermon_outbox_oldest_pending_seconds",
        "Age of the oldest outbox row not yet published, as of the last relay batch.",
    )),
    gauge(
        "ordermon_outbox_pending",
        "Outbox rows not yet published to the bus.",
    ),
    counter(
        "ordermon_outbox_published_total",
        "Outbox rows published to the bus.",
    ),
    counter(
        "ordermon_outbox_purged_total",
        "Sent outbox rows deleted after their retention period.",
    ),
    counter(
        "ordermon_outbox_relay_failures_total",
        "Outbox relay steps that failed on the outbox or the bus.",
    ),
    counter(
        "ordermon_outbox_set_aside_total",
        "Outbox rows the broker refused for good and the relay set aside.",
    ),
    counter(
        "ordermon_overfills_total",
        "Fills that took an order past its quantity.",
    ),
    counter(
        "ordermon_owner_commit_failures_total",
        "User owner cycles whose commit failed or was refused.",
    ),
    counter(
        "ordermon_owner_cycles_total",
        "User owner cycles committed.",
    ),
    gauge(
        "ordermon_owner_queued_commands",
        "Commands waiting in the user owners' mailboxes, read at each scrape.",
    ),
    gauge(
        "ordermon_owners",
        "User owner tasks running on this instance, read at each scrape.",
    ),
    seconds(gauge(
        "ordermon_process_start_time_seconds",
        "Unix time the process started recording metrics.",
    )),
    seconds(gauge(
        "ordermon_process_uptime_seconds",
        "Seconds since the process started recording metrics.",
    )),
    seconds(histogram(
        "ordermon_quote_to_decision_seconds",
        "Time from a quote's timestamp until the strategies it reached had handled it.",
    )),
    counter(
        "ordermon_quotes_lagged_total",
        "Quotes a strategy lane skipped because it fell behind the quote feed.",
    ),
    gauge(
        "ordermon_ready",
        "1 for the `state` /health/ready answers now (`ok`, `degraded`: a non-critical component down, `unavailable`: a critical one down), 0 for the others; checked every 5 s.",
    ),
    counter(
        "ordermon_reconciliation_mismatches_total",
        "Open orders the venue did not know during reconciliation.",
    ),
    histogram(
        "ordermon_state_load_batch_size",
        "Users whose owners' start-up reads were read together in one bulk load (one statement per table).",
    ),
    counter(
        "ordermon_store_batch_failures_total",
        "Change sets of a group commit that failed.",
    ),
    seconds(histogram(
        "ordermon_store_commit_seconds",
        "Time taken by one group commit to the store.",
    )),
    counter(
        "ordermon_store_commits_total",
        "Group commits to the store.",
    ),
    histogram(
        "ordermon_store_group_size",
        "Change sets committed together in one group commit.",
    ),
    counter(
        "ordermon_strategy_alerts_total",
        "Alerts raised by strategies.",
    ),
    counter(
        "ordermon_strategy_restarts_total",
        "Strategies restarted after a failure.",
    ),
    counter(
        "ordermon_stream_backlog_skipped_total",
        "Bus events skipped by the live stream because they predate this instance's start.",
    ),
    gauge(
        "ordermon_streams_open",
        "Live event streams (WebSockets) open now.",
    ),
    counter(
        "ordermon_venue_orders_adopted_total",
        "Open orders the venue took back when reconciling a user's orders.",
    ),
];

/// The entry for `name`, if the table has one.
#[must_use]
pub fn find(name: &str) -> Option<&'static MetricDoc> {
    METRICS
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &METRICS[i])
}

/// Describes every metric of [`METRICS`] to the installed recorder (HELP text
/// and unit). Without a recorder it does nothing; a recorder keeps the first
/// description of a name, so calling it again changes nothing.
pub fn describe_all() {
    for m in METRICS {
        match (m.kind, m.unit) {
            (MetricKind::Counter, Some(unit)) => metrics::describe_counter!(m.name, unit, m.help),
            (MetricKind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (MetricKind::Gauge, Some(unit)) => metrics::describe_gauge!(m.name, unit, m.help),
            (MetricKind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (MetricKind::Histogram, Some(unit)) => {
                metrics::describe_histogram!(m.name, unit, m.help);
            }
            (MetricKind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_sorted_and_well_formed() {
        for pair in METRICS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "not sorted or not unique: {} then {}",
                pair[0].name,
                pair[1].name
            );
        }
        for m in METRICS {
            let rest = m.name.strip_prefix("ordermon_").unwrap_or("");
            assert!(
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !rest.starts_with('_')
                    && !rest.ends_with('_')
                    && !rest.contains("__"),
                "{}: not `ordermon_` plus snake case",
                m.name
            );
            assert_eq!(find(m.name), Some(m));
        }
        assert_eq!(find("ordermon_no_such_metric_total"), None);
    }

    #[test]
    fn counters_and_only_counters_end_in_total() {
        for m in METRICS {
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{} is a {}",
                m.name,
                m.kind.as_str()
            );
        }
    }

    #[test]
    fn units_follow_the_name_suffix() {
        for m in METRICS {
            assert_eq!(
                m.unit == Some(Unit::Seconds),
                m.name.ends_with("_seconds"),
                "{}: unit {:?}",
                m.name,
                m.unit
            );
            assert_eq!(
                m.unit == Some(Unit::Bytes),
                m.name.ends_with("_bytes"),
                "{}: unit {:?}",
                m.name,
                m.unit
            );
            assert!(
                matches!(m.unit, None | Some(Unit::Seconds | Unit::Bytes)),
                "{}: unit {:?}",
                m.name,
                m.unit
            );
        }
    }

    /// A histogram measures durations (`_seconds`, latency buckets), sizes in
    /// bytes (`_bytes`) or counts per batch (`_size`, the size buckets): a new
    /// one must say which, so it gets the right buckets.
    #[test]
    fn histograms_say_what_they_measure() {
        for m in METRICS.iter().filter(|m| m.kind == MetricKind::Histogram) {
            assert!(
                m.name.ends_with("_seconds")
                    || m.name.ends_with("_bytes")
                    || m.name.ends_with("_size"),
                "{}: a histogram of durations ends in `_seconds`, of sizes in `_bytes`, of counts in `_size`",
                m.name
            );
            let timed = ["time", "latency", "wait"]
                .iter()
                .any(|w| m.help.to_ascii_lowercase().contains(w));
            assert_eq!(
                timed,
                m.name.ends_with("_seconds"),
                "{}: a histogram of durations must end in `_seconds` ({})",
                m.name,
                m.help
            );
        }
    }

    /// Prometheus exposes `x_total` of a counter, and `x_bucket`, `x_sum` and
    /// `x_count` of a histogram, under the family `x`: no other metric may take
    /// those names.
    #[test]
    fn no_two_metrics_share_a_family_or_a_series_name() {
        let mut families = HashSet::new();
        let mut series = HashSet::new();
        for m in METRICS {
            let family = match m.kind {
                MetricKind::Counter => m.name.strip_suffix("_total").unwrap_or(m.name),
                MetricKind::Gauge | MetricKind::Histogram => m.name,
            };
            assert!(families.insert(family), "family `{family}` taken twice");
            let own: Vec<String> = match m.kind {
                MetricKind::Histogram => ["bucket", "sum", "count"]
                    .iter()
                    .map(|s| format!("{}_{s}", m.name))
                    .chain([m.name.to_owned()])
                    .collect(),
                MetricKind::Counter | MetricKind::Gauge => vec![m.name.to_owned()],
            };
            for s in own {
                assert!(series.insert(s.clone()), "series `{s}` taken twice");
            }
        }
    }

    #[test]
    fn help_is_one_short_sentence() {
        for m in METRICS {
            assert!(!m.help.trim().is_empty(), "{}: no help", m.name);
            assert!(
                m.help.ends_with('.'),
                "{}: help ends without a period",
                m.name
            );
            assert!(
                !m.help.contains('\n') && !m.help.contains('\r'),
                "{}: help spans lines",
                m.name
            );
            assert!(
                !m.help.contains('\\'),
                "{}: help has a backslash (escaped in the exposition)",
                m.name
            );
            assert_eq!(m.help, m.help.trim(), "{}: help has outer spaces", m.name);
            assert!(
                m.help
                    .starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit()),
                "{}: help starts lower case",
                m.name
            );
            assert!(m.help.len() <= 200, "{}: help too long", m.name);
        }
    }

    #[test]
    fn described_metrics_render_their_help_and_type() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_all();
            for m in METRICS {
                match m.kind {
                    MetricKind::Counter => metrics::counter!(m.name).increment(1),
                    MetricKind::Gauge => metrics::gauge!(m.name).set(1.0),
                    MetricKind::Histogram => metrics::histogram!(m.name).record(1.0),
                }
            }
        });
        let text = handle.render();
        for m in METRICS {
            assert!(
                text.contains(&format!("# HELP {} {}\n", m.name, m.help)),
                "{}: no HELP line in\n{text}",
                m.name
            );
            let kind = match m.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                // Without buckets configured, the exporter renders summaries.
                MetricKind::Histogram => "summary",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}\n", m.name)),
                "{}: no TYPE {kind} line in\n{text}",
                m.name
            );
        }
    }
}
