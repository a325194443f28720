//! Transport security: PostgreSQL, MySQL and Redis over TLS, through the
//! project's own adapters (the SQL store, the Redis cache and bus), against the
//! TLS endpoints `scripts/tls-services.sh` sets up with a throwaway CA.
//!
//! Each backend shows three things: a verified round trip (the server's
//! certificate checked against the test CA), that the connection really is
//! encrypted (the server says so, or refuses plaintext), and that a client
//! trusting a different CA is refused with an error naming the certificate.
//!
//! Endpoints come from `ORDERMON_TEST_TLS_CA`, `ORDERMON_TEST_TLS_WRONG_CA`,
//! `ORDERMON_TEST_PG_TLS_URL`, `ORDERMON_TEST_MYSQL_TLS_URL` and
//! `ORDERMON_TEST_REDIS_TLS_URL` (defaults: what the script sets up in
//! `$TMPDIR/ordermon-tls`). A missing endpoint fails the test when
//! `ORDERMON_REQUIRE_SERVICES=1` and skips it otherwise.

use std::path::PathBuf;
use std::time::Duration;

use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{
    BusMessage, Cache, CacheKey, ChangeSet, MessageBus, StateChange, SubscriptionSpec,
};
use ordermon_domain::user::User;
use ordermon_redis::bus::{RedisBus, RedisBusConfig};
use ordermon_redis::cache::{CacheConfig, RedisCache, RedisCacheConfig};
use ordermon_sql::{PoolConfig, SqlStore, redact_url};
use ordermon_tests::{Backend, TestStore, provision_on, services_required};
use sqlx::{Connection as _, Row as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The TLS endpoints and the two CAs.
struct Endpoints {
    ca: PathBuf,
    wrong_ca: PathBuf,
    postgres: String,
    mysql: String,
    redis: String,
}

/// The endpoints, or `None` (after saying why) when the test CA is missing.
fn endpoints(service: &str) -> Option<Endpoints> {
    let dir = std::env::temp_dir().join("ordermon-tls");
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ca = var("ORDERMON_TEST_TLS_CA").map_or_else(|| dir.join("ca.pem"), PathBuf::from);
    let wrong_ca =
        var("ORDERMON_TEST_TLS_WRONG_CA").map_or_else(|| dir.join("wrong-ca.pem"), PathBuf::from);
    if !ca.is_file() || !wrong_ca.is_file() {
        let why = format!(
            "{service} over TLS: no test CA at {} (run scripts/tls-services.sh)",
            ca.display()
        );
        assert!(!services_required(), "{why} (ORDERMON_REQUIRE_SERVICES=1)");
        eprintln!("skipped: {why}");
        return None;
    }
    let c = ca.display();
    Some(Endpoints {
        postgres: var("ORDERMON_TEST_PG_TLS_URL").unwrap_or_else(|| {
            format!("postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert={c}")
        }),
        mysql: var("ORDERMON_TEST_MYSQL_TLS_URL").unwrap_or_else(|| {
            format!("mysql://ordermon:ordermon@127.0.0.1:3307/ordermon?ssl-mode=VERIFY_IDENTITY&ssl-ca={c}")
        }),
        redis: var("ORDERMON_TEST_REDIS_TLS_URL")
            .unwrap_or_else(|| "rediss://127.0.0.1:6390/".to_owned()),
        ca,
        wrong_ca,
    })
}

/// `url` with every occurrence of the test CA's path replaced by the wrong CA's.
fn with_wrong_ca(url: &str, e: &Endpoints) -> String {
    let (right, wrong) = (e.ca.display().to_string(), e.wrong_ca.display().to_string());
    assert!(
        url.contains(&right),
        "{} does not name the test CA",
        redact_url(url)
    );
    url.replace(&right, &wrong)
}

/// A verification failure must say it is about the certificate.
fn assert_certificate_refused(what: &str, error: &str) {
    eprintln!("{what} refused as expected: {error}");
    let lower = error.to_ascii_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("unknownissuer"),
        "{what}: the refusal does not name the certificate: {error}"
    );
}

/// Writes a user through the store's commit path and reads it back.
async fn user_round_trip(t: &TestStore) {
    let now = chrono::Utc::now();
    let user: User = serde_json::from_value(serde_json::json!({
        "id": "tls-alice", "name": "Alice over TLS", "status": "active", "role": "trader",
        "created_at": now, "updated_at": now, "version": 1,
    }))
    .unwrap_or_else(|e| panic!("fixture user: {e}"));
    let batch = ChangeSet {
        changes: vec![StateChange::User {
            user: Box::new(user.clone()),
            expected: 0,
        }],
        ..ChangeSet::default()
    };
    t.store
        .commit(batch)
        .await
        .unwrap_or_else(|e| panic!("commit over TLS on {}: {e}", t.backend.name()));
    let back = t
        .store
        .get_user(&user.id)
        .await
        .unwrap_or_else(|e| panic!("read over TLS on {}: {e}", t.backend.name()));
    assert_eq!(back.map(|u| u.name), Some(user.name));
}

fn quick_pool() -> PoolConfig {
    PoolConfig {
        connect_attempts: 1,
        acquire_timeout: Duration::from_secs(5),
        ..PoolConfig::default()
    }
}

/// The name of the database a server URL points at.
fn database_of(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or_default()
}

#[tokio::test]
async fn postgres_over_verified_tls() {
    let Some(e) = endpoints("postgres") else {
        return;
    };
    let Some(t) = provision_on(Backend::Postgres, &e.postgres).await else {
        return;
    };
    user_round_trip(&t).await;

    // Every connection the store holds to its database is encrypted: the
    // database is this test's own, so its sessions are the store's.
    let url = t.url.clone().unwrap_or_default();
    let mut c = sqlx::PgConnection::connect(&e.postgres)
        .await
        .unwrap_or_else(|err| panic!("verified TLS connection: {err}"));
    let own: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|err| panic!("pg_stat_ssl: {err}"));
    assert!(own, "a sslmode=verify-full connection is not encrypted");
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(database_of(&url))
    .fetch_one(&mut c)
    .await
    .unwrap_or_else(|err| panic!("pg_stat_activity: {err}"));
    let (encrypted, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(encrypted >= 1, "the store holds no encrypted connection");
    assert_eq!(plain, 0, "the store holds {plain} unencrypted connections");

    // Trusting another CA, the same server is refused.
    let wrong = with_wrong_ca(&url, &e);
    match SqlStore::connect(&wrong, quick_pool()).await {
        Ok(_) => panic!("postgres accepted a certificate the trusted CA did not sign"),
        Err(err) => assert_certificate_refused("postgres with the wrong CA", &err.to_string()),
    }
}

#[tokio::test]
async fn mysql_over_verified_tls() {
    let Some(e) = endpoints("mysql") else {
        return;
    };
    let Some(t) = provision_on(Backend::MySql, &e.mysql).await else {
        return;
    };
    user_round_trip(&t).await;
    let url = t.url.clone().unwrap_or_default();

    let mut c = sqlx::MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("verified TLS connection: {err}"));
    let cipher: String = sqlx::query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .fetch_one(&mut c)
        .await
        .and_then(|row| row.try_get::<String, _>(1))
        .unwrap_or_else(|err| panic!("Ssl_cipher: {err}"));
    assert!(
        !cipher.is_empty(),
        "a VERIFY_IDENTITY connection is not encrypted"
    );
    eprintln!("mysql cipher: {cipher}");

    // The server takes nothing but TLS, so every connection of the store's
    // pool was encrypted: a plaintext one is refused.
    let plain = format!(
        "{}?ssl-mode=DISABLED",
        url.split('?').next().unwrap_or(&url)
    );
    match sqlx::MySqlConnection::connect(&plain).await {
        Ok(_) => panic!("the TLS-only MySQL accepted a plaintext connection"),
        Err(err) => eprintln!("mysql plaintext refused as expected: {err}"),
    }

    let wrong = with_wrong_ca(&url, &e);
    match SqlStore::connect(&wrong, quick_pool()).await {
        Ok(_) => panic!("mysql accepted a certificate the trusted CA did not sign"),
        Err(err) => assert_certificate_refused("mysql with the wrong CA", &err.to_string()),
    }
}

/// Redis settings trusting `ca`, with timeouts that fail fast.
fn redis_config(ca: &std::path::Path) -> RedisCacheConfig {
    RedisCacheConfig {
        connect_timeout: Duration::from_secs(3),
        command_timeout: Duration::from_secs(3),
        channel: format!("ordermon:tls-test:{}", uuid::Uuid::now_v7().simple()),
        tls_ca_file: Some(ca.to_path_buf()),
        ..RedisCacheConfig::default()
    }
}

/// The TLS Redis answers a health check, or the test fails or skips.
async fn redis_up(e: &Endpoints) -> bool {
    let cache = RedisCache::new(&e.redis, &redis_config(&e.ca))
        .unwrap_or_else(|err| panic!("redis cache over TLS: {err}"));
    match cache.health().await {
        Ok(()) => true,
        Err(err) => {
            let why = format!("redis-tls unreachable at {}: {err}", redact_url(&e.redis));
            assert!(!services_required(), "{why} (ORDERMON_REQUIRE_SERVICES=1)");
            eprintln!("skipped: {why}");
            false
        }
    }
}

#[tokio::test]
async fn redis_cache_over_verified_tls() {
    let Some(e) = endpoints("redis") else {
        return;
    };
    if !redis_up(&e).await {
        return;
    }
    // The whole cache: the pool and the invalidation feed both connect.
    let config = CacheConfig {
        redis: redis_config(&e.ca),
        ..CacheConfig::default()
    };
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let cache = ordermon_redis::cache::connect(&e.redis, &config, &tracker, &cancel)
        .await
        .unwrap_or_else(|err| panic!("redis cache over TLS: {err}"));
    assert!(
        cache.wait_connected(Duration::from_secs(5)).await,
        "the cache stays degraded over TLS: {:?}",
        cache.status()
    );
    let key = CacheKey::new(
        "quote",
        "_",
        format!("tls-{}", uuid::Uuid::now_v7().simple()),
    );
    let remote = cache.remote();
    remote
        .set(&key, b"over tls".to_vec(), Duration::from_secs(30))
        .await
        .unwrap_or_else(|err| panic!("set over TLS: {err}"));
    let back = remote
        .get(&key)
        .await
        .unwrap_or_else(|err| panic!("get over TLS: {err}"));
    assert_eq!(back.as_deref(), Some(&b"over tls"[..]));
    cancel.cancel();
    tracker.close();
    tracker.wait().await;

    // The TLS port speaks nothing else: a plain redis:// client gets no answer.
    let plain_url = e.redis.replacen("rediss://", "redis://", 1);
    let plain = RedisCache::new(
        &plain_url,
        &RedisCacheConfig {
            tls_ca_file: None,
            ..redis_config(&e.ca)
        },
    )
    .unwrap_or_else(|err| panic!("plain redis cache: {err}"));
    match plain.health().await {
        Ok(()) => panic!("the TLS-only Redis answered a plaintext client"),
        Err(err) => eprintln!("redis plaintext refused as expected: {err}"),
    }

    let wrong = RedisCache::new(&e.redis, &redis_config(&e.wrong_ca))
        .unwrap_or_else(|err| panic!("redis cache with the wrong CA: {err}"));
    match wrong.health().await {
        Ok(()) => panic!("redis accepted a certificate the trusted CA did not sign"),
        Err(err) => assert_certificate_refused("redis with the wrong CA", &err.to_string()),
    }
}

#[tokio::test]
async fn redis_bus_over_verified_tls() {
    let Some(e) = endpoints("redis") else {
        return;
    };
    if !redis_up(&e).await {
        return;
    }
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let mut config = RedisBusConfig::new(e.redis.clone());
    config.stream = format!("ordermon:tls-test:{unique}");
    config.tls_ca_file = Some(e.ca.clone());
    let bus = RedisBus::connect(config.clone())
        .await
        .unwrap_or_else(|err| panic!("redis bus over TLS: {err}"));
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("tls-test", ["#"]))
        .await
        .unwrap_or_else(|err| panic!("subscribe over TLS: {err}"));
    let message = BusMessage {
        id: EventId::generate(),
        topic: "order.filled.alice".to_owned(),
        key: "alice".to_owned(),
        payload: b"{\"over\":\"tls\"}".to_vec(),
        headers: Default::default(),
    };
    bus.publish(std::slice::from_ref(&message))
        .await
        .unwrap_or_else(|err| panic!("publish over TLS: {err}"));
    let delivery = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery over TLS within 10s"))
        .unwrap_or_else(|err| panic!("consume over TLS: {err}"))
        .unwrap_or_else(|| panic!("the subscription ended"));
    assert_eq!(delivery.message, message);
    sub.ack(&delivery)
        .await
        .unwrap_or_else(|err| panic!("ack over TLS: {err}"));

    config.tls_ca_file = Some(e.wrong_ca.clone());
    match tokio::time::timeout(Duration::from_secs(20), RedisBus::connect(config)).await {
        Ok(Ok(_)) => panic!("the redis bus accepted a certificate the trusted CA did not sign"),
        Ok(Err(err)) => assert_certificate_refused("redis bus with the wrong CA", &err.to_string()),
        Err(_) => panic!("the redis bus with the wrong CA neither connected nor failed in 20s"),
    }
}
