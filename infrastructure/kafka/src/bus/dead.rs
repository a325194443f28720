//! Listing and replaying dead letters from the dead-letter topic.
//!
//! The topic is read from the beginning to its high watermarks, and on until it
//! stays quiet for a moment, by a throwaway consumer that commits nothing. A replay publishes the dead letter again on the
//! main topic, reserved for its group, then appends a tombstone (same key, so the
//! same partition, after the dead letter) that hides it from later listings.
//! The tombstone names the record it hides (partition and offset): a copy that
//! fails again before the tombstone is written is dead-lettered anew and stays
//! listed.

use std::collections::HashMap;
use std::time::Duration;

use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusError, DeadLetter};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaBus, Outgoing, unavailable};
use crate::codec::{self, Record};

/// How long reading the dead-letter topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the log must stay quiet past the high watermarks to count as read.
const TAIL_QUIET: Duration = Duration::from_millis(100);

/// Every record of the dead-letter topic, in order within each partition.
fn read_topic(bus: &KafkaBus) -> Result<Vec<Record>, BusError> {
    let topic = bus.config.dead_letter_topic();
    let consumer: BaseConsumer = bus
        .client_config()
        .set(
            "group.id",
            format!("ordermon-dlq-reader-{}", EventId::generate()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| unavailable(&e))?;
    let metadata = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .map_err(|e| unavailable(&e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(rdkafka::metadata::MetadataPartition::id)
        })
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p, Duration::from_secs(10))
            .map_err(|e| unavailable(&e))?;
        tpl.add_partition_offset(&topic, p, Offset::Offset(low))
            .map_err(|e| unavailable(&e))?;
        if high > low {
            remaining.insert(p, high);
        }
    }
    let mut records = Vec::new();
    if tpl.count() == 0 {
        return Ok(records);
    }
    consumer.assign(&tpl).map_err(|e| unavailable(&e))?;
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while !remaining.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(BusError::Unavailable(
                "kafka: timed out reading the dead-letter topic".to_owned(),
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let r = Record::from_message(&m);
                if remaining
                    .get(&r.partition)
                    .is_some_and(|high| r.offset + 1 >= *high)
                {
                    remaining.remove(&r.partition);
                }
                records.push(r);
            }
            Some(Err(e)) => tracing::debug!(error = %e, "kafka dead-letter read"),
            None => {}
        }
    }
    // A broker may report a high watermark behind a record it has already
    // acknowledged (the test broker does, under concurrent producers): read on
    // until the log has nothing more to give for a moment.
    while std::time::Instant::now() <= deadline {
        match consumer.poll(TAIL_QUIET) {
            Some(Ok(m)) => records.push(Record::from_message(&m)),
            Some(Err(e)) => tracing::debug!(error = %e, "kafka dead-letter read"),
            None => break,
        }
    }
    Ok(records)
}

/// The group's dead letters not yet replayed, oldest first.
pub(crate) async fn read(bus: &KafkaBus, group: &str) -> Result<Vec<DeadLetter>, BusError> {
    Ok(read_live(bus, group)
        .await?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

/// Where a dead-letter record is: what a tombstone names, so it hides that
/// record and not a later one of the same event.
fn position(partition: i32, offset: i64) -> String {
    format!("{partition}:{offset}")
}

/// Whether a tombstone naming `named` hides the record at (`partition`, `offset`).
fn hides(named: &str, partition: i32, offset: i64) -> bool {
    match named.split_once(':') {
        Some((p, o)) => {
            p.parse::<i32>().is_ok_and(|p| p == partition)
                && o.parse::<i64>().is_ok_and(|o| offset <= o)
        }
        // A tombstone that names no record hides every earlier one.
        None => true,
    }
}

/// [`read`], each dead letter with the position of its record.
async fn read_live(bus: &KafkaBus, group: &str) -> Result<Vec<(String, DeadLetter)>, BusError> {
    let reader = bus.clone();
    let records = tokio::task::spawn_blocking(move || read_topic(&reader))
        .await
        .map_err(|e| BusError::Unexpected(e.to_string()))??;
    // One id's records share a key, hence a partition, so they come in order.
    let mut live: HashMap<EventId, (i32, i64, DeadLetter)> = HashMap::new();
    for r in records.iter().filter(|r| r.only_group() == Some(group)) {
        let Some(message) = r.message() else { continue };
        if let Some(named) = r.replayed() {
            // A message that failed again while it was being replayed is
            // dead-lettered anew, behind the record the tombstone names.
            if live
                .get(&message.id)
                .is_some_and(|(p, o, _)| hides(named, *p, *o))
            {
                live.remove(&message.id);
            }
        } else if let Some(dead) = r.dead_letter() {
            live.insert(message.id, (r.partition, r.offset, dead));
        }
    }
    let mut out: Vec<(String, DeadLetter)> = live
        .into_values()
        .map(|(p, o, d)| (position(p, o), d))
        .collect();
    out.sort_by(|(_, a), (_, b)| {
        a.dead_at
            .cmp(&b.dead_at)
            .then(a.message.id.cmp(&b.message.id))
    });
    Ok(out)
}

pub(crate) async fn replay(
    bus: &KafkaBus,
    group: &str,
    ids: Option<&[EventId]>,
) -> Result<usize, BusError> {
    let chosen: Vec<(String, DeadLetter)> = read_live(bus, group)
        .await?
        .into_iter()
        .filter(|(_, d)| ids.is_none_or(|ids| ids.contains(&d.message.id)))
        .collect();
    if chosen.is_empty() {
        return Ok(0);
    }
    let topic = bus.config.topic.clone();
    let dlq = bus.config.dead_letter_topic();
    let only = [(codec::GROUP, group.to_owned())];
    bus.send(
        chosen
            .iter()
            .map(|(_, d)| Outgoing {
                topic: &topic,
                key: &d.message.key,
                payload: &d.message.payload,
                headers: codec::headers(&d.message, &only),
            })
            .collect(),
    )
    .await?;
    // Only once the copies are acknowledged do the dead letters go away; each
    // tombstone names the record it hides, since a copy may already have
    // failed again and been dead-lettered behind it.
    let tombstones: Vec<OwnedHeaders> = chosen
        .iter()
        .map(|(at, d)| {
            tombstone_headers(
                d,
                &[
                    (codec::GROUP, group.to_owned()),
                    (codec::REPLAYED, at.clone()),
                ],
            )
        })
        .collect();
    bus.send(
        chosen
            .iter()
            .zip(tombstones)
            .map(|((_, d), headers)| Outgoing {
                topic: &dlq,
                key: &d.message.key,
                payload: &[],
                headers,
            })
            .collect(),
    )
    .await?;
    metrics::counter!("ordermon_bus_replayed_total", "bus" => "kafka")
        .increment(chosen.len() as u64);
    Ok(chosen.len())
}

fn tombstone_headers(dead: &DeadLetter, extra: &[(&str, String)]) -> OwnedHeaders {
    codec::headers(&dead.message, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_hides_its_record_and_earlier_ones_only() {
        let named = position(2, 40);
        assert!(hides(&named, 2, 40));
        assert!(hides(&named, 2, 12));
        // Dead-lettered again during the replay: behind the named record.
        assert!(!hides(&named, 2, 41));
        assert!(!hides(&named, 3, 40));
        // Tombstones written before they named a record hide what precedes them.
        assert!(hides("1", 2, 41));
    }
}
