//! One relay step: read the oldest unsent rows, publish them as one batch
//! (each row's trace context going along), mark them sent once the broker
//! confirmed; a row the broker refuses for good is set aside so the rows
//! behind it go on.

use ordermon_domain::ports::{BusError, BusMessage, OutboxRecord};

use super::{OutboxRelay, RelayError, SetAside};
use crate::trace_context::TRACEPARENT;

/// The bus message for an outbox row; the row's trace context, if any, goes
/// along as the `traceparent` header.
#[must_use]
pub fn bus_message(record: &OutboxRecord) -> BusMessage {
    let m = &record.message;
    let mut headers = std::collections::BTreeMap::new();
    if let Some(traceparent) = &m.traceparent {
        headers.insert(TRACEPARENT.to_owned(), traceparent.clone());
    }
    BusMessage {
        id: m.event_id,
        topic: m.topic.clone(),
        key: m.key.clone(),
        payload: m.payload.clone().into_bytes(),
        headers,
    }
}

/// When traces are recorded: a `publish` span for each message that carries a
/// trace context, child of the commit that wrote it, and the message's
/// `traceparent` set to it. The spans end when the returned vector is
/// dropped, once the broker confirmed.
fn publish_spans(messages: &mut [BusMessage], bus: &str) -> Vec<tracing::Span> {
    if !crate::trace_context::enabled() {
        return Vec::new();
    }
    messages
        .iter_mut()
        .filter_map(|message| {
            let parent = message.headers.get(TRACEPARENT)?;
            let span = tracing::info_span!(
                "publish",
                otel.kind = "producer",
                messaging.system = bus,
                messaging.destination.name = %message.topic,
                messaging.message.id = %message.id,
            );
            crate::trace_context::follow(&span, Some(parent));
            if let Some(traceparent) = crate::trace_context::of(&span) {
                message.headers.insert(TRACEPARENT.to_owned(), traceparent);
            }
            Some(span)
        })
        .collect()
}

impl OutboxRelay {
    /// Publishes one batch; returns how many rows were published (0 = the outbox
    /// is empty).
    ///
    /// # Errors
    /// The outbox or the bus failed; nothing was marked sent.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let step = self.step().await;
        if let Err(e) = &step {
            self.failed(e);
        }
        step
    }

    async fn step(&self) -> Result<usize, RelayError> {
        let records = self.outbox.pending(self.config.batch.max(1)).await?;
        let Some(oldest) = records.first() else {
            let mut s = self.handle.status.lock();
            s.pending = 0;
            s.oldest_pending_seconds = 0.0;
            metrics::gauge!("ordermon_outbox_pending").set(0.0);
            metrics::gauge!("ordermon_outbox_oldest_pending_seconds").set(0.0);
            return Ok(0);
        };
        let age = (self.clock.now() - oldest.message.created_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        let mut messages: Vec<BusMessage> = records.iter().map(bus_message).collect();
        let _publishes = publish_spans(&mut messages, self.bus.name());
        if !self.leading() {
            // The lease ran out while reading: the new holder publishes these.
            return Ok(0);
        }
        let n = match self.bus.publish(&messages).await {
            Ok(()) => {
                let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
                self.outbox.mark_sent(&ids).await?;
                records.len()
            }
            // Some row of the batch can never be published: find it, set it
            // aside, and go on with the others, one at a time.
            Err(BusError::Rejected(_)) => self.one_by_one(&records).await?,
            Err(e) => return Err(e.into()),
        };
        metrics::counter!("ordermon_outbox_published_total").increment(n as u64);
        metrics::histogram!("ordermon_outbox_batch_size").record(n as f64);
        metrics::gauge!("ordermon_outbox_oldest_pending_seconds").set(age);
        let mut s = self.handle.status.lock();
        s.published_total += n as u64;
        s.oldest_pending_seconds = age;
        s.last_error = None;
        s.last_published_at = Some(self.clock.now());
        Ok(n)
    }

    /// Publishes `records` one at a time, in order, setting aside each the
    /// broker refuses for good; stops at any other failure (what went out is
    /// marked sent, the rest comes again). Returns the rows handled.
    async fn one_by_one(&self, records: &[OutboxRecord]) -> Result<usize, RelayError> {
        let mut handled = 0;
        for record in records {
            let mut message = [bus_message(record)];
            let _publish = publish_spans(&mut message, self.bus.name());
            match self.bus.publish(&message).await {
                Ok(()) => {}
                Err(BusError::Rejected(error)) => self.set_aside(record, error),
                Err(e) => {
                    if handled > 0 {
                        return Ok(handled);
                    }
                    return Err(e.into());
                }
            }
            self.outbox.mark_sent(&[record.id]).await?;
            handled += 1;
        }
        Ok(handled)
    }

    fn set_aside(&self, record: &OutboxRecord, error: String) {
        let m = &record.message;
        metrics::counter!("ordermon_outbox_set_aside_total").increment(1);
        tracing::error!(
            outbox_id = record.id,
            event_id = %m.event_id,
            topic = %m.topic,
            bytes = m.payload.len(),
            error = %error,
            "the broker refused an outbox row for good; set aside (the event stays in the event log)"
        );
        let mut s = self.handle.status.lock();
        s.set_aside_total += 1;
        s.last_set_aside = Some(SetAside {
            outbox_id: record.id,
            event_id: m.event_id.to_string(),
            topic: m.topic.clone(),
            error,
            at: self.clock.now(),
        });
    }

    fn failed(&self, e: &RelayError) {
        metrics::counter!("ordermon_outbox_relay_failures_total").increment(1);
        let mut s = self.handle.status.lock();
        s.failures_total += 1;
        s.last_error = Some(e.to_string());
    }
}
