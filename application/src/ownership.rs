//! Users owned by exactly one instance at a time, when several instances
//! share one database (`cluster.enabled`).
//!
//! Every instance holds a membership lease (`member:{holder}`) while it runs.
//! Each user is assigned to one live member by rendezvous hashing (the member
//! with the highest hash of member and user id), so when a member joins or
//! leaves only the users assigned to it move. An instance owns a user only
//! while it holds the user's lease (`user:{id}`), taken when the user is
//! assigned to it and the lease is free or lapsed; all of an instance's user
//! leases are renewed in one statement per round. A user's owner runs only on
//! the instance that holds its lease, commands for other users are refused
//! there (HTTP 503 naming the owner), and every commit of an owner carries the
//! lease's epoch as a [`Fence`]: once another instance has taken the lease, the
//! store refuses what the old owner still tries to write, so a paused instance
//! that wakes after losing its users cannot write for them.
//!
//! When a member dies, its membership and user leases lapse after their TTLs;
//! the survivors' next round assigns its users among themselves and takes
//! them. When a member joins, the others release the users now assigned to it
//! (stopping those owners first), at most `max_moves` per round.
//!
//! An instance given an address to be reached at (`cluster.advertise_url`)
//! publishes it while it runs, as the lease `address:{holder}` whose holder
//! field is the address; the others read every live one each round, so a
//! request for a user owned elsewhere can be forwarded to its owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt as _;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{Fence, LeaseStore, StoreError};
use ordermon_domain::user::UserStatus;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lease_keeper::{LeaseHandle, LeaseKeeper};

/// The prefix of membership leases.
pub const MEMBER_PREFIX: &str = "member:";
/// The prefix of user leases.
pub const USER_PREFIX: &str = "user:";
/// The prefix of the leases that publish an instance's address.
pub const ADDRESS_PREFIX: &str = "address:";

/// User leases asked for at once in a round.
const TAKE_CONCURRENCY: usize = 16;

/// What ownership starts and stops on this instance: the owners of the users
/// it owns and their monitors. The engine provides it; ownership knows
/// nothing else of the engine.
#[async_trait::async_trait]
pub trait OwnedUsers: Send + Sync + 'static {
    /// Starts `user`'s monitor (and its owner) now that the user is owned here.
    async fn start_monitor(&self, user: &UserId);
    /// Stops `user`'s monitor, if one runs here, giving `reason`.
    async fn stop_monitor(&self, user: &UserId, reason: &str);
    /// Ends `user`'s owner here once its queued commands ran.
    fn evict_owner(&self, user: &UserId);
    /// Every user and its status (only active users are taken).
    async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError>;
}

/// How ownership behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipConfig {
    /// How long a membership lease lasts without renewal.
    pub member_ttl: Duration,
    /// How long a user lease lasts without renewal.
    pub user_ttl: Duration,
    /// How often the assignment is recomputed and leases renewed.
    pub round_interval: Duration,
    /// Most users taken and most released per round.
    pub max_moves: usize,
    /// The base URL the other instances reach this one at (`None`: requests
    /// for the users it owns are not forwarded to it).
    pub advertise_url: Option<String>,
}

impl Default for OwnershipConfig {
    fn default() -> Self {
        Self {
            member_ttl: Duration::from_secs(5),
            user_ttl: Duration::from_secs(5),
            round_interval: Duration::from_secs(1),
            max_moves: 1000,
            advertise_url: None,
        }
    }
}

/// What `/status` shows of ownership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnershipStatus {
    /// This instance's holder id.
    pub instance: String,
    /// The address this instance publishes for forwarded requests.
    pub advertise_url: Option<String>,
    /// Whether this instance holds its membership lease.
    pub member: bool,
    /// Live members at the last round (this one included), by holder id.
    pub members: Vec<String>,
    /// The published address of each live member that has one.
    pub addresses: std::collections::BTreeMap<String, String>,
    /// Users this instance owns.
    pub owned: usize,
    /// The first 1,000 of them, by id.
    pub owned_users: Vec<String>,
    /// Users taken since start.
    pub taken_total: u64,
    /// Users released to another member since start.
    pub released_total: u64,
    /// Users lost without releasing them (lease taken or lapsed).
    pub lost_total: u64,
    /// Rounds completed.
    pub rounds: u64,
    /// The last round's failure, if it failed.
    pub last_error: Option<String>,
}

/// Which users this instance owns, and the epoch of each one's lease.
pub struct UserOwnership {
    leases: Arc<dyn LeaseStore>,
    holder: String,
    config: OwnershipConfig,
    owned: DashMap<UserId, (u64, tokio::time::Instant)>,
    /// The epoch of each user's lease as last taken here: the fence of its
    /// owner's commits, kept after the owner stops so that its last writes
    /// are judged by the store (they land unless another instance has taken
    /// the lease since).
    epochs: DashMap<UserId, u64>,
    /// Holders of users seen held elsewhere at the last round, for refusals.
    elsewhere: DashMap<UserId, String>,
    /// The published address of each live member, by holder id.
    addresses: DashMap<String, String>,
    /// Users lost whose owners are still being stopped: not taken again
    /// until they are.
    stopping: dashmap::DashSet<UserId>,
    status: Mutex<OwnershipStatus>,
    /// Until when the user leases count as held here without a renewal: the
    /// start of the last successful renewal plus 90 % of their TTL, on this
    /// process's monotonic clock. A process paused past it owns nothing the
    /// moment it wakes, before its next round has run.
    valid_until: Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for UserOwnership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserOwnership")
            .field("holder", &self.holder)
            .field("owned", &self.owned.len())
            .finish_non_exhaustive()
    }
}

/// FNV-1a over the parts, then MurmurHash3's 64-bit finalizer (FNV alone
/// barely moves its high bits for a change in the last bytes, which would
/// hand out users in runs): a hash every build and platform agrees on.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The member a user is assigned to: the highest hash of member and user.
#[must_use]
pub fn assigned<'m>(user: &UserId, members: &'m [String]) -> Option<&'m str> {
    members
        .iter()
        .max_by_key(|m| (fnv(&[m, user.as_str()]), m.as_str()))
        .map(String::as_str)
}

fn lease_name(user: &UserId) -> String {
    format!("{USER_PREFIX}{user}")
}

impl UserOwnership {
    /// Ownership for `holder` (this process) over `leases`.
    #[must_use]
    pub fn new(leases: Arc<dyn LeaseStore>, holder: String, config: OwnershipConfig) -> Arc<Self> {
        Arc::new(Self {
            leases,
            status: Mutex::new(OwnershipStatus {
                instance: holder.clone(),
                advertise_url: config.advertise_url.clone(),
                member: false,
                members: Vec::new(),
                addresses: std::collections::BTreeMap::new(),
                owned: 0,
                owned_users: Vec::new(),
                taken_total: 0,
                released_total: 0,
                lost_total: 0,
                rounds: 0,
                last_error: None,
            }),
            holder,
            config,
            owned: DashMap::new(),
            epochs: DashMap::new(),
            elsewhere: DashMap::new(),
            addresses: DashMap::new(),
            stopping: dashmap::DashSet::new(),
            valid_until: Mutex::new(None),
        })
    }

    /// This process's holder id.
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether this instance owns `user` now.
    #[must_use]
    pub fn owns(&self, user: &UserId) -> bool {
        self.valid() && self.owned.contains_key(user)
    }

    /// Whether the leases' last renewal still holds.
    fn valid(&self) -> bool {
        self.valid_until
            .lock()
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    /// The fence an owner's commit for `user` carries: the epoch of the
    /// user's lease as last taken here, or 0 (which every store refuses)
    /// when this instance never held it.
    #[must_use]
    pub fn fence(&self, user: &UserId) -> Fence {
        Fence {
            lease: lease_name(user),
            holder: self.holder.clone(),
            epoch: self.epochs.get(user).map_or(0, |e| *e),
        }
    }

    /// Who owns `user` if not this instance, as far as the last round saw.
    #[must_use]
    pub fn owner_elsewhere(&self, user: &UserId) -> Option<String> {
        self.elsewhere.get(user).map(|h| h.clone())
    }

    /// The address `holder` published, if it is a live member that did.
    #[must_use]
    pub fn address_of(&self, holder: &str) -> Option<String> {
        self.addresses.get(holder).map(|a| a.clone())
    }

    /// A snapshot for `/status`.
    #[must_use]
    pub fn status(&self) -> OwnershipStatus {
        let mut s = self.status.lock().clone();
        let mut users: Vec<String> = if self.valid() {
            self.owned.iter().map(|e| e.key().to_string()).collect()
        } else {
            Vec::new()
        };
        users.sort_unstable();
        s.owned = users.len();
        users.truncate(1000);
        s.owned_users = users;
        s
    }

    /// Starts the membership lease and the ownership rounds for `engine`'s users;
    /// both stop when `cancel` fires (the leases are then released).
    pub fn spawn(
        self: &Arc<Self>,
        engine: Arc<dyn OwnedUsers>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) {
        let member = LeaseKeeper::new(
            self.leases.clone(),
            format!("{MEMBER_PREFIX}{}", self.holder),
            self.holder.clone(),
            self.config.member_ttl,
        )
        .spawn(tracker, cancel.clone());
        if let Some(url) = &self.config.advertise_url {
            // Held in the address's name: its holder field is the address.
            let _address = LeaseKeeper::new(
                self.leases.clone(),
                format!("{ADDRESS_PREFIX}{}", self.holder),
                url.clone(),
                self.config.member_ttl,
            )
            .spawn(tracker, cancel.clone());
        }
        {
            let (me, engine, member, cancel) =
                (self.clone(), engine.clone(), member.clone(), cancel.clone());
            tracker.spawn(async move { me.keep(engine, member, cancel).await });
        }
        let me = self.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move { me.run(engine, member, cancel).await });
    }

    /// Renews the user leases every quarter of their TTL, apart from the
    /// rounds (a slow round, taking hundreds of users, must not let the
    /// leases it already holds lapse).
    async fn keep(
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

    /// Every user lease: its holder, epoch and whether it is live, by name.
    async fn user_leases(&self) -> Result<HashMap<String, (String, u64, bool)>, String> {
        Ok(self
            .leases
            .leases(USER_PREFIX)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|l| (l.name, (l.holder, l.epoch, l.live)))
            .collect())
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

    async fn run(
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

    /// Stops the owner of a user already disowned.
    async fn stop_owner(&self, engine: &dyn OwnedUsers, user: &UserId, reason: &str) {
        engine.stop_monitor(user, reason).await;
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

    fn drop_all(self: &Arc<Self>, engine: &Arc<dyn OwnedUsers>, reason: &'static str) {
        let users: Vec<UserId> = self.owned.iter().map(|e| e.key().clone()).collect();
        let users = users.into_iter().filter(|u| self.disown(u)).collect();
        self.stop_owners(engine, users, reason);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn uid(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn assignment_is_stable_and_moves_only_the_users_of_a_member_that_left() {
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let two: Vec<String> = ["a", "b"].iter().map(|s| (*s).to_owned()).collect();
        let users: Vec<UserId> = (0..3000).map(|i| uid(&format!("u{i}"))).collect();
        let mut per = std::collections::HashMap::new();
        for u in &users {
            let m = assigned(u, &three).unwrap();
            *per.entry(m).or_insert(0) += 1;
            // Stable: the same answer each time, whatever the members' order.
            let mut shuffled = three.clone();
            shuffled.reverse();
            assert_eq!(assigned(u, &shuffled), Some(m));
            // c leaves: only c's users move.
            let after = assigned(u, &two).unwrap();
            if m != "c" {
                assert_eq!(after, m, "{u} moved without reason");
            }
        }
        // Spread evenly enough (each within 15 % of a third), and not in runs
        // of neighbouring ids.
        for (m, n) in per {
            assert!((850..=1150).contains(&n), "{m}: {n}");
        }
        let longest_run = users
            .windows(2)
            .fold((1, 1), |(run, best), w| {
                let run = if assigned(&w[0], &three) == assigned(&w[1], &three) {
                    run + 1
                } else {
                    1
                };
                (run, best.max(run))
            })
            .1;
        assert!(
            longest_run < 15,
            "runs of {longest_run} neighbours on one member"
        );
        assert_eq!(assigned(&uid("x"), &[]), None);
    }
}
