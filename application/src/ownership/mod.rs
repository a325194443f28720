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
//!
//! `assign.rs` is the rendezvous hash; `round.rs` takes and releases users,
//! `renew.rs` keeps their leases; this file holds what is owned and answers
//! the engine's questions about it.

mod assign;
mod renew;
mod round;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{Fence, LeaseStore, StoreError};
use ordermon_domain::user::UserStatus;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lease_keeper::LeaseKeeper;

pub use self::assign::assigned;

/// The prefix of membership leases.
pub const MEMBER_PREFIX: &str = "member:";
/// The prefix of user leases.
pub const USER_PREFIX: &str = "user:";
/// The prefix of the leases that publish an instance's address.
pub const ADDRESS_PREFIX: &str = "address:";

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
}
