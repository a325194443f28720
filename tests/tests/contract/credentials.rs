//! The credential contract: password hashes are upserted for known users
//! only; sessions are created for known users, rotated by compare-and-swap on
//! the old refresh hash (one winner among concurrent refreshes), revoked one
//! by one or per user (a revocation keeps its first time), listed while live
//! and purged once expired.

use chrono::Duration;
use ordermon_domain::credential::{PasswordHash, RefreshHash, Session};
use ordermon_domain::ids::SessionId;
use ordermon_domain::ports::{StateChange, StoreError};
use ordermon_tests::TestStore;

use crate::fixtures::*;

const PHC_A: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE";
const PHC_B: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cGVwcGVycGVwcGVy$YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI";

fn hash(c: char) -> RefreshHash {
    RefreshHash::new(c.to_string().repeat(64)).unwrap()
}

fn session(user: &str, refresh: char, created: i64, hours: i64) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: uid(user),
        refresh_hash: hash(refresh),
        created_at: at(created),
        expires_at: at(created) + Duration::hours(hours),
        revoked_at: None,
        last_used_at: at(created),
    }
}

async fn create_users(t: &TestStore, ids: &[&str]) {
    for id in ids {
        t.store
            .commit(only(StateChange::User {
                user: Box::new(user(id)),
                expected: 0,
            }))
            .await
            .unwrap();
    }
}

pub(crate) async fn password_hashes_upsert_for_known_users(t: &TestStore) {
    let s = &t.store;
    let a = PasswordHash::new(PHC_A).unwrap();
    let b = PasswordHash::new(PHC_B).unwrap();
    let unknown = s.set_password_hash(&uid("ghost"), &a, at(0)).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { entity: "user", .. })),
        "{unknown:?}"
    );
    create_users(t, &["alice", "bob"]).await;
    assert_eq!(s.password_hash(&uid("alice")).await.unwrap(), None);
    s.set_password_hash(&uid("alice"), &a, at(0)).await.unwrap();
    let stored = s.password_hash(&uid("alice")).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.user_id.as_str(),
            stored.hash.expose(),
            stored.updated_at
        ),
        ("alice", PHC_A, at(0))
    );
    // Setting again replaces it.
    s.set_password_hash(&uid("alice"), &b, at(60))
        .await
        .unwrap();
    let stored = s.password_hash(&uid("alice")).await.unwrap().unwrap();
    assert_eq!((stored.hash.expose(), stored.updated_at), (PHC_B, at(60)));
    assert_eq!(s.password_hash(&uid("bob")).await.unwrap(), None);
    assert_eq!(s.password_hash(&uid("ghost")).await.unwrap(), None);
}

pub(crate) async fn sessions_rotate_by_compare_and_swap(t: &TestStore) {
    let s = &t.store;
    let ghost = s.create_session(&session("ghost", 'a', 0, 12)).await;
    assert!(
        matches!(ghost, Err(StoreError::NotFound { entity: "user", .. })),
        "{ghost:?}"
    );
    create_users(t, &["alice"]).await;
    let one = session("alice", 'a', 0, 12);
    s.create_session(&one).await.unwrap();
    assert_eq!(s.get_session(one.id).await.unwrap(), Some(one.clone()));
    assert_eq!(s.get_session(SessionId::generate()).await.unwrap(), None);
    let again = s.create_session(&one).await;
    assert!(
        matches!(again, Err(StoreError::Duplicate { .. })),
        "{again:?}"
    );

    // The old hash wins once; presenting it again no longer matches.
    assert!(
        s.rotate_refresh_hash(one.id, &hash('a'), &hash('b'), at(30))
            .await
            .unwrap()
    );
    assert!(
        !s.rotate_refresh_hash(one.id, &hash('a'), &hash('c'), at(31))
            .await
            .unwrap()
    );
    let now = s.get_session(one.id).await.unwrap().unwrap();
    assert_eq!(now.refresh_hash, hash('b'));
    assert_eq!(now.last_used_at, at(30));
    assert_eq!(now.created_at, at(0));
    assert_eq!(now.expires_at, one.expires_at, "a refresh does not extend");
    assert!(
        !s.rotate_refresh_hash(SessionId::generate(), &hash('b'), &hash('c'), at(32))
            .await
            .unwrap(),
        "unknown sessions do not rotate"
    );

    // Concurrent refreshes with one secret: exactly one wins.
    let news = ['1', '2', '3', '4', '5', '6', '7', '8'];
    let (current, candidates) = (hash('b'), news.map(hash));
    let tries = candidates
        .iter()
        .map(|n| s.rotate_refresh_hash(one.id, &current, n, at(40)));
    let won: Vec<bool> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = news[won.iter().position(|w| *w).unwrap()];
    let now = s.get_session(one.id).await.unwrap().unwrap();
    assert_eq!(now.refresh_hash, hash(winner));

    // A revoked session no longer rotates.
    assert!(s.revoke_session(one.id, at(50)).await.unwrap());
    assert!(
        !s.rotate_refresh_hash(one.id, &hash(winner), &hash('f'), at(51))
            .await
            .unwrap()
    );
}

pub(crate) async fn sessions_revoke_list_and_purge(t: &TestStore) {
    let s = &t.store;
    create_users(t, &["alice", "bob"]).await;
    let old = session("alice", 'a', 0, 1);
    let first = session("alice", 'b', 10, 12);
    let second = session("alice", 'c', 20, 12);
    let bobs = session("bob", 'd', 30, 12);
    for x in [&old, &first, &second, &bobs] {
        s.create_session(x).await.unwrap();
    }
    // At +2h the first session has expired: it is not live.
    let later = at(2 * 3600);
    let live: Vec<SessionId> = s
        .live_sessions(&uid("alice"), later)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(live, [second.id, first.id], "newest first, live only");

    // One at a time: the first revocation counts and its time stays.
    assert!(s.revoke_session(first.id, at(100)).await.unwrap());
    assert!(!s.revoke_session(first.id, at(200)).await.unwrap());
    assert!(
        !s.revoke_session(SessionId::generate(), at(200))
            .await
            .unwrap()
    );
    let revoked = s.get_session(first.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(100)));

    // Every live session of a user: only `second` was left (the old one expired).
    assert_eq!(
        s.revoke_user_sessions(&uid("alice"), later).await.unwrap(),
        1
    );
    assert_eq!(
        s.revoke_user_sessions(&uid("alice"), later).await.unwrap(),
        0
    );
    assert!(
        s.live_sessions(&uid("alice"), later)
            .await
            .unwrap()
            .is_empty()
    );
    let second_now = s.get_session(second.id).await.unwrap().unwrap();
    assert_eq!(second_now.revoked_at, Some(later));
    assert_eq!(
        s.get_session(old.id).await.unwrap().unwrap().revoked_at,
        None
    );
    let bob_live = s.live_sessions(&uid("bob"), later).await.unwrap();
    assert_eq!(bob_live.len(), 1, "another user's sessions are untouched");
    assert_eq!(bob_live[0], bobs);

    // The purge deletes what expired before the cutoff, revoked or not; the
    // retention count says as much beforehand.
    assert_eq!(s.purgeable(later).await.unwrap().sessions, 1);
    assert_eq!(s.purgeable(at(13 * 3600)).await.unwrap().sessions, 4);
    assert_eq!(s.purge_sessions(at(3600)).await.unwrap(), 0);
    assert_eq!(s.purge_sessions(later).await.unwrap(), 1);
    assert_eq!(s.get_session(old.id).await.unwrap(), None);
    assert_eq!(s.purge_sessions(at(13 * 3600)).await.unwrap(), 3);
    assert_eq!(s.purgeable(at(13 * 3600)).await.unwrap().sessions, 0);
    assert_eq!(s.get_session(bobs.id).await.unwrap(), None);
}
