//! The web dashboard: static assets compiled into the binary and served at `/`
//! (the page) and `/ui/…` (its styles and scripts). Nothing is fetched from
//! elsewhere: no CDN, no web fonts. The page signs in through
//! `/api/v1/auth/login` and then lives on the `/api/v1/stream` WebSocket.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles
//! from this origin only, no inline script, connections only back to this
//! origin), `X-Content-Type-Options: nosniff` and an `ETag` so browsers
//! revalidate instead of downloading again.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiState;
use crate::error::ApiError;

/// One embedded file.
#[derive(Debug, Clone, Copy)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $ty:expr) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_str!(concat!("../assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard (the page itself is `index.html`).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/stream.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/vlist.js", JS),
    asset!("js/pages/overview.js", JS),
    asset!("js/pages/orders.js", JS),
    asset!("js/pages/positions.js", JS),
    asset!("js/pages/strategies.js", JS),
    asset!("js/pages/alerts.js", JS),
    asset!("js/pages/users.js", JS),
];

/// The policy every dashboard answer carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes: `/` and `/ui/{*path}`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers, "no-cache")
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers, "no-cache")
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// A weak validator from the file's bytes (FNV-1a; the build fixes the content).
fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(a) = find(path) else {
        return ApiError::not_found("dashboard file").into_response();
    };
    let tag = etag(a.body);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_an_asset_imports_is_embedded() {
        // A module named in an import but missing from ASSETS would 404 in the browser.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in a
                .body
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(spec) = line.split('"').nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    find(&resolved).is_some(),
                    "{} imports {spec} ({resolved}), which is not embedded",
                    a.path
                );
            }
        }
    }

    #[test]
    fn nothing_is_loaded_from_another_origin() {
        for a in ASSETS {
            for needle in ["http://", "https://", "//cdn", "fonts.googleapis"] {
                let hits: Vec<&str> = a
                    .body
                    .lines()
                    .filter(|l| l.contains(needle) && !l.contains("www.w3.org/2000/svg"))
                    .collect();
                assert!(hits.is_empty(), "{} names another origin: {hits:?}", a.path);
            }
        }
    }

    #[test]
    fn etags_differ_by_content() {
        assert_ne!(etag("a"), etag("b"));
        assert_eq!(etag("a"), etag("a"));
    }
}
