//! `monitor-server user set-password` as a process: the password comes from
//! standard input and never shows in the output; the stored hash then signs
//! the user in; an unknown user, a short password and an empty input fail by
//! name and change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Output, Stdio};
use std::sync::Arc;

use ordermon_application::sign_in::{SignInConfig, SignInError, SignInService};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{ChangeSet, StateChange, SystemClock};
use ordermon_domain::user::User;
use ordermon_tests::{Backend, TestStore, provision};

const PASSWORD: &str = "piped in, never on argv";

fn set_password(t: &TestStore, logs: &std::path::Path, id: &str, stdin: &str) -> Output {
    let db = t.url.clone().expect("a SQL backend");
    let mut child = common::command(
        &db,
        logs,
        common::free_port(),
        &[],
        &["user", "set-password", id],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("monitor-server runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn set_password_reads_stdin_and_the_user_signs_in() {
    let Some(t) = provision(Backend::Sqlite).await else {
        return;
    };
    let logs = std::env::temp_dir().join(format!("ordermon-user-cli-{}", uuid::Uuid::now_v7()));
    let now = chrono::Utc::now();
    let alice: User = serde_json::from_value(serde_json::json!({
        "id": "alice", "name": "Alice", "status": "active", "role": "trader",
        "created_at": now, "updated_at": now, "version": 1,
    }))
    .unwrap();
    t.store
        .commit(ChangeSet {
            changes: vec![StateChange::User {
                user: Box::new(alice),
                expected: 0,
            }],
            ..ChangeSet::default()
        })
        .await
        .unwrap();

    let out = set_password(&t, &logs, "alice", &format!("{PASSWORD}\r\nsecond line\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("password set for `alice`"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));

    // The first line, without its line ending, is the password.
    let service = SignInService::new(
        &t.persistence(),
        Arc::new(SystemClock),
        SignInConfig::default(),
    );
    let here = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let signed = service.login("alice", PASSWORD, here).await.unwrap();
    assert_eq!(signed.user_id, UserId::new("alice").unwrap());
    assert_eq!(
        service
            .login("alice", "second line", here)
            .await
            .unwrap_err(),
        SignInError::InvalidCredentials
    );

    for (id, input, expected) in [
        ("ghost", format!("{PASSWORD}\n"), "user not found"),
        ("alice", "short\n".to_owned(), "at least 10 characters"),
        ("alice", String::new(), "no password on standard input"),
        ("not an id!", format!("{PASSWORD}\n"), "not a valid user id"),
    ] {
        let out = set_password(&t, &logs, id, &input);
        assert!(!out.status.success(), "{id}: {}", text(&out));
        assert!(text(&out).contains(expected), "{id}: {}", text(&out));
        if !input.is_empty() {
            assert!(!text(&out).contains(input.trim_end()), "{}", text(&out));
        }
    }
    // Nothing above changed the password.
    service.login("alice", PASSWORD, here).await.unwrap();
    let _ = std::fs::remove_dir_all(&logs);
}

#[test]
fn token_lifetimes_are_capped() {
    let logs = common::logs_dir("token-ttl");
    let run = |env: &[(&str, String)], ttl: &str| {
        common::command(
            "memory",
            &logs,
            common::free_port(),
            env,
            &["token", "--sub", "svc", "--role", "viewer", "--ttl", ttl],
        )
        .output()
        .expect("monitor-server runs")
    };
    let ok = run(&[], "7d");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
    // Ten years: refused by name, no token printed.
    let long = run(&[], "3650d");
    assert!(!long.status.success());
    assert!(long.stdout.is_empty());
    let err = String::from_utf8_lossy(&long.stderr);
    assert!(err.contains("auth.max_token_ttl"), "{err}");
    // The cap is configurable.
    let capped = run(&[("ORDERMON_AUTH__MAX_TOKEN_TTL", "1h".to_owned())], "2h");
    assert!(!capped.status.success());
    let _ = std::fs::remove_dir_all(&logs);
}

/// `monitor-server token` against a SQL store: a token for a user that does
/// not exist (or is disabled) is refused by name and none is printed;
/// `--create` creates the user, and the server then admits the token with the
/// database's role.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_minted_only_for_users_the_server_admits() {
    let logs = common::logs_dir("token-user");
    let dir = std::env::temp_dir().join(format!("ordermon-token-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/ordermon.db", dir.display());
    let token = |args: &[&str]| {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        common::command(&db, &logs, common::free_port(), &[], &all)
            .output()
            .expect("monitor-server runs")
    };
    let ghost = token(&["--sub", "ops", "--role", "admin"]);
    assert!(!ghost.status.success(), "{}", text(&ghost));
    assert!(ghost.stdout.is_empty(), "{}", text(&ghost));
    assert!(text(&ghost).contains("does not exist"), "{}", text(&ghost));

    let created = token(&["--sub", "ops", "--role", "admin", "--create"]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        text(&created).contains("created user `ops`"),
        "{}",
        text(&created)
    );
    let ops = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    // The user exists now: no --create needed.
    let again = token(&["--sub", "ops", "--role", "viewer"]);
    assert!(again.status.success(), "{}", text(&again));

    let port = common::free_port();
    let _server = common::serve(&db, &logs, port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    common::ready(&http, &base).await;
    let (s, users) = common::call(http.get(format!("{base}/api/v1/users")).bearer_auth(&ops)).await;
    assert_eq!(s, 200, "{users}");
    // Disabled through the API, the user gets no more tokens from the CLI.
    let (s, body) = common::call(
        http.patch(format!("{base}/api/v1/users/ops"))
            .bearer_auth(common::token("root", ordermon_domain::user::Role::Admin))
            .json(&serde_json::json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = common::call(http.get(format!("{base}/api/v1/users")).bearer_auth(&ops)).await;
    assert_eq!(s, 401);
    let disabled = token(&["--sub", "ops", "--role", "admin"]);
    assert!(!disabled.status.success(), "{}", text(&disabled));
    assert!(disabled.stdout.is_empty());
    assert!(text(&disabled).contains("disabled"), "{}", text(&disabled));
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::remove_dir_all(&dir);
}
