//! The background tasks of a Redis-backed tiered cache: the invalidation
//! subscriber and the prober.
//!
//! The subscriber holds one pub/sub connection subscribed to the invalidation
//! channel and to this instance's private heartbeat channel. Each message
//! evicts the key from the in-process tier. The prober publishes a heartbeat
//! every `probe_interval`, so a connection that silently stopped delivering
//! (a half-open socket) is noticed within `feed_timeout` even when nobody
//! writes. A lost connection is retried with exponential backoff and jitter;
//! each (re)subscription clears the in-process tier before trusting it again.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::remote::RedisCache;
use super::tiered::TieredCache;
use ordermon_application::backoff::Backoff;

/// What the subscriber needs.
#[derive(Debug, Clone)]
pub(crate) struct FeedSpec {
    pub(crate) client: redis::Client,
    pub(crate) channel: String,
    pub(crate) heartbeat: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) feed_timeout: Duration,
    pub(crate) max_backoff: Duration,
}

/// Runs the subscriber until `cancel`.
pub(crate) async fn subscriber(spec: FeedSpec, tiered: TieredCache, cancel: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(50), spec.max_backoff);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let subscribed = tokio::time::timeout(spec.connect_timeout, async {
            let mut ps = spec.client.get_async_pubsub().await?;
            ps.subscribe(&spec.channel).await?;
            ps.subscribe(&spec.heartbeat).await?;
            Ok::<_, redis::RedisError>(ps)
        })
        .await;
        let reason = match subscribed {
            Ok(Ok(ps)) => {
                backoff.reset();
                tiered.feed_up().await;
                let mut messages = ps.into_on_message();
                loop {
                    let next = tokio::select! {
                        m = tokio::time::timeout(spec.feed_timeout, messages.next()) => m,
                        () = cancel.cancelled() => return,
                    };
                    match next {
                        Ok(Some(msg)) => {
                            if msg.get_channel_name() == spec.heartbeat {
                                continue;
                            }
                            match msg.get_payload::<String>() {
                                Ok(key) => tiered.on_invalidation(&key).await,
                                Err(e) => {
                                    tracing::debug!(error = %e, "undecodable invalidation ignored");
                                }
                            }
                        }
                        Ok(None) => break "connection closed".to_owned(),
                        Err(_) => {
                            break "no message or heartbeat within the feed timeout".to_owned();
                        }
                    }
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "subscribe timed out".to_owned(),
        };
        tiered.feed_down(&reason).await;
        tokio::select! {
            () = tokio::time::sleep(backoff.delay()) => {}
            () = cancel.cancelled() => return,
        }
    }
}

/// Runs the prober until `cancel`: health, recovery, heartbeats, fence upkeep.
pub(crate) async fn prober(
    redis: RedisCache,
    heartbeat: String,
    tiered: TieredCache,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = cancel.cancelled() => return,
        }
        tiered.probe().await;
        // A failure here shows as a feed timeout in the subscriber.
        let _ = redis.publish(&heartbeat, "1").await;
    }
}
