//! At least 30 malformed requests, each answered with its documented 4xx and a
//! problem+json body, and nothing changed — on every backend.

use ordermon_tests::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn};

crate::per_backend!(malformed_requests_change_nothing);

fn order() -> Value {
    json!({"client_order_id": "m-1", "instrument_id": "ACME.SIM", "side": "buy", "type": "limit",
           "quantity": "10", "price": "10.00", "time_in_force": "gtc"})
}

fn with(key: &str, value: Value) -> String {
    let mut o = order();
    o[key] = value;
    o.to_string()
}

fn without(key: &str) -> String {
    let mut o = order();
    if let Some(m) = o.as_object_mut() {
        m.remove(key);
    }
    o.to_string()
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    body: Option<String>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body,
        status,
        code,
    }
}

fn cases() -> Vec<Case> {
    let o = "/api/v1/orders";
    let p = Method::POST;
    let v = "validation_failed";
    let mut c = vec![
        case(
            "bad json",
            p.clone(),
            o,
            Some("{".into()),
            400,
            "bad_request",
        ),
        case(
            "not json",
            p.clone(),
            o,
            Some("hello".into()),
            400,
            "bad_request",
        ),
        case(
            "empty body",
            p.clone(),
            o,
            Some(String::new()),
            400,
            "bad_request",
        ),
        case(
            "trailing garbage",
            p.clone(),
            o,
            Some(format!("{} x", order())),
            400,
            "bad_request",
        ),
        case(
            "number in quantity",
            p.clone(),
            o,
            Some(with("quantity", json!(10))),
            422,
            v,
        ),
        case(
            "float in price",
            p.clone(),
            o,
            Some(with("price", json!(10.5))),
            422,
            v,
        ),
        case(
            "negative quantity",
            p.clone(),
            o,
            Some(with("quantity", json!("-1"))),
            422,
            v,
        ),
        case(
            "zero quantity",
            p.clone(),
            o,
            Some(with("quantity", json!("0"))),
            422,
            v,
        ),
        case(
            "off-lot quantity",
            p.clone(),
            o,
            Some(with("quantity", json!("1.5"))),
            422,
            v,
        ),
        case(
            "off-tick price",
            p.clone(),
            o,
            Some(with("price", json!("10.001"))),
            422,
            v,
        ),
        case(
            "negative price",
            p.clone(),
            o,
            Some(with("price", json!("-10"))),
            422,
            v,
        ),
        case(
            "exponent",
            p.clone(),
            o,
            Some(with("quantity", json!("1e3"))),
            422,
            v,
        ),
        case(
            "too precise",
            p.clone(),
            o,
            Some(with("price", json!("10.0000000000000000001"))),
            422,
            v,
        ),
        case(
            "unknown instrument",
            p.clone(),
            o,
            Some(with("instrument_id", json!("NOPE.SIM"))),
            422,
            v,
        ),
        case(
            "instrument without venue",
            p.clone(),
            o,
            Some(with("instrument_id", json!("nodot"))),
            422,
            v,
        ),
        case(
            "unknown field",
            p.clone(),
            o,
            Some(with("leverage", json!("10"))),
            422,
            v,
        ),
        case("missing side", p.clone(), o, Some(without("side")), 422, v),
        case(
            "missing quantity",
            p.clone(),
            o,
            Some(without("quantity")),
            422,
            v,
        ),
        case(
            "unknown side",
            p.clone(),
            o,
            Some(with("side", json!("hold"))),
            422,
            v,
        ),
        case(
            "unknown type",
            p.clone(),
            o,
            Some(with("type", json!("iceberg"))),
            422,
            v,
        ),
        case(
            "empty client order id",
            p.clone(),
            o,
            Some(with("client_order_id", json!(""))),
            422,
            v,
        ),
        case(
            "65-char client order id",
            p.clone(),
            o,
            Some(with("client_order_id", json!("x".repeat(65)))),
            422,
            v,
        ),
        case(
            "gtd without expire_at",
            p.clone(),
            o,
            Some(with("time_in_force", json!("gtd"))),
            422,
            v,
        ),
        case(
            "limit without price",
            p.clone(),
            o,
            Some(without("price")),
            422,
            v,
        ),
        case(
            "huge quantity",
            p.clone(),
            o,
            Some(with("quantity", json!("1".repeat(40)))),
            422,
            v,
        ),
        case(
            "bad cursor",
            Method::GET,
            "/api/v1/orders?cursor=not-a-cursor",
            None,
            400,
            "bad_cursor",
        ),
        case(
            "limit out of range",
            Method::GET,
            "/api/v1/orders?limit=100000",
            None,
            422,
            v,
        ),
        case(
            "unknown status filter",
            Method::GET,
            "/api/v1/orders?status=sleeping",
            None,
            422,
            v,
        ),
        case(
            "non-uuid order id",
            Method::GET,
            "/api/v1/orders/12345",
            None,
            404,
            "not_found",
        ),
        case(
            "unknown order id",
            Method::GET,
            "/api/v1/orders/0190f0f0-0000-7000-8000-000000000000",
            None,
            404,
            "not_found",
        ),
        case(
            "modify with nothing",
            Method::PATCH,
            "/api/v1/orders/0190f0f0-0000-7000-8000-000000000000",
            Some("{}".into()),
            404,
            "not_found",
        ),
        case(
            "unknown route",
            Method::GET,
            "/api/v1/nothing-here",
            None,
            404,
            "not_found",
        ),
        case(
            "cash with a number",
            p.clone(),
            "/api/v1/users/alice/cash",
            Some(json!({"currency": "USD", "amount": 5, "reason": "x"}).to_string()),
            403,
            "forbidden",
        ),
    ];
    c.push(Case {
        name: "wrong content type",
        method: p.clone(),
        path: o.to_owned(),
        content_type: Some("text/plain"),
        body: Some(order().to_string()),
        status: 400,
        code: "bad_request",
    });
    c.push(Case {
        name: "huge body",
        method: p,
        path: o.to_owned(),
        content_type: Some("application/json"),
        body: Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(3 * 1024 * 1024))),
        status: 413,
        code: "payload_too_large",
    });
    c
}

async fn snapshot(app: &TestApp, token: &str) -> (Value, Value) {
    let (_, orders) = app.get("/api/v1/orders?limit=500", token).await;
    (orders["items"].clone(), app.usd(token).await)
}

async fn malformed_requests_change_nothing(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    let alice = app.trader("alice", "1000").await;
    app.limit(&alice, "existing", "buy", "1", "10.00").await;
    let before = snapshot(&app, &alice).await;
    let all = cases();
    assert!(all.len() >= 30);
    for c in all {
        // A fresh client per case: the server may close a connection after 413.
        let mut req = reqwest::Client::new()
            .request(c.method.clone(), format!("{}{}", app.base, c.path))
            .bearer_auth(&alice);
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = c.body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert!(
            ct.starts_with("application/problem+json"),
            "{}: content-type {ct}",
            c.name
        );
        assert_eq!(body["code"], c.code, "{}: {body}", c.name);
        assert_eq!(body["status"], c.status, "{}", c.name);
        assert!(
            body["title"].is_string() && body["type"].is_string(),
            "{}: {body}",
            c.name
        );
        if c.status == 422 {
            assert!(
                body["errors"].as_array().is_some_and(|e| !e.is_empty()),
                "{}: per-field errors {body}",
                c.name
            );
        }
    }
    assert_eq!(snapshot(&app, &alice).await, before, "state unchanged");
    app.stop().await;
}
