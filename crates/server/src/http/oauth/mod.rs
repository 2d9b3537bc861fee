//! OAuth 2.1 on the HTTP server (`--oauth-issuer`), as the MCP specification's
//! authorization asks: this process is both the protected resource and its
//! authorization server. The user consents with their MCP key on a page served
//! here; the client then holds a token bound to that key, the client, this
//! resource and the tools chosen. The rules and state live in the database
//! (`src/oauth` of the extension); this module speaks the protocol:
//! - `metadata`: RFC 9728 (protected resource) and RFC 8414 (authorization server);
//! - `register`: dynamic client registration (RFC 7591);
//! - `client_document`: Client ID Metadata Documents, fetched with a timeout, a size
//!   cap, and never from a private address (unless `--oauth-allow-private-clients`);
//! - `consent`: `/authorize`, the page that asks for the key (CSRF, clickjacking),
//!   with `ticket` (its first step, signed and carried by the browser);
//! - `token`: `/token` and `/revoke`;
//! - `limiter`: requests and key attempts per address.
//!
//! Without `--oauth-issuer` none of these routes exists and 401s name no metadata.

mod client_document;
mod consent;
mod limiter;
mod metadata;
mod register;
mod ticket;
mod token;

use super::State;
use crate::error::Error;
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::sync::Arc;

/// What `--oauth-*` said, checked.
pub struct Options {
    pub issuer: String,
    /// Client metadata documents may be on private addresses (tests only).
    pub private_clients: bool,
    /// Clients one address may register in a day.
    pub clients_per_ip: u32,
    /// Keys one address may try on the consent page in a minute.
    pub attempts_per_minute: u32,
    /// The host names the server answers to, and the port it listens on (filled
    /// in by `serve`).
    pub own_hosts: Vec<String>,
    pub port: u16,
}

/// The authorization server, as the routes and the gate use it.
pub struct OAuth {
    /// No trailing slash: `https://mcp.example.com`.
    pub issuer: String,
    /// The MCP endpoint, the audience of every token: `{issuer}/mcp`.
    pub resource: String,
    /// The issuer's origin (scheme://host[:port]): the consent form's own.
    pub origin: String,
    /// The issuer's host name, answered to.
    pub host: String,
    secure: bool,
    clients_per_ip: u32,
    consent: consent::Pending,
    /// The consent page's first step, signed (`ticket`).
    tickets: ticket::Tickets,
    /// Key checks on the consent page, per address.
    attempts: limiter::Limiter,
    /// Other OAuth requests (registration, token, revocation, pages), per address.
    requests: limiter::Limiter,
    fetcher: client_document::Fetcher,
    /// Database connections OAuth's requests may hold at once: at most half the
    /// pool, so that /mcp always has the rest whatever the OAuth routes meet.
    db_slots: tokio::sync::Semaphore,
}

/// OAuth requests one address may make in a minute, besides key checks.
const REQUESTS_PER_MINUTE: u32 = 120;

impl OAuth {
    pub fn new(options: Options, pool_size: usize) -> Result<Self, Error> {
        let bad = |rule: &str| Error::Config(format!("--oauth-issuer {}: {rule}", options.issuer));
        let url = url::Url::parse(&options.issuer).map_err(|_| bad("must be an absolute URL"))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("must name a host"))?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1");
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(bad(
                    "must use https (http only on a loopback host, for tests)",
                ))
            }
        }
        if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
            return Err(bad("must have no path, query or fragment"));
        }
        if options.clients_per_ip == 0 || options.attempts_per_minute == 0 {
            return Err(Error::Config(
                "--oauth-clients-per-ip and --oauth-attempts-per-minute: must be at least 1".into(),
            ));
        }
        let origin = url.origin().ascii_serialization();
        let mut own: Vec<(String, u16)> = options
            .own_hosts
            .iter()
            .map(|h| (h.clone(), options.port))
            .collect();
        own.push((host.clone(), url.port_or_known_default().unwrap_or(443)));
        Ok(Self {
            resource: format!("{origin}/mcp"),
            issuer: origin.clone(),
            origin,
            host,
            secure: url.scheme() == "https",
            clients_per_ip: options.clients_per_ip,
            consent: consent::Pending::default(),
            tickets: ticket::Tickets::new(),
            attempts: limiter::Limiter::new(options.attempts_per_minute),
            requests: limiter::Limiter::new(REQUESTS_PER_MINUTE),
            db_slots: tokio::sync::Semaphore::new((pool_size / 2).max(1)),
            fetcher: client_document::Fetcher::new(options.private_clients, own),
        })
    }

    /// The Bearer challenge of a 401 from /mcp (RFC 9728 §5.1, RFC 6750 §3).
    pub fn challenge(&self, invalid: bool) -> String {
        let error = if invalid {
            r#"error="invalid_token", error_description="Invalid, expired or revoked token or MCP key", "#
        } else {
            ""
        };
        format!(
            r#"Bearer realm="mcp-auth", {error}resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="mcp""#,
            self.issuer
        )
    }

    /// The challenge of a 403 for a tool the token does not cover.
    pub fn insufficient_scope(&self) -> String {
        format!(
            r#"Bearer realm="mcp-auth", error="insufficient_scope", error_description="This token does not cover the tool; authorize again and choose it", resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="mcp""#,
            self.issuer
        )
    }
}

/// Paths of the OAuth API: no cookie or ambient authority, so any origin may call
/// them (browser-based clients do), with CORS.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/.well-known/oauth-")
        || path == "/.well-known/openid-configuration"
        || matches!(path, "/token" | "/register" | "/revoke")
}

/// The OAuth routes, added to the app when `--oauth-issuer` is given.
pub fn routes(router: Router<Arc<State>>) -> Router<Arc<State>> {
    router
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route("/register", post(register::register))
        .route("/authorize", get(consent::show).post(consent::submit))
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
}

/// CORS for the API paths: a preflight is answered here, every answer allows any
/// origin (no credentials are ever honoured from a browser).
pub async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !is_api_path(request.uri().path()) {
        return next.run(request).await;
    }
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    response
}

/// A JSON answer that no cache keeps (RFC 6749 §5.1).
fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An OAuth error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// The status an OAuth error from the database is answered with.
fn status_of(answer: &Value) -> StatusCode {
    match answer.get("error").and_then(Value::as_str) {
        None => StatusCode::OK,
        Some("invalid_client") => StatusCode::UNAUTHORIZED,
        Some("too_many_registrations") => StatusCode::TOO_MANY_REQUESTS,
        Some("temporarily_unavailable") => StatusCode::SERVICE_UNAVAILABLE,
        Some(_) => StatusCode::BAD_REQUEST,
    }
}

/// Largest OAuth request body.
const MAX_BODY: usize = 16 * 1024;

/// A body of at most 16 KiB that arrives within the header timeout (as /mcp's
/// must: a client trickling a body holds no connection longer).
async fn body(state: &State, body: Body) -> Option<axum::body::Bytes> {
    let read = axum::body::to_bytes(body, MAX_BODY);
    tokio::time::timeout(state.gate.read_timeout(), read)
        .await
        .ok()?
        .ok()
}

/// Pairs of a form or query, unless a value holds a NUL (which PostgreSQL refuses
/// in text, with an ERROR in its log that a stranger should not be able to cause).
fn pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
    (!pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0')))
    .then_some(pairs)
}

/// A form body (application/x-www-form-urlencoded), read as `body` reads it.
async fn form(state: &State, b: Body) -> Option<Vec<(String, String)>> {
    pairs(&body(state, b).await?)
}

/// The first value of `name` in a form or query, when not empty.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Whether a parameter appears twice (RFC 6749 §3.1: such a request is invalid).
fn repeated(pairs: &[(String, String)], names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|n| pairs.iter().filter(|(k, _)| k == *n).count() > 1)
        .map(|n| n.to_string())
}

/// How long an OAuth request waits for one of its database connections.
const DB_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An answer of the database's OAuth functions, read (on one of OAuth's share of
/// the pool's connections).
async fn ask(state: &State, sql: &str, params: &[&str]) -> Result<Value, Response> {
    let slot = tokio::time::timeout(DB_WAIT, state.oauth().db_slots.acquire()).await;
    let Ok(Ok(_slot)) = slot else {
        return Err(unavailable());
    };
    match state.db.query_text(sql, params).await {
        Ok(Some(text)) => serde_json::from_str(&text).map_err(|_| unavailable()),
        Ok(None) => Ok(Value::Null),
        Err(e) => {
            tracing::warn!("oauth: {}", mcp_auth_core::redact::text(&e.to_string()));
            Err(unavailable())
        }
    }
}

fn unavailable() -> Response {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "The database did not answer; try again",
    )
}

/// The address of a request (its connection's).
fn peer(request_extensions: &axum::http::Extensions) -> std::net::IpAddr {
    request_extensions
        .get::<super::connections::Peer>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0)
}

/// 429 for an address past its share.
fn too_many() -> Response {
    let mut response = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "slow_down",
        "Too many requests from this address; wait a minute",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}
