//! What the relay does between steps: refresh the (possibly costly) count of
//! pending rows for `/status` and the alert rules, and delete sent rows once
//! they are older than `retain_sent`.

use chrono::{DateTime, Utc};

use super::{OutboxRelay, RelayError};

impl OutboxRelay {
    pub(super) async fn refresh_count(&self) {
        match self.outbox.pending_count().await {
            Ok(n) => {
                metrics::gauge!("ordermon_outbox_pending").set(n as f64);
                self.handle.status.lock().pending = n;
            }
            Err(e) => tracing::debug!(error = %e, "outbox pending count failed"),
        }
    }

    /// Deletes sent rows older than `retain_sent`; returns how many went.
    ///
    /// # Errors
    /// The outbox failed (nothing is lost: the rows stay until next time).
    pub async fn purge_once(&self) -> Result<u64, RelayError> {
        let Some(keep) = self.config.retain_sent else {
            return Ok(0);
        };
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .clock
            .now()
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let n = self.outbox.purge_sent(cutoff).await?;
        if n > 0 {
            metrics::counter!("ordermon_outbox_purged_total").increment(n);
            tracing::info!(rows = n, %cutoff, "sent outbox rows deleted");
        }
        Ok(n)
    }
}
