//! Keeping the user leases: all of them renewed in one statement on a timer
//! of their own, apart from the rounds; users whose lease was lost are
//! disowned at once and their owners stopped on a task of their own.

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::ids::UserId;
use tokio_util::sync::CancellationToken;

use super::{OwnedUsers, USER_PREFIX, UserOwnership, lease_name};
use crate::lease_keeper::LeaseHandle;

impl UserOwnership {
    /// Renews the user leases every quarter of their TTL, apart from the
    /// rounds (a slow round, taking hundreds of users, must not let the
    /// leases it already holds lapse).
    pub(super) async fn keep(
        self: Arc<Self>,
        engine: Arc<dyn OwnedUsers>,
        member: LeaseHandle,
        cancel: CancellationToken,
    ) {
        let every = (self.config.user_ttl / 4).max(Duration::from_millis(50));
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = cancel.cancelled() => return,
            }
            if let Err(e) = self.renew(&engine, &member).await {
                tracing::warn!(error = %e, "user lease renewal failed; trying again");
            }
        }
    }

    /// Renews every user lease held here, disowns those lost, and only then
    /// extends how long this instance counts as owning. The owners of lost
    /// users are stopped by a task of their own: stopping hundreds of owners
    /// must not hold up the next renewal, or the leases still held would
    /// lapse meanwhile and be lost in turn.
    async fn renew(
        self: &Arc<Self>,
        engine: &Arc<dyn OwnedUsers>,
        member: &LeaseHandle,
    ) -> Result<(), String> {
        if member.held().is_none() {
            // Not a member (the store is unreachable, or this process was
            // paused): whatever it owned may be someone else's by now.
            self.drop_all(engine, "membership lease lost");
            return Err("membership lease not held".to_owned());
        }
        let e = |e: ordermon_domain::ports::StoreError| e.to_string();
        let started = tokio::time::Instant::now();
        self.leases
            .renew_all(USER_PREFIX, &self.holder, self.config.user_ttl)
            .await
            .map_err(e)?;
        let held = self.user_leases().await?;
        // Lost: the store no longer shows this instance holding the lease
        // (users taken after this renewal began are judged by the next one).
        let owned: Vec<(UserId, u64)> = self
            .owned
            .iter()
            .filter(|e| e.value().1 < started)
            .map(|e| (e.key().clone(), e.value().0))
            .collect();
        let mut lost = Vec::new();
        for (user, epoch) in owned {
            let ours = held
                .get(&lease_name(&user))
                .is_some_and(|(h, ep, live)| *live && *h == self.holder && *ep == epoch);
            // (A user the round handed over meanwhile is gone already.)
            if !ours && self.disown(&user) {
                lost.push(user);
            }
        }
        // Only now, with what was lost disowned, does the renewal count: a
        // process that woke from a pause must not claim, even for a moment,
        // users another instance took meanwhile.
        *self.valid_until.lock() = Some(started + self.config.user_ttl.mul_f64(0.9));
        self.stop_owners(engine, lost, "ownership lost");
        Ok(())
    }

    /// Forgets that this instance owns `user` (commands for it are refused
    /// from now on) until its owner has been stopped; false if it did not own
    /// it.
    fn disown(&self, user: &UserId) -> bool {
        if self.owned.remove(user).is_none() {
            return false;
        }
        self.stopping.insert(user.clone());
        true
    }

    /// Stops, on a task of their own, the owners of disowned `users`; each
    /// can be taken again once its owner has stopped.
    fn stop_owners(
        self: &Arc<Self>,
        engine: &Arc<dyn OwnedUsers>,
        users: Vec<UserId>,
        reason: &'static str,
    ) {
        if users.is_empty() {
            return;
        }
        tracing::warn!(
            users = users.len(),
            reason,
            "user leases lost; stopping their owners"
        );
        self.status.lock().lost_total += users.len() as u64;
        let (me, engine) = (self.clone(), engine.clone());
        tokio::spawn(async move {
            for user in users {
                me.stop_owner(&*engine, &user, reason).await;
                me.stopping.remove(&user);
            }
        });
    }

    /// Stops the owner of a user already disowned.
    async fn stop_owner(&self, engine: &dyn OwnedUsers, user: &UserId, reason: &str) {
        engine.stop_monitor(user, reason).await;
        engine.evict_owner(user);
    }

    /// Disowns every user and stops their owners (the membership is lost).
    fn drop_all(self: &Arc<Self>, engine: &Arc<dyn OwnedUsers>, reason: &'static str) {
        let users: Vec<UserId> = self.owned.iter().map(|e| e.key().clone()).collect();
        let users = users.into_iter().filter(|u| self.disown(u)).collect();
        self.stop_owners(engine, users, reason);
    }
}
