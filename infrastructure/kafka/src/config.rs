//! Settings of the Kafka bus.

use std::time::Duration;

/// Settings of the Kafka bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic every event is published to; the dead-letter topic is `<topic>.dlq`.
    pub topic: String,
    /// Partitions of the topics when this bus creates them.
    pub partitions: i32,
    /// Replication factor of the topics when this bus creates them.
    pub replication: i32,
    /// Delay before the n-th redelivery (the last one repeats).
    pub retry_delays: Vec<Duration>,
    /// How often handled offsets are committed (also on every 1,000 handled).
    pub commit_interval: Duration,
    /// How long a publish may wait for the broker's acknowledgements.
    pub delivery_timeout: Duration,
}

impl KafkaConfig {
    /// Defaults for `brokers`: topic `ordermon.events` with 3 partitions,
    /// retries after 1 s, 5 s, 30 s.
    #[must_use]
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: "ordermon.events".to_owned(),
            partitions: 3,
            replication: 1,
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            commit_interval: Duration::from_millis(200),
            delivery_timeout: Duration::from_secs(30),
        }
    }

    /// From a `kafka://host:port[,host:port]` URL (the `bus.url` form).
    #[must_use]
    pub fn from_url(url: &str) -> Self {
        Self::new(
            url.strip_prefix("kafka://")
                .unwrap_or(url)
                .trim_end_matches('/'),
        )
    }

    /// The dead-letter topic.
    #[must_use]
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// The delay before redelivery after failed attempt number `attempt`.
    #[must_use]
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_delays
            .get(i)
            .or_else(|| self.retry_delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names() {
        let c = KafkaConfig::from_url("kafka://127.0.0.1:9092");
        assert_eq!(c.brokers, "127.0.0.1:9092");
        assert_eq!(c.dead_letter_topic(), "ordermon.events.dlq");
        assert_eq!(c.retry_delay(2), Duration::from_secs(5));
        assert_eq!(c.retry_delay(7), Duration::from_secs(30));
    }
}
