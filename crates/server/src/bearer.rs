//! `Authorization: Bearer <key>`: how an HTTP request names its key. A leaf, read by
//! the gate (before any work) and by the handler (a request's default key).

use axum::http::{header, HeaderMap};

/// The key of `Authorization: Bearer <key>`, when there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}
