//! Settings of the RabbitMQ bus.

use std::time::Duration;

use ordermon_domain::credential::redact_url;

/// Settings of the RabbitMQ bus. `Debug` masks the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct RabbitConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// The topic exchange events are published to; queue names derive from it.
    pub exchange: String,
    /// Delay before the n-th redelivery (the last one repeats); one delay queue each.
    pub retry_delays: Vec<Duration>,
    /// First reconnect delay (doubles, with jitter, up to `reconnect_max`).
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// How long a publish may wait for its confirms before it fails.
    pub confirm_timeout: Duration,
    /// The name the connection shows in the broker's management tools.
    pub connection_name: String,
}

impl std::fmt::Debug for RabbitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitConfig")
            .field("url", &redact_url(&self.url))
            .field("exchange", &self.exchange)
            .field("retry_delays", &self.retry_delays)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

impl RabbitConfig {
    /// Defaults for `url`: exchange `ordermon.events`, retries after 1 s, 5 s, 30 s.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: "ordermon.events".to_owned(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            connection_name: "ordermon".to_owned(),
        }
    }

    /// The dead-letter exchange.
    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// A group's queue.
    #[must_use]
    pub fn queue(&self, group: &str) -> String {
        format!("{}.{group}", self.exchange)
    }

    /// A group's dead-letter queue.
    #[must_use]
    pub fn dead_letter_queue(&self, group: &str) -> String {
        format!("{}.{group}.dlq", self.exchange)
    }

    /// A group's delay queue for one retry delay. The delay is in the name, so
    /// changing the delays declares new queues instead of conflicting with the
    /// arguments of the old ones.
    #[must_use]
    pub fn retry_queue(&self, group: &str, delay: Duration) -> String {
        format!("{}.{group}.retry.{}ms", self.exchange, delay.as_millis())
    }

    /// The delay before redelivery number `attempt` (1-based: after the first
    /// failure, `attempt` = 1).
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
    fn debug_masks_the_password() {
        let c = RabbitConfig::new("amqp://guest:hunter2@127.0.0.1:5672/%2f");
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("amqp://guest:[REDACTED]@127.0.0.1:5672/%2f"),
            "{printed}"
        );
    }

    #[test]
    fn names_derive_from_the_exchange() {
        let c = RabbitConfig::new("amqp://localhost");
        assert_eq!(c.queue("ws"), "ordermon.events.ws");
        assert_eq!(c.dead_letter_queue("ws"), "ordermon.events.ws.dlq");
        assert_eq!(c.dead_letter_exchange(), "ordermon.events.dlx");
        assert_eq!(
            c.retry_queue("ws", Duration::from_secs(5)),
            "ordermon.events.ws.retry.5000ms"
        );
        assert_eq!(c.retry_delay(1), Duration::from_secs(1));
        assert_eq!(c.retry_delay(3), Duration::from_secs(30));
        assert_eq!(c.retry_delay(9), Duration::from_secs(30));
    }
}
