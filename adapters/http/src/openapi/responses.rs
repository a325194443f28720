//! The error answers every operation can give, added to the document so that it
//! lists every status the server sends (schemathesis' `status_code_conformance`).
//!
//! Handlers annotate their own success and domain answers (`409` on a duplicate,
//! `404` on an unknown id) with a description of their own; this modifier fills in
//! the rest from what the shared layers do, by the operation's shape:
//!
//! | status | sent by | listed on |
//! |---|---|---|
//! | 400 `bad_request` | extractors: malformed query, JSON syntax, no JSON `Content-Type` | every operation |
//! | 401 `unauthorized` | [`crate::auth`]: missing, invalid, expired or revoked token, unknown or disabled user | operations with a security requirement |
//! | 403 `forbidden` | role checks, another user's resource | operations with a security requirement |
//! | 404 `not_found` | unknown id in the path or unknown `user_id` target | operations with a security requirement |
//! | 409 `conflict` | duplicate ids, versions, states that forbid the change | secured operations that change state |
//! | 413 `payload_too_large` | the body limit | operations with a request body |
//! | 415 `unsupported_media_type` | a body that is not JSON | operations with a request body |
//! | 422 `validation_failed` | values of the right syntax that are not valid | operations with parameters or a body |
//! | 429 `rate_limited` | the per-user and per-address limits, with `Retry-After` | every operation |
//! | 500 `internal` | a server fault (logged with its request id) | every operation |
//! | 503 `unavailable` / `timeout` | a dependency down, a request over its deadline | every operation |

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Type,
};

use crate::error::PROBLEM_JSON;

/// Adds the shared error answers to every operation that lacks them.
#[derive(Debug, Clone, Copy)]
pub(super) struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.put.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (writes, op) in ops {
                if let Some(op) = op {
                    add_errors(op, writes);
                }
            }
        }
    }
}

/// What an operation looks like, for choosing its error answers.
#[derive(Debug, Clone, Copy)]
struct Shape {
    secured: bool,
    body: bool,
    params: bool,
    writes: bool,
}

impl Shape {
    fn of(op: &Operation, writes: bool) -> Self {
        let secured = op
            .security
            .as_ref()
            .is_some_and(|reqs| reqs.iter().any(|r| r != &Default::default()));
        let params = op.parameters.as_ref().is_some_and(|ps| {
            ps.iter()
                .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path)))
        });
        Self {
            secured,
            body: op.request_body.is_some(),
            params,
            writes,
        }
    }

    /// The statuses to list, with their descriptions.
    fn statuses(self) -> Vec<(u16, &'static str)> {
        let mut out = vec![(
            400,
            "`bad_request`: a malformed query string or path, JSON that does not parse, \
             or a body without a JSON `Content-Type`",
        )];
        if self.secured {
            out.push((
                401,
                "`unauthorized`: no token, or one that is invalid, expired, revoked, or \
                 names an unknown or disabled user",
            ));
            out.push((
                403,
                "`forbidden`: the caller's role may not do this, or the resource is \
                 another user's",
            ));
            out.push((
                404,
                "`not_found`: the resource, or the user named by `user_id`, does not exist",
            ));
            if self.writes {
                out.push((
                    409,
                    "`conflict`: a duplicate id, a stale version, or a state that forbids \
                     the change",
                ));
            }
        }
        if self.body {
            out.push((
                413,
                "`payload_too_large`: the body is over the server's limit",
            ));
            out.push((415, "`unsupported_media_type`: the body is not JSON"));
        }
        if self.body || self.params {
            out.push((
                422,
                "`validation_failed`: well-formed but invalid values; `errors` names each field",
            ));
        }
        out.push((
            429,
            "`rate_limited`: over the per-user or per-address request rate; retry after \
             `Retry-After` seconds",
        ));
        out.push((
            500,
            "`internal`: a server fault, logged with the request id",
        ));
        out.push((
            503,
            "`unavailable` or `timeout`: a dependency is down or the request ran past its \
             deadline; retry later",
        ));
        out
    }
}

fn add_errors(op: &mut Operation, writes: bool) {
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        if matches!(p.parameter_in, ParameterIn::Query)
            && let Some(schema) = p.schema.as_mut()
        {
            present(schema);
        }
    }
    let shape = Shape::of(op, writes);
    for (status, description) in shape.statuses() {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(problem(status, description)));
    }
}

/// A query parameter is either absent or has a value: the server refuses
/// `name=` (an empty value) and has no null. Strips `null` from the schema and
/// requires at least one character of a plain string.
fn present(schema: &mut RefOr<Schema>) {
    let RefOr::T(inner) = schema else { return };
    match inner {
        Schema::Object(obj) => {
            if let SchemaType::Array(types) = &obj.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                if kept.len() == 1 {
                    obj.schema_type = SchemaType::Type(kept[0].clone());
                } else {
                    obj.schema_type = SchemaType::Array(kept);
                }
            }
            if obj.schema_type == SchemaType::Type(Type::String) && obj.min_length.is_none() {
                obj.min_length = Some(1);
            }
        }
        Schema::OneOf(one) => {
            one.items.retain(|item| !is_null(item));
            if one.items.len() == 1 {
                let only = one.items.remove(0);
                *schema = only;
                present(schema);
            }
        }
        _ => {}
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// A problem+json response; 429s also document `Retry-After`.
fn problem(status: u16, description: &str) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    if status == 429 {
        let seconds = utoipa::openapi::ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1));
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(seconds))
                .description(Some("whole seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> OpenApi {
        crate::openapi::document()
    }

    #[test]
    fn every_operation_lists_the_shared_errors() {
        let doc = doc();
        let mut seen = 0;
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                seen += 1;
                for status in ["400", "429", "500", "503"] {
                    assert!(
                        op.responses.responses.contains_key(status),
                        "{path} lacks {status}"
                    );
                }
            }
        }
        assert!(seen > 50, "only {seen} operations");
    }

    #[test]
    fn secured_operations_list_401_and_403_and_bodies_413_and_422() {
        let doc = doc();
        let orders = &doc.paths.paths["/api/v1/orders"];
        let submit = orders.post.as_ref().expect("POST /orders");
        for status in ["401", "403", "409", "413", "415", "422"] {
            assert!(submit.responses.responses.contains_key(status), "{status}");
        }
        let live = doc.paths.paths["/health/live"].get.as_ref().expect("live");
        assert!(!live.responses.responses.contains_key("401"));
        assert!(!live.responses.responses.contains_key("422"));
    }

    #[test]
    fn a_handlers_own_description_is_kept() {
        let doc = doc();
        let login = doc.paths.paths["/api/v1/auth/login"]
            .post
            .as_ref()
            .expect("login");
        let RefOr::T(r) = &login.responses.responses["429"] else {
            panic!("429 is inline")
        };
        assert!(r.description.contains("account or the address"));
    }

    #[test]
    fn query_parameters_are_never_null_nor_empty() {
        let doc = doc();
        let mut seen = 0;
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                for p in op.parameters.iter().flatten() {
                    let RefOr::T(p) = p else { continue };
                    if !matches!(p.parameter_in, ParameterIn::Query) {
                        continue;
                    }
                    let json = serde_json::to_string(&p.schema).expect("json");
                    assert!(!json.contains("\"null\""), "{}: {json}", p.name);
                    if let Some(RefOr::T(Schema::Object(o))) = &p.schema
                        && o.schema_type == SchemaType::Type(Type::String)
                    {
                        assert!(o.min_length >= Some(1), "{}", p.name);
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 5, "{seen}");
    }

    #[test]
    fn rate_limited_answers_document_retry_after() {
        let doc = doc();
        let get = doc.paths.paths["/api/v1/orders"]
            .get
            .as_ref()
            .expect("list");
        let RefOr::T(r) = &get.responses.responses["429"] else {
            panic!("429 is inline")
        };
        assert!(r.headers.contains_key("Retry-After"));
    }
}
