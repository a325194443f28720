//! The sign-in service against the in-memory store, on a manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{Duration, TimeZone as _, Utc};
use ordermon_domain::ports::{
    ChangeSet, CredentialRepository as _, ManualClock, StateChange, Store as _,
};
use ordermon_domain::user::{Role, User, UserStatus};
use ordermon_memory::MemoryStore;

use super::*;

const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    service: SignInService,
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

async fn fixture(config: SignInConfig) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    ));
    let persistence = Persistence::from_backend(store.clone());
    let service = SignInService::new(&persistence, clock.clone(), config);
    let f = Fixture {
        store,
        clock,
        service,
    };
    for (id, role) in [
        ("alice", Role::Trader),
        ("bob", Role::Viewer),
        ("root", Role::Admin),
    ] {
        f.put_user(id, role, UserStatus::Active, 0).await;
    }
    f
}

impl Fixture {
    async fn put_user(&self, id: &str, role: Role, status: UserStatus, expected: u64) {
        self.put_user_revoked(id, role, status, expected, None)
            .await;
    }

    async fn put_user_revoked(
        &self,
        id: &str,
        role: Role,
        status: UserStatus,
        expected: u64,
        tokens_valid_after: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let now = self.clock.now();
        let user = User {
            id: uid(id),
            name: format!("User {id}"),
            status,
            role,
            account_type: Default::default(),
            limits: Default::default(),
            trading_state: Default::default(),
            created_at: now,
            updated_at: now,
            version: expected + 1,
            sequence: 0,
            tokens_valid_after,
        };
        self.store
            .commit(ChangeSet {
                changes: vec![StateChange::User {
                    user: Box::new(user),
                    expected,
                }],
                ..ChangeSet::default()
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_password_signs_in_and_the_session_is_stored() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    let stored = f.store.password_hash(&uid("alice")).await.unwrap().unwrap();
    assert!(stored.hash.expose().starts_with("$argon2id$"));
    assert!(!stored.hash.expose().contains(PASSWORD));

    let s = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    assert_eq!((s.user_id.as_str(), s.role), ("alice", Role::Trader));
    assert_eq!(s.name, "User alice");
    assert_eq!(s.refresh_expires_at, f.clock.now() + Duration::hours(12));
    assert_eq!(s.access_ttl, std::time::Duration::from_secs(900));
    let token = s.refresh_token.expose();
    assert!(token.starts_with(&format!("{}.", s.session_id)));
    assert!(!format!("{s:?}").contains(token), "Debug hides the token");
    let session = f.store.get_session(s.session_id).await.unwrap().unwrap();
    assert!(session.is_live(f.clock.now()));
    assert!(!f.service.is_revoked(s.session_id));
}

#[tokio::test]
async fn every_refusal_looks_the_same() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    f.put_user("carol", Role::Trader, UserStatus::Active, 0)
        .await;
    f.put_user("dave", Role::Trader, UserStatus::Active, 0)
        .await;
    f.service
        .set_password(&uid("dave"), PASSWORD)
        .await
        .unwrap();
    f.put_user("dave", Role::Trader, UserStatus::Disabled, 1)
        .await;
    for (user, password) in [
        ("alice", "wrong password!"),
        ("ghost", PASSWORD),
        ("carol", PASSWORD),
        ("dave", PASSWORD),
        ("not a valid id!", PASSWORD),
        ("alice", ""),
    ] {
        let e = f.service.login(user, password, ip(1)).await.unwrap_err();
        assert_eq!(e, SignInError::InvalidCredentials, "{user}");
        assert!(!e.to_string().contains(password) || password.is_empty());
    }
}

#[tokio::test]
async fn setting_a_password_checks_the_policy_and_the_user() {
    let f = fixture(SignInConfig::default()).await;
    assert_eq!(
        f.service.set_password(&uid("alice"), "short").await,
        Err(SignInError::Policy(PasswordPolicyError::TooShort {
            min: 10
        }))
    );
    assert_eq!(
        f.service
            .set_password(&uid("alice"), &"x".repeat(1025))
            .await,
        Err(SignInError::Policy(PasswordPolicyError::TooLong {
            max: 1024
        }))
    );
    assert_eq!(
        f.service.set_password(&uid("ghost"), PASSWORD).await,
        Err(SignInError::UnknownUser)
    );
    assert_eq!(
        SignInError::Policy(PasswordPolicyError::TooShort { min: 10 }).to_string(),
        "password must be at least 10 characters"
    );
}

#[tokio::test]
async fn a_new_password_signs_every_session_out() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    let one = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    let two = f.service.login("alice", PASSWORD, ip(2)).await.unwrap();
    f.service.set_password(&uid("bob"), PASSWORD).await.unwrap();
    let bobs = f.service.login("bob", PASSWORD, ip(3)).await.unwrap();

    f.service
        .set_password(&uid("alice"), "a brand new passphrase")
        .await
        .unwrap();
    for s in [&one, &two] {
        assert!(f.service.is_revoked(s.session_id));
        assert_eq!(
            f.service
                .refresh(s.refresh_token.expose())
                .await
                .unwrap_err(),
            SignInError::InvalidRefreshToken
        );
    }
    assert!(!f.service.is_revoked(bobs.session_id));
    assert_eq!(
        f.service.login("alice", PASSWORD, ip(1)).await.unwrap_err(),
        SignInError::InvalidCredentials
    );
    f.service
        .login("alice", "a brand new passphrase", ip(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn refreshing_rotates_and_a_reused_token_kills_the_session() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    let first = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    f.clock.advance(Duration::minutes(10));
    let second = f
        .service
        .refresh(first.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    assert_eq!(second.refresh_expires_at, first.refresh_expires_at);
    let third = f
        .service
        .refresh(second.refresh_token.expose())
        .await
        .unwrap();

    // The first token again: someone else has it. The session dies, and the
    // latest token with it.
    assert_eq!(
        f.service
            .refresh(first.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    assert!(f.service.is_revoked(first.session_id));
    assert_eq!(
        f.service
            .refresh(third.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    let stored = f
        .store
        .get_session(first.session_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some());
}

#[tokio::test]
async fn refresh_refuses_garbage_expiry_and_disabled_users() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    for bad in ["", "x.y", "0190a2b4-0000-7000-8000-000000000000.abc"] {
        assert_eq!(
            f.service.refresh(bad).await.unwrap_err(),
            SignInError::InvalidRefreshToken
        );
    }
    // Expired: the session's life is fixed at sign-in.
    let s = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    f.clock.advance(Duration::hours(12));
    assert_eq!(
        f.service
            .refresh(s.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    // Disabled after signing in.
    let s = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    f.put_user("alice", Role::Trader, UserStatus::Disabled, 1)
        .await;
    assert_eq!(
        f.service
            .refresh(s.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    assert!(f.service.is_revoked(s.session_id));
}

#[tokio::test]
async fn revoking_a_users_tokens_ends_the_sessions_opened_before() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    let before = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    f.clock.advance(Duration::seconds(1));
    let revoked_at = f.clock.now();
    f.put_user_revoked(
        "alice",
        Role::Trader,
        UserStatus::Active,
        1,
        Some(revoked_at),
    )
    .await;
    assert_eq!(
        f.service
            .refresh(before.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    assert!(f.service.is_revoked(before.session_id));
    // Signing in again afterwards works, and so does refreshing it.
    f.clock.advance(Duration::seconds(1));
    let after = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    assert!(
        f.service
            .refresh(after.refresh_token.expose())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn logout_revokes_here_at_once_and_for_refresh() {
    let f = fixture(SignInConfig::default()).await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    let s = f.service.login("alice", PASSWORD, ip(1)).await.unwrap();
    f.service.logout(s.session_id).await.unwrap();
    assert!(f.service.is_revoked(s.session_id));
    assert_eq!(
        f.service
            .refresh(s.refresh_token.expose())
            .await
            .unwrap_err(),
        SignInError::InvalidRefreshToken
    );
    // Twice, or an unknown session: fine.
    f.service.logout(s.session_id).await.unwrap();
    f.service.logout(SessionId::generate()).await.unwrap();
    // Past the access TTL (and margin) nothing is remembered: the tokens
    // have expired anyway.
    f.clock.advance(Duration::minutes(17));
    assert!(!f.service.is_revoked(s.session_id));
}

#[tokio::test]
async fn attempts_are_limited_per_account_and_per_address() {
    let f = fixture(SignInConfig {
        attempts_per_account_per_minute: 2,
        attempts_per_ip_per_minute: 4,
        ..SignInConfig::default()
    })
    .await;
    f.service
        .set_password(&uid("alice"), PASSWORD)
        .await
        .unwrap();
    f.service.set_password(&uid("bob"), PASSWORD).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            f.service
                .login("alice", "wrong password", ip(1))
                .await
                .unwrap_err(),
            SignInError::InvalidCredentials
        );
    }
    // The right password no longer helps: it is not even checked.
    let e = f.service.login("alice", PASSWORD, ip(2)).await.unwrap_err();
    let SignInError::RateLimited { retry_after } = e else {
        panic!("{e:?}");
    };
    // Two a minute: one more every 30 s, less what the hashing above took
    // (the limiter runs on the real clock).
    let secs = retry_after_secs(retry_after);
    assert!((1..=30).contains(&secs), "{secs}");
    assert!(
        e.to_string().contains(&format!("retry after {secs} s")),
        "{e}"
    );
    // Another account from the same address still signs in…
    f.service.login("bob", PASSWORD, ip(1)).await.unwrap();
    // …until the address has used its four.
    assert_eq!(
        f.service
            .login("bob", "wrong password", ip(1))
            .await
            .unwrap_err(),
        SignInError::InvalidCredentials
    );
    assert!(matches!(
        f.service.login("bob", PASSWORD, ip(1)).await,
        Err(SignInError::RateLimited { .. })
    ));
    assert!(matches!(
        f.service.login("nobody", PASSWORD, ip(1)).await,
        Err(SignInError::RateLimited { .. })
    ));
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    use std::time::Duration as D;
    assert_eq!(retry_after_secs(D::ZERO), 1);
    assert_eq!(retry_after_secs(D::from_millis(1)), 1);
    assert_eq!(retry_after_secs(D::from_secs(12)), 12);
    assert_eq!(retry_after_secs(D::from_millis(12_001)), 13);
}
