//! Listing and replaying a group's dead letters.
//!
//! Listing reads the dead-letter queue with `basic.get` without acking and then
//! hands everything back (`basic.nack` with requeue), which puts the messages back
//! in their original positions. Replaying takes every message, republishes the
//! chosen ones (confirmed) to the group's queue with a fresh attempt count, acks
//! those, and hands the rest back.

use lapin::Channel;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusError, DeadLetter};

use super::RabbitBus;
use crate::codec;
use crate::supervisor::unavailable;
use crate::topology::no_args;

/// Most messages one replay looks at.
const REPLAY_SCAN_LIMIT: usize = 1_000_000;

/// A channel on which the group's dead-letter queue exists, or `None`.
async fn open(bus: &RabbitBus, dlq: &str) -> Result<Option<Channel>, BusError> {
    let live = bus.supervisor.live().await?;
    let channel = live
        .connection
        .create_channel()
        .await
        .map_err(unavailable)?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    // A passive declare fails (and closes the channel) when the queue is missing.
    if channel
        .queue_declare(dlq.into(), passive, no_args())
        .await
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some(channel))
}

/// Hands back every unacknowledged message of a listing (nothing was acked).
async fn give_back(channel: &Channel, last_tag: Option<u64>) {
    if let Some(tag) = last_tag {
        let _ = channel
            .basic_nack(
                tag,
                BasicNackOptions {
                    multiple: true,
                    requeue: true,
                },
            )
            .await;
    }
    // Closing the channel also requeues anything still unacknowledged.
    let _ = channel.close(200, "done".into()).await;
}

pub(crate) async fn list(
    bus: &RabbitBus,
    group: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, BusError> {
    let dlq = bus.config().dead_letter_queue(group);
    let Some(channel) = open(bus, &dlq).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut last_tag = None;
    let result = async {
        while out.len() < limit {
            let Some(got) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            let d = got.delivery;
            last_tag = Some(d.delivery_tag);
            match codec::decode(d.routing_key.as_str(), &d.properties, d.data) {
                Some(decoded) => out.push(decoded.into_dead_letter(group)),
                None => tracing::warn!(group, "undecodable dead letter skipped"),
            }
        }
        Ok::<_, BusError>(())
    }
    .await;
    give_back(&channel, last_tag).await;
    result.map(|()| out)
}

pub(crate) async fn replay(
    bus: &RabbitBus,
    group: &str,
    ids: Option<&[EventId]>,
) -> Result<usize, BusError> {
    let dlq = bus.config().dead_letter_queue(group);
    let queue = bus.config().queue(group);
    let Some(channel) = open(bus, &dlq).await? else {
        return Ok(0);
    };
    let result = async {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        let mut replayed = Vec::new();
        // Only what is dead now: a replayed message that fails again lands
        // behind the messages counted here and must not be replayed twice.
        let mut left: Option<u32> = None;
        for _ in 0..REPLAY_SCAN_LIMIT {
            if left == Some(0) {
                break;
            }
            let Some(got) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            left = Some(left.map_or(got.message_count, |n| n - 1));
            let d = got.delivery;
            let Some(decoded) = codec::decode(d.routing_key.as_str(), &d.properties, d.data) else {
                continue;
            };
            if ids.is_some_and(|ids| !ids.contains(&decoded.message.id)) {
                continue;
            }
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &decoded.message.payload,
                    codec::properties(&decoded.message, 1),
                )
                .await
                .map_err(unavailable)?;
            replayed.push((d.delivery_tag, confirm));
        }
        let mut count = 0;
        for (tag, confirm) in replayed {
            match confirm.await.map_err(unavailable)? {
                Confirmation::Nack(_) => {
                    return Err(BusError::NotConfirmed("replay publish nacked".to_owned()));
                }
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
            }
            // Only once the copy is confirmed does the dead letter go away.
            channel
                .basic_ack(tag, BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
            count += 1;
        }
        Ok(count)
    }
    .await;
    // Closing the channel requeues what was not replayed.
    let _ = channel.close(200, "done".into()).await;
    if let Ok(n) = result {
        metrics::counter!("ordermon_bus_replayed_total", "bus" => "rabbitmq").increment(n as u64);
    }
    result
}
