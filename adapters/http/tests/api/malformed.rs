//! A table of malformed requests: each gets its documented 4xx with a
//! problem+json body and a `code`, and nothing changes.

use axum::body::Body;
use axum::http::{Request, header};
use rstest::rstest;
use serde_json::{Value, json};

use crate::common::{TestApp, assert_problem, limit_buy};

fn order_with(key: &str, value: Value) -> String {
    let mut o = limit_buy("m-1", "10", "10.00");
    o[key] = value;
    o.to_string()
}

fn order_without(key: &str) -> String {
    let mut o = limit_buy("m-1", "10", "10.00");
    o.as_object_mut().unwrap().remove(key);
    o.to_string()
}

fn market_with_price() -> String {
    json!({"client_order_id": "m-1", "instrument_id": "ACME.SIM", "side": "buy", "type": "market",
        "quantity": "1", "price": "10.00", "time_in_force": "ioc"})
    .to_string()
}

const ORDERS: &str = "/api/v1/orders";
const JSON: Option<&str> = Some("application/json");

#[rstest]
#[case::bad_json("POST", ORDERS, JSON, "{".to_owned(), 400, "bad_request", None)]
#[case::not_json("POST", ORDERS, JSON, "hello".to_owned(), 400, "bad_request", None)]
#[case::trailing_garbage("POST", ORDERS, JSON, format!("{} x", limit_buy("m-1", "1", "10.00")), 400, "bad_request", None)]
#[case::empty_body("POST", ORDERS, JSON, String::new(), 400, "bad_request", None)]
#[case::wrong_content_type("POST", ORDERS, Some("text/plain"), limit_buy("m-1", "1", "10.00").to_string(), 400, "bad_request", None)]
#[case::no_content_type("POST", ORDERS, None, limit_buy("m-1", "1", "10.00").to_string(), 400, "bad_request", None)]
#[case::form_content_type("POST", ORDERS, Some("application/x-www-form-urlencoded"), "a=1".to_owned(), 400, "bad_request", None)]
#[case::number_in_quantity("POST", ORDERS, JSON, order_with("quantity", json!(10)), 422, "validation_failed", Some("quantity"))]
#[case::float_in_price("POST", ORDERS, JSON, order_with("price", json!(10.5)), 422, "validation_failed", Some("price"))]
#[case::negative_quantity("POST", ORDERS, JSON, order_with("quantity", json!("-1")), 422, "validation_failed", Some("quantity"))]
#[case::zero_quantity("POST", ORDERS, JSON, order_with("quantity", json!("0")), 422, "validation_failed", Some("quantity"))]
#[case::off_lot_quantity("POST", ORDERS, JSON, order_with("quantity", json!("1.5")), 422, "validation_failed", Some("quantity"))]
#[case::off_tick_price("POST", ORDERS, JSON, order_with("price", json!("10.001")), 422, "validation_failed", Some("price"))]
#[case::negative_price("POST", ORDERS, JSON, order_with("price", json!("-10")), 422, "validation_failed", Some("price"))]
#[case::not_a_decimal("POST", ORDERS, JSON, order_with("quantity", json!("ten")), 422, "validation_failed", Some("quantity"))]
#[case::exponent_decimal("POST", ORDERS, JSON, order_with("quantity", json!("1e3")), 422, "validation_failed", Some("quantity"))]
#[case::too_precise("POST", ORDERS, JSON, order_with("price", json!("10.0000000000000000001")), 422, "validation_failed", Some("price"))]
#[case::unknown_instrument("POST", ORDERS, JSON, order_with("instrument_id", json!("NOPE.SIM")), 422, "validation_failed", Some("instrument_id"))]
#[case::bad_instrument_id("POST", ORDERS, JSON, order_with("instrument_id", json!("nodot")), 422, "validation_failed", Some("instrument_id"))]
#[case::unknown_field("POST", ORDERS, JSON, order_with("leverage", json!("10")), 422, "validation_failed", Some("leverage"))]
#[case::missing_side(
    "POST",
    ORDERS,
    JSON,
    order_without("side"),
    422,
    "validation_failed",
    Some("side")
)]
#[case::missing_quantity(
    "POST",
    ORDERS,
    JSON,
    order_without("quantity"),
    422,
    "validation_failed",
    Some("quantity")
)]
#[case::unknown_side("POST", ORDERS, JSON, order_with("side", json!("hold")), 422, "validation_failed", Some("side"))]
#[case::unknown_type("POST", ORDERS, JSON, order_with("type", json!("iceberg")), 422, "validation_failed", Some("type"))]
#[case::wrong_bool("POST", ORDERS, JSON, order_with("reduce_only", json!("yes")), 422, "validation_failed", Some("reduce_only"))]
#[case::empty_client_order_id("POST", ORDERS, JSON, order_with("client_order_id", json!("")), 422, "validation_failed", Some("client_order_id"))]
#[case::long_client_order_id("POST", ORDERS, JSON, order_with("client_order_id", json!("x".repeat(65))), 422, "validation_failed", Some("client_order_id"))]
#[case::gtd_without_expire_at("POST", ORDERS, JSON, order_with("time_in_force", json!("gtd")), 422, "validation_failed", Some("expire_at"))]
#[case::gtd_in_the_past("POST", ORDERS, JSON, { let mut o = limit_buy("m-1", "1", "10.00"); o["time_in_force"] = json!("gtd"); o["expire_at"] = json!("2001-01-01T00:00:00Z"); o.to_string() }, 422, "validation_failed", Some("expire_at"))]
#[case::expire_at_without_gtd("POST", ORDERS, JSON, order_with("expire_at", json!("2999-01-01T00:00:00Z")), 422, "validation_failed", Some("expire_at"))]
#[case::market_with_price(
    "POST",
    ORDERS,
    JSON,
    market_with_price(),
    422,
    "validation_failed",
    Some("price")
)]
#[case::limit_without_price(
    "POST",
    ORDERS,
    JSON,
    order_without("price"),
    422,
    "validation_failed",
    Some("price")
)]
#[case::stop_limit_without_trigger("POST", ORDERS, JSON, order_with("type", json!("stop_limit")), 422, "validation_failed", Some("trigger_price"))]
#[case::post_only_ioc("POST", ORDERS, JSON, { let mut o = limit_buy("m-1", "1", "10.00"); o["post_only"] = json!(true); o["time_in_force"] = json!("ioc"); o.to_string() }, 422, "validation_failed", Some("post_only"))]
#[case::array_body("POST", ORDERS, JSON, "[]".to_owned(), 422, "validation_failed", None)]
#[case::huge_body("POST", ORDERS, JSON, format!("{{\"client_order_id\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)), 413, "payload_too_large", None)]
#[case::empty_batch("POST", "/api/v1/orders/batch", JSON, json!({"orders": []}).to_string(), 422, "validation_failed", Some("orders"))]
#[case::batch_item_number("POST", "/api/v1/orders/batch", JSON, json!({"orders": [{"quantity": 1}]}).to_string(), 422, "validation_failed", None)]
#[case::bad_cursor(
    "GET",
    "/api/v1/orders?cursor=not-a-cursor",
    None,
    String::new(),
    400,
    "bad_cursor",
    None
)]
#[case::bad_fill_cursor(
    "GET",
    "/api/v1/fills?cursor=abc",
    None,
    String::new(),
    400,
    "bad_cursor",
    None
)]
#[case::limit_zero(
    "GET",
    "/api/v1/orders?limit=0",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("limit")
)]
#[case::limit_too_big(
    "GET",
    "/api/v1/orders?limit=501",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("limit")
)]
#[case::unknown_status(
    "GET",
    "/api/v1/orders?status=open,bogus",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("status")
)]
#[case::bad_from(
    "GET",
    "/api/v1/orders?from=yesterday",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("from")
)]
#[case::unknown_query_param(
    "GET",
    "/api/v1/orders?colour=red",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("colour")
)]
#[case::bad_uuid(
    "GET",
    "/api/v1/orders/not-a-uuid",
    None,
    String::new(),
    404,
    "not_found",
    None
)]
#[case::uuid_v4(
    "GET",
    "/api/v1/orders/1b4e28ba-2fa1-41d2-883f-0016d3cca427",
    None,
    String::new(),
    404,
    "not_found",
    None
)]
#[case::bad_uuid_cancel("POST", "/api/v1/orders/zzz/cancel", JSON, "{}".to_owned(), 404, "not_found", None)]
#[case::modify_number("PATCH", "/api/v1/orders/0190c7a4-8a4e-7000-8000-000000000000", JSON, json!({"price": 1}).to_string(), 422, "validation_failed", Some("price"))]
#[case::unknown_route(
    "GET",
    "/api/v1/nothing-here",
    None,
    String::new(),
    404,
    "not_found",
    None
)]
#[case::method_not_allowed("PUT", ORDERS, JSON, "{}".to_owned(), 405, "method_not_allowed", None)]
#[case::cash_number("POST", "/api/v1/users/alice/cash", JSON, json!({"currency": "USD", "amount": 5, "reason": "x"}).to_string(), 422, "validation_failed", Some("amount"))]
#[case::cash_bad_currency("POST", "/api/v1/users/alice/cash", JSON, json!({"currency": "usd", "amount": "5", "reason": "x"}).to_string(), 422, "validation_failed", Some("currency"))]
#[case::user_bad_id("POST", "/api/v1/users", JSON, json!({"id": "bad id!", "name": "x"}).to_string(), 422, "validation_failed", Some("id"))]
#[case::user_bad_role("POST", "/api/v1/users", JSON, json!({"id": "carol", "name": "x", "role": "root"}).to_string(), 422, "validation_failed", Some("role"))]
#[case::instrument_zero_tick("POST", "/api/v1/instruments", JSON, json!({"id": "Z.SIM", "quote_currency": "USD", "tick_size": "0", "lot_size": "1"}).to_string(), 422, "validation_failed", Some("tick_size"))]
#[case::kill_switch_no_user("POST", "/api/v1/admin/kill-switch", JSON, json!({"scope": "user", "state": "halted", "reason": "x"}).to_string(), 422, "validation_failed", Some("user_id"))]
#[case::kill_switch_bad_state("POST", "/api/v1/admin/kill-switch", JSON, json!({"scope": "global", "state": "off", "reason": "x"}).to_string(), 422, "validation_failed", Some("state"))]
#[case::execution_bad_type("POST", "/api/v1/executions", JSON, json!({"order_id": "0190c7a4-8a4e-7000-8000-000000000000", "user_id": "alice", "type": "teleported", "ts_event": "2024-01-01T00:00:00Z"}).to_string(), 422, "validation_failed", None)]
#[case::events_bad_after(
    "GET",
    "/api/v1/events?after=-3",
    None,
    String::new(),
    422,
    "validation_failed",
    Some("after")
)]
#[tokio::test]
async fn malformed_requests_are_refused(
    #[case] method: &str,
    #[case] uri: &str,
    #[case] content_type: Option<&str>,
    #[case] body: String,
    #[case] status: u16,
    #[case] code: &str,
    #[case] field: Option<&str>,
) {
    let t = TestApp::new().await;
    t.alice().await;
    // Admin acting for alice reaches every endpoint in the table.
    let token = t.admin();
    let uri = if uri.starts_with(ORDERS) && !uri.contains('?') && method == "POST" {
        format!("{uri}?user_id=alice")
    } else {
        uri.to_owned()
    };
    let orders_before = t.order_count().await;
    let total_before = t.usd("alice", "total").await;
    let reserved_before = t.usd("alice", "reserved").await;

    let mut b = Request::builder()
        .method(method)
        .uri(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    let r = t.send(b.body(Body::from(body)).unwrap()).await;
    assert_problem(&r, status, code);
    if let Some(field) = field {
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "expected field {field} in {}",
            r.text
        );
    }
    // Nothing changed.
    assert_eq!(t.order_count().await, orders_before);
    assert_eq!(t.usd("alice", "total").await, total_before);
    assert_eq!(t.usd("alice", "reserved").await, reserved_before);
    assert_eq!(
        t.engine.status().trading_state,
        ordermon_domain::risk::TradingState::Active
    );
}

/// With trace export off, a client's well-formed `traceparent` is still named
/// in the problem body (for a handler's refusal and for one made by a layer);
/// a malformed one, or none, adds nothing.
#[tokio::test]
async fn problem_bodies_name_the_callers_trace() {
    let t = TestApp::new().await;
    t.alice().await;
    let token = t.token("alice", ordermon_domain::user::Role::Trader);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (traceparent, expected) in [
        (Some(format!("00-{trace}-00f067aa0ba902b7-01")), Some(trace)),
        (Some(format!("00-{trace}-0000000000000000-01")), None),
        (Some("not a traceparent".to_owned()), None),
        (None, None),
    ] {
        for (body, status) in [
            (order_with("quantity", json!("-1")), 422),
            ("{".to_owned(), 400),
            (
                format!(
                    "{{\"client_order_id\":\"{}\"}}",
                    "x".repeat(2 * 1024 * 1024)
                ),
                413,
            ),
        ] {
            let mut b = Request::builder()
                .method("POST")
                .uri(ORDERS)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(tp) = &traceparent {
                b = b.header("traceparent", tp);
            }
            let r = t.send(b.body(Body::from(body)).unwrap()).await;
            assert_eq!(r.status.as_u16(), status, "{}", r.text);
            assert_eq!(
                r.body["trace_id"].as_str(),
                expected,
                "{traceparent:?}: {}",
                r.text
            );
        }
    }
}
