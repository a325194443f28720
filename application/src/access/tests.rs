use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::user::UserStatus;

use super::*;

/// Users in a map, counting reads.
#[derive(Default)]
struct Users {
    users: Mutex<HashMap<UserId, User>>,
    reads: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl Users {
    fn put(&self, user: User) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.id.clone(), user);
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserRepository for Users {
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("down".into()));
        }
        Ok(self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned())
    }

    async fn list_users(
        &self,
        _after: Option<&UserId>,
        _limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        Ok(Vec::new())
    }

    async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError> {
        Ok(Vec::new())
    }
}

fn id(s: &str) -> UserId {
    UserId::new(s).unwrap_or_else(|_| unreachable!())
}

fn user(name: &str, role: Role) -> User {
    let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    serde_json::from_value(serde_json::json!({
        "id": name, "name": name, "status": "active", "role": role.as_str(),
        "created_at": at, "updated_at": at, "version": 1,
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn unknown_disabled_and_revoked_are_refused_and_roles_come_from_the_user() {
    let users = Arc::new(Users::default());
    users.put(user("alice", Role::Trader));
    let mut bob = user("bob", Role::Admin);
    bob.status = UserStatus::Disabled;
    users.put(bob);
    let mut carol = user("carol", Role::Admin);
    carol.tokens_valid_after = DateTime::from_timestamp(1_800_000_000, 0);
    users.put(carol);
    let access = UserAccess::new(users, Duration::ZERO);

    // A trader's token claiming admin acts as a trader.
    assert_eq!(
        access.admit(&id("alice"), 1, Role::Admin).await.ok(),
        Some(Role::Trader)
    );
    for (who, issued, why) in [
        ("nobody", 1, TokenRefusal::UnknownUser),
        ("bob", 1, TokenRefusal::Disabled),
        ("carol", 1_799_999_999, TokenRefusal::Revoked),
    ] {
        match access.admit(&id(who), issued, Role::Admin).await {
            Err(AccessError::Refused(r)) => assert_eq!(r, why, "{who}"),
            other => panic!("{who}: {other:?}"),
        }
    }
    assert_eq!(
        access
            .admit(&id("carol"), 1_800_000_001, Role::Admin)
            .await
            .ok(),
        Some(Role::Admin)
    );
}

#[tokio::test]
async fn answers_are_kept_for_the_ttl_and_forgotten_on_demand() {
    let users = Arc::new(Users::default());
    users.put(user("alice", Role::Trader));
    let access = UserAccess::new(users.clone(), Duration::from_secs(60));
    for _ in 0..5 {
        assert!(access.admit(&id("alice"), 1, Role::Trader).await.is_ok());
        assert!(access.admit(&id("ghost"), 1, Role::Trader).await.is_err());
    }
    // One read each, the unknown user included.
    assert_eq!(users.reads(), 2);

    // Disabled in the database: this instance sees it once it forgets.
    let mut alice = user("alice", Role::Trader);
    alice.status = UserStatus::Disabled;
    users.put(alice);
    assert!(access.admit(&id("alice"), 1, Role::Trader).await.is_ok());
    access.forget(&id("alice"));
    assert!(matches!(
        access.admit(&id("alice"), 1, Role::Trader).await,
        Err(AccessError::Refused(TokenRefusal::Disabled))
    ));
    assert_eq!(users.reads(), 3);
}

#[tokio::test]
async fn a_zero_ttl_reads_every_time_and_a_store_failure_is_not_a_refusal() {
    let users = Arc::new(Users::default());
    users.put(user("alice", Role::Viewer));
    let access = UserAccess::new(users.clone(), Duration::ZERO);
    for _ in 0..3 {
        assert!(access.admit(&id("alice"), 1, Role::Admin).await.is_ok());
    }
    assert_eq!(users.reads(), 3);
    users.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        access.admit(&id("alice"), 1, Role::Admin).await,
        Err(AccessError::Store(_))
    ));
}
