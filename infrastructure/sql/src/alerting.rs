//! The read side of the alerting model over SQL: alerts, silences, the
//! notification queue and log, and per-user rule overrides. Every entity comes
//! back whole from its `data` JSON; the real columns only select and order.
//!
//! The notification queries lean on two indexes: `(status, next_attempt_at)`
//! finds what is due, and `(receiver, group_id, id)` answers "is there a newer
//! record in this group" for the latest-per-group read and the purge.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::alert::{Alert, Fingerprint, NotificationRecord, RuleOverride, Silence};
use ordermon_domain::ids::{AlertId, NotificationId, RuleName, SilenceId, UserId};
use ordermon_domain::ports::{
    AlertQuery, AlertRepository, AlertRuleRepository, NotificationLog, SilenceQuery,
    SilenceRepository, StoreError,
};

use crate::conn::Val;
use crate::repos::{Filter, limit};
use crate::store::SqlStore;
use crate::url::Dialect;

/// "A newer record of the same group exists", for a row of `notifications`
/// named `outer`.
pub(crate) fn newer_in_group(outer: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM notifications m WHERE m.receiver = {outer}.receiver \
         AND m.group_id = {outer}.group_id AND m.id > {outer}.id)"
    )
}

#[async_trait]
impl AlertRepository for SqlStore {
    async fn get_alert(&self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        let sql = "SELECT data FROM alerts WHERE id = ?";
        Ok(self
            .entities(sql, vec![Val::Uuid(id.as_uuid())], "alert")
            .await?
            .pop())
    }

    async fn active_by_fingerprint(&self, fp: Fingerprint) -> Result<Option<Alert>, StoreError> {
        // Alert ids are UUIDv7, so the highest id is the latest occurrence.
        let sql = "SELECT data FROM alerts WHERE fingerprint = ? AND state <> 'resolved' \
                   ORDER BY id DESC LIMIT 1";
        Ok(self
            .entities(sql, vec![Val::text(fp)], "alert")
            .await?
            .pop())
    }

    async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let mut f = Filter::default();
        if let Some(u) = &q.user_id {
            f.and("user_id = ?", [Val::text(u)]);
        }
        f.any_of("state", q.states.iter().map(|s| s.as_str()));
        f.any_of("severity", q.severities.iter().map(|s| s.as_str()));
        if let Some(rule) = &q.rule {
            f.and("rule = ?", [Val::text(rule)]);
        }
        if let Some(before) = q.before {
            f.and("id < ?", [Val::Uuid(before.as_uuid())]);
        }
        let sql = format!(
            "SELECT data FROM alerts{} ORDER BY id DESC LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(q.limit));
        self.entities(&sql, args, "alert").await
    }
}

#[async_trait]
impl SilenceRepository for SqlStore {
    async fn get_silence(&self, id: SilenceId) -> Result<Option<Silence>, StoreError> {
        let sql = "SELECT data FROM silences WHERE id = ?";
        Ok(self
            .entities(sql, vec![Val::Uuid(id.as_uuid())], "silence")
            .await?
            .pop())
    }

    async fn list_silences(&self, q: &SilenceQuery) -> Result<Vec<Silence>, StoreError> {
        let mut f = Filter::default();
        if let Some(u) = &q.user_id {
            f.and("user_id = ?", [Val::text(u)]);
        }
        if let Some(t) = q.ending_after {
            f.and("ends_at > ?", [Val::Ts(t)]);
        }
        if let Some(before) = q.before {
            f.and("id < ?", [Val::Uuid(before.as_uuid())]);
        }
        let sql = format!(
            "SELECT data FROM silences{} ORDER BY id DESC LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(q.limit));
        self.entities(&sql, args, "silence").await
    }
}

#[async_trait]
impl NotificationLog for SqlStore {
    async fn get_notification(
        &self,
        id: NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let sql = "SELECT data FROM notifications WHERE id = ?";
        Ok(self
            .entities(sql, vec![Val::Uuid(id.as_uuid())], "notification")
            .await?
            .pop())
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        n: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        // Oldest first: ids are UUIDv7, so id order is creation order. A
        // record waits behind an older pending one of its group (a resolve
        // never overtakes the firing notification still being retried).
        let sql = "SELECT n.data FROM notifications n \
                   WHERE n.status = 'pending' AND n.next_attempt_at <= ? \
                   AND (n.claimed_until IS NULL OR n.claimed_until <= ?) \
                   AND NOT EXISTS (SELECT 1 FROM notifications o WHERE o.receiver = n.receiver \
                   AND o.group_id = n.group_id AND o.status = 'pending' AND o.id < n.id) \
                   ORDER BY n.id LIMIT ?";
        let args = vec![Val::Ts(now), Val::Ts(now), limit(n)];
        self.entities(sql, args, "notification").await
    }

    async fn latest_per_group(&self) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT n.data FROM notifications n WHERE NOT {} \
             ORDER BY n.receiver, n.group_id",
            newer_in_group("n")
        );
        self.entities(&sql, Vec::new(), "notification").await
    }

    async fn list_notifications(
        &self,
        receiver: Option<&str>,
        n: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut f = Filter::default();
        if let Some(r) = receiver {
            f.and("receiver = ?", [Val::text(r)]);
        }
        let sql = format!(
            "SELECT data FROM notifications{} ORDER BY id DESC LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(n));
        self.entities(&sql, args, "notification").await
    }

    async fn purge_notifications(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // One statement, so "a newer record of the group exists" is checked
        // against the rows as they are when each one goes: the newest of a
        // group is never deleted, whatever runs at the same time.
        let sql = match self.dialect() {
            // MySQL refuses a subquery on the table a DELETE deletes from
            // (error 1093), but deletes through a self-join. A row joined to
            // several newer ones is still deleted (and counted) once.
            Dialect::MySql => "DELETE n FROM notifications n \
                               JOIN notifications m ON m.receiver = n.receiver \
                               AND m.group_id = n.group_id AND m.id > n.id \
                               WHERE n.status IN ('delivered', 'failed') AND n.created_at < ?"
                .to_owned(),
            Dialect::Postgres | Dialect::Sqlite => format!(
                "DELETE FROM notifications WHERE status IN ('delivered', 'failed') \
                 AND created_at < ? AND {}",
                newer_in_group("notifications")
            ),
        };
        self.exec_each(&[(sql, vec![Val::Ts(before)])]).await
    }
}

#[async_trait]
impl AlertRuleRepository for SqlStore {
    async fn list_rule_overrides(
        &self,
        user: Option<&UserId>,
    ) -> Result<Vec<RuleOverride>, StoreError> {
        let mut f = Filter::default();
        if let Some(u) = user {
            f.and("user_id = ?", [Val::text(u)]);
        }
        let sql = format!(
            "SELECT data FROM alert_rule_overrides{} ORDER BY rule, user_id",
            f.sql()
        );
        self.entities(&sql, f.args, "rule override").await
    }

    async fn get_rule_override(
        &self,
        rule: &RuleName,
        user: &UserId,
    ) -> Result<Option<RuleOverride>, StoreError> {
        let sql = "SELECT data FROM alert_rule_overrides WHERE rule = ? AND user_id = ?";
        let args = vec![Val::text(rule), Val::text(user)];
        Ok(self.entities(sql, args, "rule override").await?.pop())
    }
}
