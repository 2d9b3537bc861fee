//! The checks around rmcp's service, in the order a request meets them, each
//! answered as a proper HTTP response (the body read or discarded first, so the
//! client reads the answer, not a reset), with the request's id where it could be
//! read:
//! - 503 while draining; 403 for a Host or an Origin not allowed (every route);
//! - on /mcp: 401 without `Authorization: Bearer`, or with one that is not shaped
//!   like a key (format, checksum): no database work for either;
//! - 413 for a body over the limit, 408 for one that does not arrive in time;
//! - 400 with -32700 for a body that is not JSON, -32600 for one that is not a
//!   request; -32602 for params that do not fit their method;
//! - `notifications/cancelled`: the same key's call with that id is cancelled;
//! - from memory, for the key the request uses (its `_meta.apiKey`, else the
//!   bearer): -32000 while its rate-limit window is full, -32000 for a tool named
//!   in `Mcp-Name` that the database refused it a moment ago, 429 past its requests
//!   in flight;
//! - on the way back, from the handler's report: 401 when the database refused the
//!   bearer key (`error="invalid_token"`), the call's metrics, and what to remember.

use super::keys::Busy;
use super::State;
use crate::jsonrpc::{self, Message, INVALID_PARAMS, REFUSED};
use crate::report::Slot;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use mcp_auth_core::envelope::{ErrorKind, INVALID_KEY, RATE_LIMITED, TOOL_NOT_ALLOWED};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What is read of a body refused before its key is known, to find its id.
const PEEK: usize = 64 * 1024;
/// How long a refused request's body is read (and dropped) before the answer, so
/// that the close after it is not a reset.
const DISCARD_TIME: Duration = Duration::from_secs(2);
/// Request bodies held at once, in all, as a multiple of the largest one.
const BODIES_HELD: usize = 64;

pub struct Gate {
    max_body: usize,
    /// KiB of request bodies that may be held at once, over every request and
    /// connection (HTTP/2 streams included): past it, 503 before a body is read.
    body_budget: tokio::sync::Semaphore,
    read_timeout: Duration,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One request in flight; counted down when dropped.
struct InFlight<'a>(&'a Gate);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Gate {
    pub fn new(max_body: usize, read_timeout: Duration) -> Self {
        Self {
            max_body,
            body_budget: tokio::sync::Semaphore::new(BODIES_HELD * max_body.div_ceil(1024)),
            read_timeout,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// How long a request body may take to arrive.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
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
            tracing::warn!("requests still in flight after {grace:?}; stopping anyway");
        }
    }
}

/// A JSON answer.
fn answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The gate's own JSON-RPC error, for request `id`.
fn refusal(
    status: StatusCode,
    id: Option<&Value>,
    code: i64,
    message: &str,
    kind: Option<ErrorKind>,
) -> Response {
    let data = kind.map(|k| json!({"type": k.as_str()}));
    answer(status, &jsonrpc::error(id, code, message, data))
}

/// 401 with the WWW-Authenticate of RFC 6750; `invalid` when a key was given.
/// With OAuth, it names the resource metadata (RFC 9728) and the scope.
fn unauthorized(state: &State, mut response: Response, invalid: bool) -> Response {
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let value = match &state.oauth {
        Some(o) => HeaderValue::from_str(&o.challenge(invalid)).ok(),
        None => Some(HeaderValue::from_static(if invalid {
            r#"Bearer realm="mcp-auth", error="invalid_token", error_description="Invalid or disabled MCP key""#
        } else {
            r#"Bearer realm="mcp-auth", error_description="An MCP key is required: Authorization: Bearer mcp_...""#
        })),
    };
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 403 for a tool outside an OAuth token's tools (RFC 6750 §3.1); the JSON-RPC
/// refusal stays the body.
fn insufficient_scope(state: &State, mut response: Response) -> Response {
    *response.status_mut() = StatusCode::FORBIDDEN;
    if let Some(v) = state
        .oauth
        .as_ref()
        .and_then(|o| HeaderValue::from_str(&o.insufficient_scope()).ok())
    {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn with_header(mut response: Response, name: header::HeaderName, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

/// The connection closes after this answer (its body was not read to the end).
fn closing(response: Response) -> Response {
    with_header(response, header::CONNECTION, "close")
}

/// Why a body could not be read.
enum Unread {
    TooLarge,
    TimedOut,
    Broken,
}

/// The body, when it is at most `limit` bytes and arrives within `within`.
async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, Unread> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Unread::Broken)?;
            if bytes.len() + chunk.len() > limit {
                return Err(Unread::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or(Err(Unread::TimedOut))
}

/// Reads and drops, beside the answer, up to `limit` bytes of a body refused
/// unread (for at most DISCARD_TIME): the answer goes at once, and the connection
/// (hyper keeps reading while the body is wanted) closes without a reset.
fn discard(body: Body, limit: usize) {
    tokio::spawn(drain(body, limit));
}

async fn drain(body: Body, limit: usize) {
    let drain = async {
        let mut stream = body.into_data_stream();
        let mut seen = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The id of a request refused before its key is known: read from a small body;
/// a larger one is only read and dropped (up to `limit`).
async fn peek_id(request: Request, within: Duration, limit: usize) -> Option<Value> {
    if declared_length(&request).is_some_and(|n| n > PEEK as u64) {
        discard(request.into_body(), limit);
        return None;
    }
    let bytes = read_body(request.into_body(), PEEK, within).await.ok()?;
    jsonrpc::read(&bytes).ok().and_then(|m| m.id)
}

/// A host name as the Host header gives it, without its port.
fn host_name(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// Host and Origin, as `--allow-host` and `--allow-origin` say: a DNS-rebinding
/// page or a foreign browser origin never reaches any route.
fn foreign(headers: &HeaderMap, uri: &axum::http::Uri, state: &State) -> Option<&'static str> {
    // HTTP/2 names the host in `:authority`, HTTP/1.1 in `Host`.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .map(|h| host_name(h.trim()).to_ascii_lowercase());
    if !host.is_some_and(|h| state.hosts.contains(&h)) {
        return Some("host");
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if let (Some(o), Some(_)) = (&state.oauth, origin) {
        // The OAuth API takes no cookie: any page may call it. The consent form
        // posts from the issuer's own origin.
        if super::oauth::is_api_path(uri.path())
            || (uri.path() == "/authorize"
                && origin.is_some_and(|v| v.eq_ignore_ascii_case(&o.origin)))
        {
            return None;
        }
    }
    if let Some(origin) = origin {
        let allowed = state.origins.iter().any(|a| {
            a.eq_ignore_ascii_case(origin)
                || a.strip_suffix(":*").is_some_and(|base| {
                    origin
                        .get(..base.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(base))
                        && origin[base.len()..]
                            .strip_prefix(':')
                            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
                })
        });
        if !allowed {
            return Some("origin");
        }
    }
    None
}

pub async fn check(Extract(state): Extract<Arc<State>>, request: Request, next: Next) -> Response {
    let gate = &state.gate;
    if gate.draining.load(Ordering::Acquire) {
        state.metrics.refused("draining");
        let response = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            REFUSED,
            "The MCP server is shutting down",
            None,
        );
        return closing(with_header(response, header::RETRY_AFTER, "1"));
    }
    if let Some(what) = foreign(request.headers(), request.uri(), &state) {
        state.metrics.refused(what);
        let message = if what == "host" {
            "Forbidden: the Host header names a host this server does not answer to"
        } else {
            "Forbidden: this Origin may not call the server"
        };
        let page = request.uri().path() == "/authorize";
        discard(request.into_body(), gate.max_body);
        if page {
            // A browser shows this: plain text, not a JSON-RPC error.
            let mut response = (StatusCode::FORBIDDEN, format!("{message}.\n")).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return closing(response);
        }
        return closing(refusal(StatusCode::FORBIDDEN, None, REFUSED, message, None));
    }
    let mut request = request;
    if !request.headers().contains_key(header::HOST) {
        // rmcp checks `Host` too: give it the HTTP/2 authority just checked.
        if let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            request.headers_mut().insert(header::HOST, value);
        }
    }
    if request.uri().path() != "/mcp" {
        return next.run(request).await;
    }
    let Some(bearer) = crate::bearer::bearer(request.headers()).map(str::to_owned) else {
        return refuse_bearer(&state, request, "missing_key").await;
    };
    // An OAuth access token (with --oauth-issuer) stands where a key does.
    let token = state.oauth.is_some()
        && mcp_auth_core::token::parse(&bearer) == Some(mcp_auth_core::token::Kind::Access);
    if !token && mcp_auth_core::key::parse(&bearer).is_err() {
        return refuse_bearer(&state, request, "malformed_key").await;
    }
    let declared = declared_length(&request);
    let too_large = || {
        state.metrics.refused("body_too_large");
        closing(refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            jsonrpc::INVALID_REQUEST,
            &format!("The request body is over {} bytes", gate.max_body),
            None,
        ))
    };
    if declared.is_some_and(|n| n > gate.max_body as u64) {
        discard(request.into_body(), 4 * gate.max_body);
        return too_large();
    }
    if request.method() != Method::POST {
        return next.run(request).await; // rmcp answers GET and DELETE (405: no sessions)
    }
    let _in_flight = gate.enter();
    let bearer_digest = mcp_auth_core::key::lookup_digest(&bearer);
    // A tool the database refused this key a moment ago, named in the header:
    // refused before the body is read (only what is needed for the id).
    let named = request
        .headers()
        .get("mcp-name")
        .and_then(|v| v.to_str().ok())
        .filter(|_| {
            request
                .headers()
                .get("mcp-method")
                .is_some_and(|m| m == "tools/call")
        });
    if named.is_some_and(|tool| state.keys.is_denied(&bearer_digest, tool)) {
        state.metrics.refused("permission_error");
        let response = refused_unread(
            state.as_ref(),
            request,
            TOOL_NOT_ALLOWED,
            ErrorKind::Permission,
        )
        .await;
        return closing(if token {
            insufficient_scope(&state, response)
        } else {
            response
        });
    }
    // What this body may hold of the budget: its declared length, or the limit.
    let want = declared.map_or(gate.max_body, |n| n as usize).max(1);
    let Ok(_held) = gate
        .body_budget
        .try_acquire_many(want.div_ceil(1024) as u32)
    else {
        state.metrics.refused("too_many_bodies");
        discard(request.into_body(), gate.max_body);
        let response = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            REFUSED,
            "The server is reading too many request bodies; retry in a second",
            None,
        );
        return closing(with_header(response, header::RETRY_AFTER, "1"));
    };
    let (mut parts, body) = request.into_parts();
    let bytes = match read_body(body, gate.max_body, gate.read_timeout).await {
        Ok(b) => b,
        Err(Unread::TooLarge) => return too_large(),
        Err(Unread::TimedOut) => {
            state.metrics.refused("invalid_request");
            return closing(refusal(
                StatusCode::REQUEST_TIMEOUT,
                None,
                jsonrpc::INVALID_REQUEST,
                "The request body did not arrive in time",
                None,
            ));
        }
        Err(Unread::Broken) => return closing(StatusCode::BAD_REQUEST.into_response()),
    };
    let mut message = match jsonrpc::read(&bytes) {
        Ok(m) => m,
        Err(r) => {
            state.metrics.refused("invalid_request");
            let status = if r.code == INVALID_PARAMS {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            return answer(status, &r.to_value());
        }
    };
    // The key the request uses: its `_meta.apiKey` when it names one, else the
    // bearer; the handshake checks the bearer whatever `_meta` says.
    let handshake = matches!(message.method.as_str(), "initialize" | "server/discover");
    let digest = match &message.api_key {
        Some(Value::String(k)) if !k.is_empty() && !handshake => {
            mcp_auth_core::key::lookup_digest(k)
        }
        _ => bearer_digest.clone(),
    };
    if let Some(id) = &message.cancels {
        // Only a call of the same key, and only a key the database has accepted: no
        // one cancels another's work, and a stranger's cancel would only make
        // PostgreSQL log an error.
        if state.keys.is_known(&digest) {
            state.cancels.cancel(&digest, &id.to_string());
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let _flight = match &message.id {
        Some(_) => {
            let entered = state.keys.enter(&digest, message.method == "tools/call");
            match entered {
                Ok(flight) => match flight.placed().await {
                    Ok(flight) => Some(flight),
                    Err(busy) => return busy_answer(&state, &message, busy),
                },
                Err(busy) => return busy_answer(&state, &message, busy),
            }
        }
        None => None,
    };
    parts.headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let slot = Slot::default();
    parts.extensions.insert(slot.clone());
    // The message as read (one member of each name): rmcp reads what the gate read.
    drop(bytes);
    let body = Body::from(std::mem::take(&mut message.body));
    let response = next.run(Request::from_parts(parts, body)).await;
    let report = slot.take();
    if report.accepted {
        state.keys.accepted(&digest);
    }
    if let Some((outcome, took)) = &report.call {
        state.metrics.call(outcome, *took);
    }
    if let Some(wait) = report.retry_after {
        state.keys.window_full(&digest, wait);
    }
    if let (true, Some(tool)) = (report.denied, &message.tool) {
        state.keys.denied(&digest, tool);
    }
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        state.metrics.refused("body_too_large");
    }
    if report.bearer_refused {
        state.metrics.refused("bad_key");
        return unauthorized(&state, response, true);
    }
    if report.denied && token && digest == bearer_digest {
        return insufficient_scope(&state, response);
    }
    response
}

/// 401 for a request whose bearer is missing or not shaped like a key: no database
/// work, the id echoed when a small body holds one, and the connection closed.
async fn refuse_bearer(state: &State, request: Request, why: &'static str) -> Response {
    state.metrics.refused(why);
    let response = refused_unread(state, request, INVALID_KEY, ErrorKind::Authentication).await;
    closing(unauthorized(state, response, why != "missing_key"))
}

/// A -32000 refusal of a request whose body is not wanted: the id comes from a
/// small body, a larger one is only drained.
async fn refused_unread(
    state: &State,
    request: Request,
    message: &str,
    kind: ErrorKind,
) -> Response {
    let id = peek_id(request, state.gate.read_timeout, state.gate.max_body).await;
    refusal(StatusCode::OK, id.as_ref(), REFUSED, message, Some(kind))
}

/// A key's request refused from memory: its window is full, or its share of
/// requests is in flight.
fn busy_answer(state: &State, message: &Message, busy: Busy) -> Response {
    match busy {
        Busy::Window(wait) => {
            state.metrics.refused("rate_limit_error");
            let ms = wait.as_millis().max(1) as u64;
            let error = jsonrpc::error(
                message.id.as_ref(),
                REFUSED,
                RATE_LIMITED,
                Some(json!({"type": ErrorKind::RateLimit.as_str(), "retry_after_ms": ms})),
            );
            answer(StatusCode::OK, &error)
        }
        Busy::InFlight | Busy::Strangers => {
            state.metrics.refused("too_many_in_flight");
            let message_text = if busy == Busy::InFlight {
                format!(
                    "Too many requests in flight for this key (at most {})",
                    state.keys.per_key()
                )
            } else {
                "Too many requests in flight for keys not yet accepted; retry in a second"
                    .to_string()
            };
            let response = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                message.id.as_ref(),
                REFUSED,
                &message_text,
                Some(ErrorKind::RateLimit),
            );
            with_header(response, header::RETRY_AFTER, "1")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:443"), "::1");
        assert_eq!(host_name("example.com"), "example.com");
    }
}
