//! A consumer group's backlog: for each partition of the topic, the high
//! watermark minus the group's committed offset (or minus the low watermark
//! where the group has committed nothing, since its members start at the
//! earliest record), summed.
//!
//! The offsets are read with a consumer that carries the group's id but never
//! subscribes, so it does not join the group (no rebalance); one is kept per
//! group. librdkafka's calls block, so they run on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ordermon_domain::ports::BusError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaBus, unavailable};

/// How long one broker request of a backlog reading may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Offset readers, one per group.
#[derive(Default)]
pub(crate) struct LagReaders {
    readers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl LagReaders {
    fn reader(&self, bus: &KafkaBus, group: &str) -> Result<Arc<BaseConsumer>, BusError> {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = readers.get(group) {
            return Ok(r.clone());
        }
        let reader: BaseConsumer = bus
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("client.id", "ordermon-lag")
            .create()
            .map_err(|e| unavailable(&e))?;
        let reader = Arc::new(reader);
        readers.insert(group.to_owned(), reader.clone());
        Ok(reader)
    }
}

/// The group's backlog on the bus's topic.
pub(crate) async fn backlog(bus: &KafkaBus, group: &str) -> Result<u64, BusError> {
    let reader = bus.lag_readers.reader(bus, group)?;
    let topic = bus.config.topic.clone();
    tokio::task::spawn_blocking(move || read(&reader, &topic))
        .await
        .map_err(|e| BusError::Unexpected(e.to_string()))?
}

fn read(reader: &BaseConsumer, topic: &str) -> Result<u64, BusError> {
    let metadata = reader
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| unavailable(&e))?;
    let mut partitions = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            partitions.add_partition(topic, p.id());
        }
    }
    let committed = reader
        .committed_offsets(partitions, TIMEOUT)
        .map_err(|e| unavailable(&e))?;
    let mut total = 0_u64;
    for elem in committed.elements_for_topic(topic) {
        let (low, high) = reader
            .fetch_watermarks(topic, elem.partition(), TIMEOUT)
            .map_err(|e| unavailable(&e))?;
        total = total.saturating_add(remaining(elem.offset(), low, high));
    }
    Ok(total)
}

/// Records of one partition the group has not committed past.
fn remaining(committed: Offset, low: i64, high: i64) -> u64 {
    let from = match committed {
        // Records under the low watermark are gone (retention): not backlog.
        Offset::Offset(n) => n.max(low),
        // Nothing committed: the group starts at the earliest record.
        _ => low,
    };
    u64::try_from(high.saturating_sub(from)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_counts_from_the_commit_or_the_earliest_record() {
        assert_eq!(remaining(Offset::Offset(4), 0, 10), 6);
        assert_eq!(remaining(Offset::Offset(10), 0, 10), 0);
        assert_eq!(remaining(Offset::Invalid, 3, 10), 7);
        assert_eq!(remaining(Offset::Offset(1), 5, 10), 5, "trimmed");
        assert_eq!(remaining(Offset::Offset(12), 0, 10), 0, "ahead");
    }
}
