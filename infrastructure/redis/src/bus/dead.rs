//! Listing and replaying a group's dead-letter stream.

use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusError, DeadLetter};
use redis::streams::StreamRangeReply;

use super::{RedisBus, codec, unavailable};

/// Entries read per page.
const PAGE: usize = 500;

/// One page of the dead-letter stream after `start` (exclusive once paging),
/// up to `end` (inclusive; `+` for the newest).
async fn page(
    bus: &RedisBus,
    group: &str,
    start: &str,
    end: &str,
) -> Result<StreamRangeReply, BusError> {
    let mut c = bus.commands();
    redis::cmd("XRANGE")
        .arg(bus.config().dead_stream(group))
        .arg(start)
        .arg(end)
        .arg("COUNT")
        .arg(PAGE)
        .query_async(&mut c)
        .await
        .map_err(|e| unavailable(&e))
}

pub(crate) async fn list(
    bus: &RedisBus,
    group: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, BusError> {
    let mut out = Vec::new();
    let mut start = "-".to_owned();
    while out.len() < limit {
        let reply = page(bus, group, &start, "+").await?;
        let Some(last) = reply.ids.last() else { break };
        start = format!("({}", last.id);
        out.extend(
            reply
                .ids
                .iter()
                .filter_map(|e| codec::decode_dead(e, group)),
        );
    }
    out.truncate(limit);
    Ok(out)
}

pub(crate) async fn replay(
    bus: &RedisBus,
    group: &str,
    ids: Option<&[EventId]>,
) -> Result<usize, BusError> {
    let dead_stream = bus.config().dead_stream(group);
    // Only what is dead now: a replayed message that fails again is appended
    // behind this point and must not be replayed a second time by this call.
    let newest: StreamRangeReply = {
        let mut c = bus.commands();
        redis::cmd("XREVRANGE")
            .arg(&dead_stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await
            .map_err(|e| unavailable(&e))?
    };
    let Some(end) = newest.ids.first().map(|e| e.id.clone()) else {
        return Ok(0);
    };
    let mut start = "-".to_owned();
    let mut replayed = 0;
    loop {
        let reply = page(bus, group, &start, &end).await?;
        let Some(last) = reply.ids.last() else { break };
        start = format!("({}", last.id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut n = 0;
        for entry in &reply.ids {
            let Some(dead) = codec::decode_dead(entry, group) else {
                continue;
            };
            if ids.is_some_and(|ids| !ids.contains(&dead.message.id)) {
                continue;
            }
            // Back on the main stream for this group only, and out of the DLQ,
            // in one transaction.
            bus.xadd(&mut pipe, &dead.message, Some(group));
            pipe.cmd("XDEL").arg(&dead_stream).arg(&entry.id).ignore();
            n += 1;
        }
        if n > 0 {
            let mut c = bus.commands();
            pipe.query_async::<()>(&mut c)
                .await
                .map_err(|e| unavailable(&e))?;
            replayed += n;
        }
    }
    metrics::counter!("ordermon_bus_replayed_total", "bus" => "redis").increment(replayed as u64);
    Ok(replayed)
}
