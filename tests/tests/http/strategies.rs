//! Strategy ids are unique per user (issue 15): two users may each hold a
//! strategy `mr-1`; one learns nothing of the other's (no 409, no 200), each
//! changes and deletes only its own, and an admin names the owner with
//! `?user_id=`. On every backend, so each store's key and each event log's
//! uniqueness are exercised.

use ordermon_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::spawn;

crate::per_backend!(strategy_ids_are_per_user);

async fn strategy_ids_are_per_user(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    let alice = app.trader("alice", "1000").await;
    let bob = app.trader("bob", "1000").await;
    let body = |name: &str| {
        json!({"id": "mr-1", "type": "price_alert", "name": name,
               "instruments": ["ACME.SIM"], "params": {"level": "100"}})
    };

    let (s, a) = app
        .call(
            Method::POST,
            "/api/v1/strategies",
            Some(&alice),
            Some(body("alice's")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    // Bob's create does not learn that alice's exists: it is created.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/strategies",
            Some(&bob),
            Some(body("bob's")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["user_id"], "bob");
    // A user's own duplicate is still a conflict.
    let (s, again) = app
        .call(
            Method::POST,
            "/api/v1/strategies",
            Some(&bob),
            Some(body("twice")),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");

    // Each reads its own.
    let (s, mine) = app
        .call(Method::GET, "/api/v1/strategies/mr-1", Some(&alice), None)
        .await;
    assert_eq!(
        (s, mine["name"].as_str()),
        (StatusCode::OK, Some("alice's"))
    );
    let (s, mine) = app
        .call(Method::GET, "/api/v1/strategies/mr-1", Some(&bob), None)
        .await;
    assert_eq!((s, mine["name"].as_str()), (StatusCode::OK, Some("bob's")));
    // An admin names the owner; a trader cannot name another user.
    let (s, his) = app
        .call(
            Method::GET,
            "/api/v1/strategies/mr-1?user_id=bob",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!((s, his["name"].as_str()), (StatusCode::OK, Some("bob's")));
    let (s, _) = app
        .call(
            Method::GET,
            "/api/v1/strategies/mr-1?user_id=bob",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Alice's changes and deletion touch only hers.
    let (s, changed) = app
        .call(
            Method::PATCH,
            "/api/v1/strategies/mr-1",
            Some(&alice),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(
        (s, changed["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    let (_, his) = app
        .call(Method::GET, "/api/v1/strategies/mr-1", Some(&bob), None)
        .await;
    assert_eq!(his["status"], "enabled");
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/strategies/mr-1",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(Method::GET, "/api/v1/strategies/mr-1", Some(&alice), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, his) = app
        .call(Method::GET, "/api/v1/strategies/mr-1", Some(&bob), None)
        .await;
    assert_eq!((s, his["name"].as_str()), (StatusCode::OK, Some("bob's")));

    // Both histories are in the event log, each under its owner.
    for (user, token, events) in [("alice", &alice, 3), ("bob", &bob, 1)] {
        let (s, page) = app
            .call(Method::GET, "/api/v1/events?limit=1000", Some(token), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let aggregate = format!("{user}/mr-1");
        let n = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| {
                e["event"]["aggregate_type"] == "strategy"
                    && e["event"]["aggregate_id"] == aggregate.as_str()
            })
            .count();
        assert_eq!(n, events, "{user}'s strategy events");
    }
}
