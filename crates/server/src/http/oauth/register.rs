//! Dynamic client registration (RFC 7591), for mcp-remote and hosts before Client ID
//! Metadata Documents. Every client is public (PKCE, no secret); the database caps
//! registrations per address.

use super::{ask, json, oauth_error, peer, status_of, too_many};
use crate::http::State;
use axum::extract::{Request, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

pub async fn register(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let o = state.oauth();
    let ip = peer(request.extensions());
    if !o.requests.allow(ip) {
        return too_many();
    }
    // JSON only: a page's plain-text form post (no CORS preflight) registers nothing.
    let json_body = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_body {
        return oauth_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_client_metadata",
            "Content-Type: must be application/json",
        );
    }
    let Some(bytes) = super::body(&state, request.into_body()).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "The registration must be at most 16 KiB and arrive in time",
        );
    };
    let Ok(Value::Object(meta)) = serde_json::from_slice::<Value>(&bytes) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "The body must be a JSON object of client metadata (RFC 7591)",
        );
    };
    let bad = |rule: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", rule);
    let strings = |name: &str| -> Option<Vec<String>> {
        match meta.get(name) {
            None => Some(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => None,
        }
    };
    let Some(redirect_uris) = strings("redirect_uris").filter(|u| !u.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris: must be a non-empty array of URIs",
        );
    };
    match strings("grant_types") {
        Some(g)
            if g.iter()
                .all(|g| g == "authorization_code" || g == "refresh_token") => {}
        _ => return bad("grant_types: only authorization_code and refresh_token are supported"),
    }
    match strings("response_types") {
        Some(r) if r.iter().all(|r| r == "code") => {}
        _ => return bad("response_types: only code is supported"),
    }
    // A confidential client asking for a secret is registered public all the same
    // (RFC 7591 §3.2.1 lets the server decide): PKCE protects the code.
    let name = match meta.get("client_name") {
        None => "Unnamed client",
        Some(Value::String(n)) => n.as_str(),
        Some(_) => return bad("client_name: must be a string"),
    };
    if name.contains('\0') || redirect_uris.iter().any(|u| u.contains('\0')) {
        return bad("client metadata: must not contain NUL");
    }
    let uris = Value::from(redirect_uris).to_string();
    let answer = ask(
        &state,
        "SELECT mcp_oauth_register_client($1::text,
                    ARRAY(SELECT jsonb_array_elements_text($2::text::jsonb)),
                    $3::text::inet, $4::text::int)::text",
        &[name, &uris, &ip.to_string(), &o.clients_per_ip.to_string()],
    )
    .await;
    match answer {
        Ok(a) if a.get("error").is_none() => json(StatusCode::CREATED, &a),
        Ok(a) => json(status_of(&a), &a),
        Err(r) => r,
    }
}
