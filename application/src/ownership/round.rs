//! The ownership rounds: read the live members and their addresses, assign
//! every user, release the users now assigned elsewhere (and stray leases
//! held here without an owner), and take the users assigned here, a few at
//! a time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use ordermon_domain::ids::UserId;
use ordermon_domain::user::UserStatus;
use tokio_util::sync::CancellationToken;

use super::{ADDRESS_PREFIX, MEMBER_PREFIX, OwnedUsers, UserOwnership, assigned, lease_name};
use crate::lease_keeper::LeaseHandle;

/// User leases asked for at once in a round.
const TAKE_CONCURRENCY: usize = 16;

impl UserOwnership {
    /// Runs a round every `round_interval` until `cancel` fires, then stops
    /// the owners here and lets their users go.
    pub(super) async fn run(
        self: Arc<Self>,
        engine: Arc<dyn OwnedUsers>,
        member: LeaseHandle,
        cancel: CancellationToken,
    ) {
        let mut interval =
            tokio::time::interval(self.config.round_interval.max(Duration::from_millis(50)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = cancel.cancelled() => break,
            }
            let round = self.round(&*engine, &member).await;
            let mut s = self.status.lock();
            s.rounds += 1;
            s.member = member.held().is_some();
            s.last_error = round.err();
        }
        // Shutting down: stop the owners, then let the users go at once.
        let users: Vec<UserId> = self.owned.iter().map(|e| e.key().clone()).collect();
        for user in users {
            self.release(&*engine, &user).await;
        }
    }

    /// One round: recompute the assignment, release and take users.
    async fn round(&self, engine: &dyn OwnedUsers, member: &LeaseHandle) -> Result<(), String> {
        if member.held().is_none() {
            return Err("membership lease not held".to_owned());
        }
        let e = |e: ordermon_domain::ports::StoreError| e.to_string();
        let members: Vec<String> = self
            .leases
            .leases(MEMBER_PREFIX)
            .await
            .map_err(e)?
            .into_iter()
            .filter(|l| l.live && l.name[MEMBER_PREFIX.len()..] == l.holder)
            .map(|l| l.holder)
            .collect();
        let addresses: std::collections::BTreeMap<String, String> = self
            .leases
            .leases(ADDRESS_PREFIX)
            .await
            .map_err(e)?
            .into_iter()
            .filter_map(|l| {
                let of = l.name.strip_prefix(ADDRESS_PREFIX)?;
                (l.live && members.iter().any(|m| m == of))
                    .then(|| (of.to_owned(), l.holder.clone()))
            })
            .collect();
        self.addresses.retain(|h, _| addresses.contains_key(h));
        for (h, a) in &addresses {
            self.addresses.insert(h.clone(), a.clone());
        }
        {
            let mut status = self.status.lock();
            status.members.clone_from(&members);
            status.addresses = addresses;
        }
        let held = self.user_leases().await?;
        let users = engine.user_statuses().await.map_err(e)?;
        self.elsewhere.clear();
        let mut released = 0;
        let mut to_take = Vec::new();
        for (user, status) in users {
            let name = lease_name(&user);
            if let Some((h, _, true)) = held.get(&name)
                && *h != self.holder
            {
                self.elsewhere.insert(user.clone(), h.clone());
            }
            let mine = assigned(&user, &members) == Some(self.holder.as_str());
            let owns = self.owns(&user);
            if owns && !mine {
                if released < self.config.max_moves {
                    released += 1;
                    self.release(engine, &user).await;
                    self.status.lock().released_total += 1;
                }
            } else if !owns
                && mine
                && status == UserStatus::Active
                && !self.stopping.contains(&user)
                && to_take.len() < self.config.max_moves
                && held
                    .get(&name)
                    .is_none_or(|(h, _, live)| !live || *h == self.holder)
            {
                to_take.push((user, name));
            } else if !self.owned.contains_key(&user)
                && !self.stopping.contains(&user)
                && released < self.config.max_moves
                && held
                    .get(&name)
                    .is_some_and(|(h, _, live)| *live && *h == self.holder)
            {
                // Held here without an owner (a release that failed, since
                // renewed with the others): let it go, or nobody else can
                // ever take the user.
                released += 1;
                if let Err(e) = self.leases.release(&name, &self.holder).await {
                    tracing::warn!(user_id = %user, error = %e, "stray user lease not released; trying again next round");
                }
            }
        }
        // Taken a few at a time: each is one short transaction, and a dead
        // instance's users should come back together.
        let answers: Vec<_> = futures::stream::iter(to_take)
            .map(|(user, name)| async move {
                let answer = self
                    .leases
                    .acquire(&name, &self.holder, self.config.user_ttl)
                    .await;
                (user, answer)
            })
            .buffer_unordered(TAKE_CONCURRENCY)
            .collect()
            .await;
        let mut failed = None;
        for (user, answer) in answers {
            match answer {
                Ok(l) if l.held_by(&self.holder) => {
                    self.elsewhere.remove(&user);
                    self.epochs.insert(user.clone(), l.epoch);
                    self.owned
                        .insert(user.clone(), (l.epoch, tokio::time::Instant::now()));
                    self.status.lock().taken_total += 1;
                    tracing::info!(user_id = %user, epoch = l.epoch, "user owned here now");
                    engine.start_monitor(&user).await;
                }
                Ok(_) => {}
                Err(err) => failed = Some(err.to_string()),
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        Ok(())
    }

    /// Stops the owner of `user` here (its monitor first).
    async fn stop(&self, engine: &dyn OwnedUsers, user: &UserId, reason: &str) {
        engine.stop_monitor(user, reason).await;
        self.owned.remove(user);
        engine.evict_owner(user);
    }

    /// Stops the owner of `user`, then lets its lease go.
    async fn release(&self, engine: &dyn OwnedUsers, user: &UserId) {
        self.stop(engine, user, "user moved to another instance")
            .await;
        if let Err(e) = self.leases.release(&lease_name(user), &self.holder).await {
            tracing::warn!(user_id = %user, error = %e, "user lease not released; it lapses by itself");
        }
    }
}
