//! Extractors whose rejections are problem+json: a JSON body reader that tells
//! unreadable input (400) from well-formed JSON of the wrong shape (422, naming
//! the field), a query-string reader, and parsers for path and query values.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, ProblemField};

/// A JSON request body. Requires `Content-Type: application/json` (or `+json`).
///
/// Rejections: 400 `bad_request` for a missing or wrong content type and for
/// bytes that are not JSON; 413 for a body over the limit; 422
/// `validation_failed` naming the field when the JSON does not fit the type
/// (wrong type, a number in a decimal field, an invalid id, an unknown enum
/// value, a missing or unknown field).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::bad_request(
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("the request body could not be read")
    }
}

/// Parses a JSON document into `T`, mapping errors as [`ApiJson`] documents.
///
/// # Errors
/// 400 for unreadable JSON, 422 naming the field for a shape mismatch.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would also read a struct from an array of
    // its fields in order, which no client means.
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| b != b'{') {
        // Syntax first: a malformed document is 400 whatever its shape.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde::de::IgnoredAny::deserialize(&mut de)
            .and_then(|_| de.end())
            .map_err(|e| json_error("", &e))?;
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(&path, e.inner())
    })?;
    de.end()
        .map_err(|_| ApiError::bad_request("trailing characters after the JSON document"))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON: {}", strip_position(e)))
        }
        Category::Data => {
            let message = strip_position(e);
            let field = if path.is_empty() || path == "." {
                named_field(&message).unwrap_or_else(|| "body".to_owned())
            } else if let Some(inner) = named_field(&message) {
                // An unknown field is already the path's last segment; a
                // missing one is named inside the object at the path.
                let last = path.rsplit('.').next().unwrap_or_default();
                if last == inner {
                    path.to_owned()
                } else {
                    format!("{path}.{inner}")
                }
            } else {
                path.to_owned()
            };
            ApiError::validation(vec![ProblemField {
                field,
                message: tidy(&message),
            }])
        }
    }
}

/// serde_json messages end with ` at line L column C`; clients need the field, not that.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The field a `missing field `x`` or `unknown field `x`` message names.
fn named_field(message: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

/// Makes serde's wording friendlier for the common cases.
fn tidy(message: &str) -> String {
    if (message.starts_with("invalid type: integer")
        || message.starts_with("invalid type: floating point"))
        && message.ends_with("expected a string")
    {
        return "must be a JSON string (decimals are strings, e.g. \"10.50\")".to_owned();
    }
    if message.starts_with("missing field") {
        return "is required".to_owned();
    }
    if message.starts_with("unknown field") {
        return "is not a known field".to_owned();
    }
    message.to_owned()
}

/// A query string. Unknown parameters are refused with 422 naming them;
/// anything else that does not fit is 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(name) = parts.uri.query().and_then(empty_parameter) {
            return Err(ApiError::field(
                name,
                "must not be empty; leave the parameter out for its default",
            ));
        }
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(e) => {
                let text = e.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // The message reads `field: what is wrong` when serde knows the field.
                let located = message
                    .split_once(": ")
                    .filter(|(path, _)| !path.is_empty() && !path.contains(' '))
                    .map(|(path, rest)| (path.to_owned(), rest));
                Err(
                    match located.or_else(|| named_field(message).map(|f| (f, message))) {
                        Some((field, rest)) => ApiError::field(field, tidy(rest)),
                        None => ApiError::bad_request(format!("invalid query string: {message}")),
                    },
                )
            }
        }
    }
}

/// The name of the first parameter of `query` given without a value (`a=` or
/// `a`): every parameter has a default, so an empty one is a client mistake.
pub(crate) fn empty_parameter(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(_, value)| value.is_empty())
        .map(|(name, _)| name.into_owned())
}

/// Parses an optional query value with `FromStr`, naming the field on failure.
///
/// # Errors
/// 422 naming `field`.
pub fn parse_opt<T>(field: &str, value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match value {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ApiError::field(field, e.to_string())),
    }
}

/// Parses an RFC 3339 timestamp from a query value.
///
/// # Errors
/// 422 naming `field`.
pub fn parse_time(
    field: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| ApiError::field(field, "must be an RFC 3339 timestamp")),
    }
}

/// Parses a page size: `default` when absent, otherwise 1..=`max`.
///
/// # Errors
/// 422 naming `limit`.
pub fn parse_limit(value: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => match crate::dto::wire::parse_count(v).and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::field(
                "limit",
                format!("must be an integer from 1 to {max}"),
            )),
        },
    }
}

/// 400 `bad_cursor`.
#[must_use]
pub fn bad_cursor() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_cursor",
        "the cursor is not one this API returned",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    fn err(json: &str) -> ApiError {
        match parse_json::<Body>(json.as_bytes()) {
            Err(e) => e,
            Ok(b) => panic!("parsed {b:?}"),
        }
    }

    #[test]
    fn empty_query_parameters_are_named() {
        assert_eq!(empty_parameter("a=1&b=2"), None);
        assert_eq!(empty_parameter("a=1&&b=2"), None);
        assert_eq!(empty_parameter("a=1&limit="), Some("limit".to_owned()));
        assert_eq!(empty_parameter("flag&a=1"), Some("flag".to_owned()));
        assert_eq!(empty_parameter("us%65r_id="), Some("user_id".to_owned()));
        assert_eq!(empty_parameter("%zz="), Some("%zz".to_owned()));
        assert_eq!(empty_parameter("%e="), Some("%e".to_owned()));
        assert_eq!(empty_parameter("%C3%A9="), Some("é".to_owned()));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_422() {
        for body in ["[null, null]", "[]", "1", "\"x\"", "null", " [1]"] {
            let e = err(body);
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(e.errors[0].field, "body", "{body}");
        }
        assert_eq!(err("[1,").status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn syntax_is_400_shape_is_422() {
        assert_eq!(err("{").status, StatusCode::BAD_REQUEST);
        assert_eq!(err("{\"name\": }").status, StatusCode::BAD_REQUEST);
        assert_eq!(err("{\"name\":\"a\"} x").status, StatusCode::BAD_REQUEST);
        let e = err("{\"name\": 1}");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "name");
        let e = err("{}");
        assert_eq!(e.errors[0].field, "name");
        assert_eq!(e.errors[0].message, "is required");
        let e = err("{\"name\":\"a\",\"zzz\":1}");
        assert_eq!(e.errors[0].field, "zzz");
        let e = err("{\"name\":\"a\",\"inner\":{\"n\":\"x\"}}");
        assert_eq!(e.errors[0].field, "inner.n");
        let e = err("{\"name\":\"a\",\"inner\":{}}");
        assert_eq!(e.errors[0].field, "inner.n");
    }
}
