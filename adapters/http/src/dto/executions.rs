//! The OpenAPI schema of `POST /api/v1/executions`: the domain's
//! `ExecutionReport` (a tagged union flattened into one object), described by
//! hand because the domain type carries no schema.

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use super::formats;

/// One report from an external venue gateway, by `type`.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionReportDoc;

fn inline<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

fn variant(kind: &str, extra: &[(&str, Value)], required: &[&str]) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert(
        "type".to_owned(),
        json!({ "type": "string", "enum": [kind] }),
    );
    properties.insert("order_id".to_owned(), inline::<formats::UuidV7>());
    properties.insert("user_id".to_owned(), inline::<formats::UserId>());
    properties.insert(
        "ts_event".to_owned(),
        json!({ "type": "string", "format": "date-time", "description": "when it happened at the venue" }),
    );
    for (k, v) in extra {
        properties.insert((*k).to_owned(), v.clone());
    }
    let mut req = vec!["type", "order_id", "user_id", "ts_event"];
    req.extend_from_slice(required);
    json!({
        "type": "object",
        "title": kind,
        "properties": properties,
        "required": req,
    })
}

fn reason() -> Value {
    json!({ "type": "string", "description": "why" })
}

fn optional<T: PartialSchema>() -> Value {
    json!({ "oneOf": [inline::<T>(), { "type": "null" }] })
}

/// The document's schema as JSON.
fn document() -> Value {
    let liquidity = json!({ "type": "string", "enum": ["maker", "taker", "none"] });
    let commission = json!({
        "type": "object",
        "properties": { "amount": inline::<formats::SignedDecimal>(), "currency": inline::<formats::Currency>() },
        "required": ["amount", "currency"],
    });
    json!({
        "description": "An execution report from an external venue gateway. Fields other \
            than those of its `type` are ignored.",
        "oneOf": [
            variant("accepted", &[("venue_order_id", json!({ "type": ["string", "null"] }))], &[]),
            variant("rejected", &[("reason", reason())], &["reason"]),
            variant("canceled", &[], &[]),
            variant("expired", &[], &[]),
            variant("triggered", &[], &[]),
            variant("updated", &[
                ("quantity", optional::<formats::NonNegativeDecimal>()),
                ("price", optional::<formats::PositiveDecimal>()),
                ("trigger_price", optional::<formats::PositiveDecimal>()),
            ], &[]),
            variant("modify_rejected", &[("reason", reason())], &["reason"]),
            variant("cancel_rejected", &[("reason", reason())], &["reason"]),
            variant("fill", &[
                ("trade_id", inline::<formats::TradeId>()),
                ("quantity", inline::<formats::NonNegativeDecimal>()),
                ("price", inline::<formats::PositiveDecimal>()),
                ("commission", commission),
                ("liquidity_side", liquidity),
            ], &["trade_id", "quantity", "price", "commission", "liquidity_side"]),
        ],
        "discriminator": { "propertyName": "type" },
    })
}

impl PartialSchema for ExecutionReportDoc {
    fn schema() -> RefOr<Schema> {
        serde_json::from_value(document()).unwrap_or_else(|_| RefOr::T(Schema::default()))
    }
}

impl ToSchema for ExecutionReportDoc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ExecutionReport")
    }
}

#[cfg(test)]
mod tests {
    use ordermon_domain::ports::ExecutionReport;

    use super::*;

    #[test]
    fn the_schema_is_what_utoipa_reads_back() {
        let back = serde_json::to_value(ExecutionReportDoc::schema()).expect("serializes");
        assert_eq!(back["oneOf"].as_array().map(Vec::len), Some(9));
    }

    #[test]
    fn every_variant_is_a_report_the_server_reads() {
        let id = ordermon_domain::ids::OrderId::generate();
        let doc = document();
        for v in doc["oneOf"].as_array().expect("variants") {
            let kind = v["properties"]["type"]["enum"][0].as_str().expect("type");
            let mut body = json!({
                "type": kind, "order_id": id.to_string(), "user_id": "alice",
                "ts_event": "2026-01-01T00:00:00Z",
            });
            if v["required"]
                .as_array()
                .expect("req")
                .iter()
                .any(|r| r == "reason")
            {
                body["reason"] = json!("venue said no");
            }
            if kind == "fill" {
                body["trade_id"] = json!("t-1");
                body["quantity"] = json!("1");
                body["price"] = json!("10.5");
                body["commission"] = json!({ "amount": "0.01", "currency": "USD" });
                body["liquidity_side"] = json!("maker");
            }
            let parsed: Result<ExecutionReport, _> = serde_json::from_value(body);
            assert!(parsed.is_ok(), "{kind}: {parsed:?}");
        }
    }
}
