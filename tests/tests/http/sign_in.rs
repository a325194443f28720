//! Password sign-in over the real server (peer addresses from the TCP
//! connection): login, the access token on the API, refresh rotation and
//! reuse detection, logout, one answer for every refused sign-in, attempt
//! limits per account and per address with `Retry-After`, and setting
//! passwords (admin only, with the policy). No response carries a secret.

use ordermon_domain::user::Role;
use ordermon_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, spawn};

crate::per_backend!(
    login_refresh_and_logout,
    every_refused_sign_in_looks_the_same,
    attempts_are_limited_per_account,
    attempts_are_limited_per_address,
    passwords_are_set_by_admins_within_the_policy,
);

const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    async fn set_password(&self, token: &str, user: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/api/v1/users/{user}/password"),
            Some(token),
            Some(json!({"password": password})),
        )
        .await
    }

    async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"user_id": user, "password": password})),
        )
        .await
    }

    /// A login's status, `Retry-After` header and body.
    async fn login_raw(&self, user: &str, password: &str) -> (StatusCode, Option<u64>, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"user_id": user, "password": password}))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        (status, retry, resp.json().await.unwrap_or(Value::Null))
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }

    /// A trader `id` with `PASSWORD`.
    async fn signed_up(&self, id: &str) {
        self.trader(id, "1000").await;
        let (s, b) = self.set_password(&self.admin, id, PASSWORD).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

async fn login_refresh_and_logout(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.signed_up("alice").await;
    let (s, first) = app.login("alice", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    let left = first["refresh_expires_in"].as_u64().unwrap();
    assert!((43_190..=43_200).contains(&left), "{first}");
    assert_eq!(
        first["user"],
        json!({"id": "alice", "name": "alice", "role": "trader"})
    );
    let access = text(&first, "access_token");
    let (s, account) = app.get("/api/v1/account", &access).await;
    assert_eq!(s, StatusCode::OK, "{account}");
    assert_eq!(account["user_id"], "alice");
    let (s, me) = app.get("/api/v1/auth/me", &access).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        me,
        json!({"id": "alice", "name": "alice", "role": "trader"})
    );

    // Refresh rotates: new tokens, the old refresh token is spent.
    let (s, second) = app.refresh(&text(&first, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let second_access = text(&second, "access_token");
    assert_eq!(
        app.get("/api/v1/account", &second_access).await.0,
        StatusCode::OK
    );
    // Presenting the spent one again means two holders: the session dies,
    // with the newer refresh token and every access token of it.
    let (s, e) = app.refresh(&text(&first, "refresh_token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["code"], "invalid_refresh_token");
    let (s, _) = app.refresh(&text(&second, "refresh_token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for token in [&access, &second_access] {
        let (s, e) = app.get("/api/v1/account", token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    }

    // Logout: the refresh token fails and the access token is refused at once.
    let (s, third) = app.login("alice", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{third}");
    let access = text(&third, "access_token");
    let (s, _) = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app.get("/api/v1/account", &access).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(
        app.get("/api/v1/auth/me", &access).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app.refresh(&text(&third, "refresh_token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A machine token has no session: logout is a no-op, and it still works.
    let machine = app.token("alice", Role::Trader);
    let (s, _) = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&machine), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/account", &machine).await.0, StatusCode::OK);
    // Garbage refresh tokens are the same 401.
    for bad in ["", "x", "not.a.token"] {
        let (s, e) = app.refresh(bad).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}: {e}");
    }
    app.stop().await;
}

async fn every_refused_sign_in_looks_the_same(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.signed_up("alice").await;
    app.signed_up("dave").await;
    app.trader("carol", "1000").await; // no password
    let (s, b) = app
        .call(
            Method::PATCH,
            "/api/v1/users/dave",
            Some(&app.admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut bodies = Vec::new();
    for (user, password) in [
        ("alice", "the wrong password"),
        ("ghost", PASSWORD),
        ("dave", PASSWORD),
        ("carol", PASSWORD),
    ] {
        let (s, body) = app.login(user, password).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{user}: {body}");
        assert_eq!(body["code"], "invalid_credentials", "{user}");
        assert!(!body.to_string().contains(password), "{body}");
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one answer for all: {bodies:?}"
    );
    app.stop().await;
}

async fn attempts_are_limited_per_account(backend: Backend) {
    // Two a minute (one more every 30 s), so the bucket cannot refill while
    // slow (unoptimised) hashing runs.
    let Some(app) = spawn(backend, |c| {
        c.auth.login_attempts_per_account_per_minute = 2;
    })
    .await
    else {
        return;
    };
    app.signed_up("alice").await;
    app.signed_up("bob").await;
    for _ in 0..2 {
        let (s, _, _) = app.login_raw("alice", "a wrong password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The third within the minute is refused before the password is read.
    let (s, retry, body) = app.login_raw("alice", PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    let retry = retry.expect("a Retry-After header");
    assert!((1..=30).contains(&retry), "one every 30 s, got {retry}");
    assert!(
        text(&body, "detail").contains(&format!("retry after {retry} s")),
        "{body}"
    );
    assert!(!body.to_string().contains(PASSWORD));
    // Another account is not affected.
    let (s, b) = app.login("bob", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.stop().await;
}

async fn attempts_are_limited_per_address(backend: Backend) {
    // Three a minute: one more every 20 s.
    let Some(app) = spawn(backend, |c| {
        c.auth.login_attempts_per_ip_per_minute = 3;
    })
    .await
    else {
        return;
    };
    app.signed_up("alice").await;
    for user in ["alice", "bob", "ghost"] {
        let (s, _, _) = app.login_raw(user, "a wrong password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Every account from this address is refused now, right password or not.
    let (s, retry, body) = app.login_raw("alice", PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!((1..=20).contains(&retry.expect("Retry-After")));
    app.stop().await;
}

async fn passwords_are_set_by_admins_within_the_policy(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let trader = app.trader("alice", "1000").await;
    let viewer = app.token("alice", Role::Viewer);
    for (who, token) in [("trader", &trader), ("viewer", &viewer)] {
        let (s, b) = app.set_password(token, "alice", PASSWORD).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}: {b}");
    }
    let (s, b) = app.set_password(&app.admin, "ghost", PASSWORD).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    for short in ["", "nine char"] {
        let (s, b) = app.set_password(&app.admin, "alice", short).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["errors"][0]["field"], "password", "{b}");
        assert!(short.is_empty() || !b.to_string().contains(short), "{b}");
    }
    let (s, b) = app
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(&app.admin),
            Some(json!({"password": 12345678901_u64})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(!b.to_string().contains("12345678901"), "{b}");

    // Set, sign in; a new password signs that session out at once.
    let (s, _) = app.set_password(&app.admin, "alice", PASSWORD).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, signed) = app.login("alice", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{signed}");
    let access = text(&signed, "access_token");
    let (s, _) = app
        .set_password(&app.admin, "alice", "another long passphrase")
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/account", &access).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&text(&signed, "refresh_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = app.login("alice", "another long passphrase").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.stop().await;
}
