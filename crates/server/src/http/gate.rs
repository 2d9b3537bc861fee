//! The checks around rmcp's service, in the order a request meets them: 503 while
//! draining; 401 without `Authorization: Bearer` (`WWW-Authenticate: Bearer`, no
//! JSON-RPC body needed); 413 for a declared body over the limit, before it is read
//! (rmcp refuses a streamed one past it the same way); 429 past the key's requests
//! in flight; and, on the way back, 401 when the database refused the key, with the
//! JSON-RPC error the stdio server sends.

use super::State;
use axum::body::Body;
use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcp_auth_core::envelope::INVALID_KEY;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A JSON-RPC answer refusing a request that has no id the server could read.
fn refusal_body(code: i64, message: &str, kind: Option<&str>) -> Body {
    let mut error = json!({"code": code, "message": message});
    if let Some(kind) = kind {
        error["data"] = json!({"type": kind});
    }
    Body::from(json!({"jsonrpc": "2.0", "id": null, "error": error}).to_string())
}

fn answer(status: StatusCode, body: Body) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn unauthorized(body: Body, invalid: bool) -> Response {
    let mut response = answer(StatusCode::UNAUTHORIZED, body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(if invalid {
            r#"Bearer realm="mcp-auth", error="invalid_token""#
        } else {
            r#"Bearer realm="mcp-auth""#
        }),
    );
    response
}

/// The key of `Authorization: Bearer <key>`, when there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

pub struct Gate {
    max_body: usize,
    per_key: usize,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Requests in flight per key, by the key's SHA-256 (never the key itself); a
    /// key leaves the map when its last request ends.
    keys: Mutex<HashMap<String, usize>>,
}

/// One request in flight, of one key; counted down when dropped.
struct Flight<'a> {
    gate: &'a Gate,
    key: String,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut keys = self.gate.keys.lock().expect("gate lock");
        if let Some(n) = keys.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                keys.remove(&self.key);
            }
        }
        drop(keys);
        if self.gate.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gate.idle.notify_waiters();
        }
    }
}

impl Gate {
    pub fn new(max_body: usize, per_key: usize) -> Self {
        Self {
            max_body,
            per_key,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn enter(&self, key: &str) -> Option<Flight<'_>> {
        let digest = mcp_auth_core::key::lookup_digest(key);
        let mut keys = self.keys.lock().expect("gate lock");
        let n = keys.entry(digest.clone()).or_insert(0);
        if *n >= self.per_key {
            return None;
        }
        *n += 1;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(Flight {
            gate: self,
            key: digest,
        })
    }

    /// From now on every request gets 503; returns when none is in flight, or
    /// after `grace`.
    pub async fn drain(&self, grace: Duration) {
        self.draining.store(true, Ordering::Release);
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            eprintln!("mcp-auth: requests still in flight after {grace:?}; stopping anyway");
        }
    }
}

pub async fn check(Extract(state): Extract<Arc<State>>, request: Request, next: Next) -> Response {
    let gate = &state.gate;
    if gate.draining.load(Ordering::Acquire) {
        state.metrics.refused("draining");
        let mut response = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            refusal_body(-32000, "The MCP server is shutting down", None),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    if request.uri().path() != "/mcp" {
        return next.run(request).await;
    }
    let Some(key) = bearer(request.headers()).map(str::to_owned) else {
        state.metrics.refused("missing_key");
        return unauthorized(
            refusal_body(-32000, INVALID_KEY, Some("authentication_error")),
            false,
        );
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gate.max_body as u64) {
        state.metrics.refused("body_too_large");
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            refusal_body(
                -32600,
                &format!("The request body is over {} bytes", gate.max_body),
                None,
            ),
        );
    }
    let Some(_flight) = gate.enter(&key) else {
        state.metrics.refused("too_many_in_flight");
        // Read the (bounded) body first: a response sent over an unread body makes
        // the connection close with data pending, which the client sees as a reset.
        let _ = axum::body::to_bytes(request.into_body(), gate.max_body).await;
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            refusal_body(
                -32000,
                &format!(
                    "Too many requests in flight for this key (at most {})",
                    gate.per_key
                ),
                Some("rate_limit_error"),
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let response = next.run(request).await;
    match response.status() {
        StatusCode::FORBIDDEN => state.metrics.refused("origin"),
        StatusCode::PAYLOAD_TOO_LARGE => state.metrics.refused("body_too_large"),
        _ => {}
    }
    refused_key_is_401(response, &state).await
}

/// A JSON answer whose error says the database refused the key becomes a 401; its
/// body stays as it is (the stdio server's JSON-RPC error).
async fn refused_key_is_401(response: Response, state: &State) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() != StatusCode::OK || !json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let refused = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .is_some_and(|v| v["error"]["data"]["type"] == "authentication_error");
    if refused {
        state.metrics.refused("bad_key");
        let mut answer = unauthorized(Body::from(bytes), true);
        for (name, value) in parts.headers.iter() {
            if name != header::CONTENT_LENGTH && !answer.headers().contains_key(name) {
                answer.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return answer;
    }
    Response::from_parts(parts, Body::from(bytes))
}

pub async fn healthz(Extract(state): Extract<Arc<State>>) -> Response {
    let version = state
        .db
        .query_text(
            "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'mcp_auth'",
            &[],
        )
        .await;
    let (status, body) = match version {
        Ok(Some(v)) => (
            StatusCode::OK,
            json!({"status": "ok", "database": "reachable", "mcp_auth": v}),
        ),
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": "reachable", "mcp_auth": null}),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": "unreachable",
                   "error": mcp_auth_core::redact::text(&e.to_string())}),
        ),
    };
    answer(status, Body::from(body.to_string()))
}

pub async fn metrics(Extract(state): Extract<Arc<State>>) -> Response {
    let text = state
        .metrics
        .render(state.db.in_use(), state.db.pool_size());
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
