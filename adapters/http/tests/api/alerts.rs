//! The alerting endpoints: alerts raised from real events, acknowledged and
//! resolved; silences; rules and overrides; tenant isolation; bad input.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use ordermon_domain::user::Role;
use serde_json::{Value, json};

use crate::common::{Reply, TestApp};

/// Polls `GET path` until `pick` finds something (or fails after 3 s).
async fn eventually(
    app: &TestApp,
    path: &str,
    token: &str,
    pick: impl Fn(&Value) -> Option<Value>,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = app.get(path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if let Some(v) = pick(&r.body) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {path}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find_rule(body: &Value, rule: &str, state: &str) -> Option<Value> {
    body["items"]
        .as_array()?
        .iter()
        .find(|a| a["rule"] == rule && a["state"] == state)
        .cloned()
}

async fn kill(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/admin/kill-switch", &app.admin(), body)
        .await
}

#[tokio::test]
async fn the_global_kill_switch_raises_an_alert_that_can_be_acknowledged_and_resolves_on_release() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let started = Instant::now();
    let r = kill(
        &app,
        json!({"scope": "global", "state": "halted", "reason": "drill"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let alert = eventually(&app, "/api/v1/alerts?state=firing", &admin, |b| {
        find_rule(b, "kill_switch_engaged", "firing")
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["labels"]["rule"], "kill_switch_engaged");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("kill switch")
    );
    assert_eq!(alert["user_id"], Value::Null);
    let id = alert["id"].as_str().unwrap().to_owned();

    // Acknowledged: recorded with who and when.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["acknowledged"], true);
    assert_eq!(r.body["acknowledged_by"], "root");
    assert!(r.body["acknowledged_at"].is_string());
    // Twice is fine (nothing changes).
    let again = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["version"], r.body["version"]);

    // Released: the alert resolves by itself.
    let r = kill(
        &app,
        json!({"scope": "global", "state": "active", "reason": "drill over"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resolved = eventually(
        &app,
        "/api/v1/alerts?rule=kill_switch_engaged&state=resolved",
        &admin,
        |b| find_rule(b, "kill_switch_engaged", "resolved"),
    )
    .await;
    assert_eq!(resolved["id"], id.as_str());
    assert!(resolved["ends_at"].is_string());
    assert_eq!(
        resolved["resolved_by"],
        Value::Null,
        "its condition cleared"
    );
    // A resolved alert cannot be acknowledged or resolved again.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.body["code"], "alert_resolved");
    // Every state change is an event in the log.
    let events = app.get("/api/v1/events?after=0&limit=500", &admin).await;
    let changes = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["event"]["event_type"] == "alert.changed" && e["event"]["aggregate_id"] == id.as_str()
        })
        .count();
    assert_eq!(
        changes, 3,
        "raised, acknowledged, resolved: {}",
        events.text
    );
}

#[tokio::test]
async fn traders_see_only_their_own_alerts() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let alice = app.user("alice", Role::Trader).await;
    let bob = app.user("bob", Role::Trader).await;
    let r = kill(&app, json!({"scope": "user", "user_id": "alice", "state": "halted", "reason": "too many rejects"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let alert = eventually(&app, "/api/v1/alerts", &alice, |b| {
        find_rule(b, "user_kill_switch_engaged", "firing")
    })
    .await;
    assert_eq!(alert["user_id"], "alice");
    let id = alert["id"].as_str().unwrap();
    // Bob sees none of it; the watchdog (a system alert) is the admin's only.
    let r = app.get("/api/v1/alerts", &bob).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "{}", r.text);
    let r = app.get("/api/v1/alerts", &alice).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["user_id"] == "alice"),
        "{}",
        r.text
    );
    assert_eq!(
        app.get(&format!("/api/v1/alerts/{id}"), &bob).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/alerts?user_id=alice", &bob).await.status,
        StatusCode::NOT_FOUND
    );
    // A viewer reads but does not acknowledge.
    let viewer = app.token("alice", Role::Viewer);
    assert_eq!(
        app.get(&format!("/api/v1/alerts/{id}"), &viewer)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The admin sees alice's alert and the always-firing watchdog.
    let all = app.get("/api/v1/alerts?state=firing", &admin).await;
    assert!(
        find_rule(&all.body, "watchdog", "firing").is_some(),
        "{}",
        all.text
    );
    assert!(find_rule(&all.body, "user_kill_switch_engaged", "firing").is_some());
    let only = app
        .get("/api/v1/alerts?label=user_id%3D%22alice%22", &admin)
        .await;
    assert!(
        only.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["labels"]["user_id"] == "alice"),
        "{}",
        only.text
    );
    // Alice resolves it by hand: it stays resolved while the switch still holds.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/resolve"),
            Some(&alice),
            Some(json!({"comment": "known"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "resolved");
    assert_eq!(r.body["resolved_by"], "alice");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = app.get("/api/v1/alerts?state=firing,pending", &alice).await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "not raised again: {}",
        r.text
    );
}

#[tokio::test]
async fn a_refused_execution_report_counts_as_a_reconciliation_mismatch() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let _alice = app.alice().await;
    let unknown = uuid::Uuid::now_v7();
    let r = app
        .post(
            "/api/v1/executions",
            &admin,
            json!({"order_id": unknown, "user_id": "alice", "type": "accepted", "ts_event": chrono::Utc::now()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let alert = eventually(&app, "/api/v1/alerts?user_id=alice", &admin, |b| {
        find_rule(b, "reconciliation_mismatch", "firing")
    })
    .await;
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["value"], "1");
}

#[tokio::test]
async fn silences_are_created_listed_and_expired_and_bad_ones_change_nothing() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let alice = app.user("alice", Role::Trader).await;
    let r = app
        .post("/api/v1/silences", &admin, json!({"matchers": ["rule=\"stale_market_data\"", {"name": "venue", "op": "=~", "value": "SIM|XNAS"}], "duration": "2h", "comment": "feed maintenance"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["matchers"][1]["op"], "=~");
    assert_eq!(r.body["created_by"], "root");
    let id = r.body["id"].as_str().unwrap().to_owned();
    // A trader's silence is limited to their own alerts.
    let r = app
        .post(
            "/api/v1/silences",
            &alice,
            json!({"matchers": ["rule=\"stuck_order\""], "duration": "30m"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user_id"], "alice");
    let mine = r.body["id"].as_str().unwrap().to_owned();
    let list = app.get("/api/v1/silences", &alice).await;
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()], "alice sees her own silence only");
    assert_eq!(
        app.get(&format!("/api/v1/silences/{id}"), &alice)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/silences", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Bad input: 422 naming the field, nothing stored.
    let cases = [
        (
            json!({"matchers": ["rule=~\"((\""], "duration": "1h"}),
            "matchers[0]",
        ),
        (
            json!({"matchers": [{"name": "rule", "op": "~~", "value": "x"}], "duration": "1h"}),
            "matchers[0]",
        ),
        (
            json!({"matchers": ["rule=~\".*\""], "duration": "1h"}),
            "silence",
        ),
        (json!({"matchers": [], "duration": "1h"}), "silence"),
        (
            json!({"matchers": ["rule=\"x\""], "duration": "400d"}),
            "silence",
        ),
        (json!({"matchers": ["rule=\"x\""]}), "ends_at"),
        (
            json!({"matchers": ["rule=\"x\""], "duration": "soon"}),
            "duration",
        ),
        (
            json!({"matchers": (0..17).map(|i| format!("l{i}=\"x\"")).collect::<Vec<_>>(), "duration": "1h"}),
            "matchers",
        ),
        (
            json!({"matchers": ["rule=\"x\""], "duration": "1h", "comment": "x".repeat(1025)}),
            "silence",
        ),
        (
            json!({"matchers": ["rule=\"x\""], "duration": "1h", "mute": true}),
            "mute",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/silences", &admin, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.content_type(), "application/problem+json");
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.text);
    }
    assert_eq!(
        app.get("/api/v1/silences", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Expire: it stays on record, listed with expired=true.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "expired");
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        app.get("/api/v1/silences", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v1/silences?expired=true", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Alice may not expire the admin's silence.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_silence_mutes_matching_alerts() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let _ = app.user("alice", Role::Trader).await;
    let r = app
        .post("/api/v1/silences", &admin, json!({"matchers": ["rule=\"user_kill_switch_engaged\"", "user_id=\"alice\""], "duration": "1h"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let silence = r.body["id"].as_str().unwrap().to_owned();
    let r = kill(
        &app,
        json!({"scope": "user", "user_id": "alice", "state": "halted", "reason": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let alert = eventually(
        &app,
        "/api/v1/alerts?rule=user_kill_switch_engaged",
        &admin,
        |b| find_rule(b, "user_kill_switch_engaged", "firing").filter(|a| a["silenced"] == true),
    )
    .await;
    assert_eq!(alert["silenced_by"][0], silence.as_str());
    // Expiring the silence unmutes it.
    app.call(
        Method::DELETE,
        &format!("/api/v1/silences/{silence}"),
        Some(&admin),
        None,
    )
    .await;
    eventually(
        &app,
        "/api/v1/alerts?rule=user_kill_switch_engaged",
        &admin,
        |b| find_rule(b, "user_kill_switch_engaged", "firing").filter(|a| a["silenced"] == false),
    )
    .await;
}

#[tokio::test]
async fn rules_list_and_per_user_overrides() {
    let app = TestApp::new().await;
    let admin = app.admin();
    let alice = app.user("alice", Role::Trader).await;
    let r = app.get("/api/v1/alert-rules", &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|x| x["name"].as_str().unwrap()).collect();
    for n in [
        "stuck_order",
        "reject_rate_spike",
        "kill_switch_engaged",
        "watchdog",
        "unusual_trading_behaviour",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let rate = items
        .iter()
        .find(|x| x["name"] == "runaway_order_rate")
        .unwrap();
    assert_eq!(rate["threshold"], "20");
    assert_eq!(rate["window"], "10s");

    let path = "/api/v1/alert-rules/runaway_order_rate/overrides/alice";
    let r = app
        .call(
            Method::PUT,
            path,
            Some(&admin),
            Some(json!({"threshold": "50", "for": "5s", "severity": "warning"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["threshold"], "50");
    assert_eq!(r.body["override"]["updated_by"], "root");
    let r = app.get("/api/v1/alert-rules?user_id=alice", &alice).await;
    let rate = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "runaway_order_rate")
        .unwrap()
        .clone();
    assert_eq!(
        (
            rate["threshold"].as_str(),
            rate["for"].as_str(),
            rate["severity"].as_str()
        ),
        (Some("50"), Some("5s"), Some("warning"))
    );
    // Without the user: the rule as configured.
    let r = app.get("/api/v1/alert-rules", &admin).await;
    let rate = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "runaway_order_rate")
        .unwrap()
        .clone();
    assert_eq!(rate["threshold"], "20");

    // Refusals: not an admin, unknown rule or user, bad values, no such setting.
    let refused = [
        (
            Some(alice.clone()),
            path.to_owned(),
            json!({"enabled": false}),
            StatusCode::FORBIDDEN,
        ),
        (
            None,
            "/api/v1/alert-rules/no_such_rule/overrides/alice".to_owned(),
            json!({"enabled": false}),
            StatusCode::NOT_FOUND,
        ),
        (
            None,
            "/api/v1/alert-rules/runaway_order_rate/overrides/nobody".to_owned(),
            json!({"enabled": false}),
            StatusCode::NOT_FOUND,
        ),
        (
            None,
            path.to_owned(),
            json!({"threshold": "lots"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            path.to_owned(),
            json!({"threshold": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            path.to_owned(),
            json!({"for": "5 s"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            path.to_owned(),
            json!({"for": "2d"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            path.to_owned(),
            json!({"severity": "fatal"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            path.to_owned(),
            json!({"thresold": "5"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            "/api/v1/alert-rules/fill_rate_drop/overrides/alice".to_owned(),
            json!({"threshold": "0.2"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            None,
            "/api/v1/alert-rules/dead_letters/overrides/alice".to_owned(),
            json!({"enabled": false}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (token, p, body, status) in refused {
        let t = token.unwrap_or_else(|| admin.clone());
        let r = app
            .call(Method::PUT, &p, Some(&t), Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{p} {body}: {}", r.text);
        assert_eq!(r.content_type(), "application/problem+json");
    }
    // Nothing of that changed the override.
    let r = app.get("/api/v1/alert-rules?user_id=alice", &admin).await;
    let rate = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "runaway_order_rate")
        .unwrap()
        .clone();
    assert_eq!(rate["threshold"], "50");
    assert_eq!(rate["enabled"], true);

    let r = app.call(Method::DELETE, path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.call(Method::DELETE, path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn alert_listing_refuses_bad_filters() {
    let app = TestApp::new().await;
    let admin = app.admin();
    for (q, field) in [
        ("state=burning", "state"),
        ("severity=fatal", "severity"),
        ("label=user_id%3D~%22((%22", "label"),
        ("label=novalue", "label"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nope", "cursor"),
        ("colour=red", "colour"),
        ("rule=a%20b", "rule"),
    ] {
        let r = app.get(&format!("/api/v1/alerts?{q}"), &admin).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{q}: {}", r.text);
    }
    assert_eq!(
        app.get("/api/v1/alerts/not-a-uuid", &admin).await.status,
        StatusCode::NOT_FOUND
    );
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        app.get(&format!("/api/v1/alerts/{unknown}"), &admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{unknown}/ack"),
            Some(&admin),
            Some(json!({"comment": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{unknown}/ack"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Pages: a cursor walks the listing.
    let first = app.get("/api/v1/alerts?limit=1", &admin).await;
    assert_eq!(first.status, StatusCode::OK);
}
