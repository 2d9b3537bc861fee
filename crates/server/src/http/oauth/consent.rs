//! `/authorize`: the one page a user sees. A GET checks the request (an unknown
//! client, a redirect URI not registered exactly, no S256 PKCE, another resource:
//! told on the page, never redirected to, since anyone may register a redirect
//! URI), then asks for the MCP key; a POST of the key shows the key's tenant and
//! tools, each ticked; a POST of the choice redirects back with a code (and `iss`,
//! RFC 9207), or with `access_denied`.
//!
//! Until a valid key is entered nothing is kept here: the first form carries a
//! signed ticket (`ticket`). From then on the sign-in and its key are kept (in
//! `Pending`, ten minutes), the key never written back into a page. Each sign-in
//! has its own CSRF token, in its forms and in a SameSite=Strict, HttpOnly cookie;
//! both must match. The page is plain
//! HTML with no script, framed by no one (`frame-ancestors 'none'`), cached by
//! nothing, and key checks are limited per address.

use super::ticket::Ticket;
use super::{ask, field, form, peer, repeated, OAuth};
use crate::http::State;
use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mcp_auth_core::envelope::INVALID_KEY;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How long a sign-in may take, from the first page to the choice.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Sign-ins in progress at once (each costs up to a few KiB until it ends or
/// expires), and from one address.
const MAX_PENDING: usize = 4096;
const MAX_PENDING_PER_ADDRESS: usize = 32;
/// Sign-ins kept for one key at once (a person signs in a few times, not hundreds).
const MAX_PENDING_PER_KEY: usize = 4;
/// The longest `/authorize` query, and `state` (kept with the sign-in).
const MAX_QUERY: usize = 8 * 1024;
const MAX_STATE: usize = 1024;

/// One sign-in in progress.
#[derive(Clone)]
struct SignIn {
    /// The address it started from (sign-ins in progress are capped per address).
    from: std::net::IpAddr,
    client_id: String,
    client_name: String,
    /// Registered by itself (RFC 7591): its name is its own claim.
    self_registered: bool,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    csrf: String,
    started: Instant,
    /// After the key was accepted: the key, what to show of it, its tools (name, title).
    key: Option<String>,
    about: String,
    tools: Vec<(String, String)>,
}

impl SignIn {
    /// The first step's ticket, for a sign-in that has no key yet.
    fn from_ticket(t: Ticket, from: std::net::IpAddr) -> Self {
        SignIn {
            from,
            client_id: t.client_id,
            client_name: t.client_name,
            self_registered: t.self_registered,
            redirect_uri: t.redirect_uri,
            state: t.state,
            challenge: t.challenge,
            csrf: t.csrf,
            started: Instant::now(),
            key: None,
            about: String::new(),
            tools: vec![],
        }
    }
}

#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, SignIn>>);

impl Pending {
    fn start(&self, sign_in: SignIn) -> Option<String> {
        let mut map = self.0.lock().expect("pending lock");
        // Sign-ins never finished go (with any key they hold) as new ones start.
        map.retain(|_, s| s.started.elapsed() < PENDING_FOR);
        let from_there = map.values().filter(|s| s.from == sign_in.from).count();
        let same_key = map.values().filter(|s| s.key == sign_in.key).count();
        if map.len() >= MAX_PENDING
            || from_there >= MAX_PENDING_PER_ADDRESS
            || same_key >= MAX_PENDING_PER_KEY
        {
            return None;
        }
        let id = random(32);
        map.insert(id.clone(), sign_in);
        Some(id)
    }

    fn get(&self, id: &str) -> Option<SignIn> {
        let mut map = self.0.lock().expect("pending lock");
        // Expired sign-ins (and the keys they hold) go whenever the map is touched.
        map.retain(|_, s| s.started.elapsed() < PENDING_FOR);
        map.get(id).cloned()
    }

    /// Updates a sign-in still in progress (one ended meanwhile stays ended).
    fn put(&self, id: &str, sign_in: SignIn) {
        if let Some(kept) = self.0.lock().expect("pending lock").get_mut(id) {
            *kept = sign_in;
        }
    }

    fn end(&self, id: &str) {
        self.0.lock().expect("pending lock").remove(id);
    }
}

fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a redirect URI sends the browser, as the user should read it.
fn redirect_host(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {
            u.host_str().unwrap_or_default().to_string()
        }
        Ok(u) => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => uri.to_string(),
    }
}

/// The CSP source that lets the form's answer redirect to `uri`.
fn form_target(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => String::new(),
    }
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem}\
.err{color:#a40000;font-weight:600}input[type=password]{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}\
button{font:inherit;padding:.45rem 1.1rem;margin:.75rem .5rem 0 0}label{display:block}.muted{color:#555;font-size:.9rem}\
code{background:#f3f3f3;padding:0 .25rem}";

/// A page, with the headers every page of this flow carries.
fn page(
    status: StatusCode,
    title: &str,
    body: &str,
    form_to: Option<&str>,
    cookie: Option<String>,
) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        form_to.unwrap_or("")
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, v);
    }
    response
}

/// A page that ends the flow here (nothing is sent back to the client).
fn stop(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Cannot connect",
        &format!(
            "<h1>This connection cannot go on</h1><p class=err>{}</p>\
             <p class=muted>Close this page and start again from your application.</p>",
            escape(message)
        ),
        None,
        None,
    )
}

/// The browser sent back to the client with `params`, `state` and `iss`.
fn back(o: &OAuth, redirect_uri: &str, state: Option<&str>, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_string();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    if let Some(s) = state {
        query.append_pair("state", s);
    }
    query.append_pair("iss", &o.issuer);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&query.finish());
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn back_with_error(o: &OAuth, s: &SignIn, error: &str, description: &str) -> Response {
    back(
        o,
        &s.redirect_uri,
        s.state.as_deref(),
        &[("error", error), ("error_description", description)],
    )
}

/// A client as the consent page shows it.
struct Client {
    name: String,
    redirect_uris: Vec<String>,
    /// Registered by itself (RFC 7591): its name is only its own claim.
    self_registered: bool,
}

/// The client's name and redirect URIs: a registered client's from the database; a
/// metadata document's from the document itself, as this process read it (within
/// the hour), never from the database, where whoever holds the server's login
/// could have written anything.
async fn client(state: &State, o: &OAuth, client_id: &str) -> Result<Client, String> {
    let unavailable = |_| "The database did not answer; try again".to_string();
    if !super::client_document::is_document_url(client_id) {
        // Only an id shaped as registration makes them is asked for.
        if !mcp_auth_core::token::is_client_id(client_id) {
            return Err("client_id: no such client is registered".into());
        }
        let known = ask(
            state,
            "SELECT mcp_oauth_client($1::text)::text",
            &[client_id],
        )
        .await
        .map_err(unavailable)?;
        if known.get("kind").and_then(Value::as_str) != Some("registered") {
            return Err("client_id: no such client is registered".into());
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        return Ok(Client {
            name: known["client_name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            redirect_uris: strings(&known["redirect_uris"]),
            self_registered: true,
        });
    }
    let doc = o.fetcher.document(client_id).await?;
    Ok(Client {
        name: doc.client_name,
        redirect_uris: doc.redirect_uris,
        self_registered: false,
    })
}

/// Tells the database what a metadata document says, just before a code is granted
/// against it (only then: a document no one consented to leaves no row).
async fn record_document(state: &State, o: &OAuth, client_id: &str) -> Result<(), String> {
    let doc = o.fetcher.document(client_id).await?;
    let uris = Value::from(doc.redirect_uris).to_string();
    let answer = ask(
        state,
        "SELECT mcp_oauth_describe_client($1::text, $2::text,
                    ARRAY(SELECT jsonb_array_elements_text($3::text::jsonb)))::text",
        &[client_id, &doc.client_name, &uris],
    )
    .await
    .map_err(|_| "The database did not answer; try again".to_string())?;
    match answer.get("error_description").and_then(Value::as_str) {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// The sign-in's cookie: named after the start of its CSRF token, so sign-ins in
/// other tabs keep theirs.
fn cookie_name(csrf: &str) -> String {
    format!("mcp_auth_consent_{}", &csrf[..12.min(csrf.len())])
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// GET /authorize.
pub async fn show(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let o = state.oauth();
    if !o.requests.allow(peer(request.extensions())) {
        return stop(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests from this address; wait a minute",
        );
    }
    let query = request.uri().query().unwrap_or("");
    if query.len() > MAX_QUERY {
        return stop(StatusCode::BAD_REQUEST, "The request is over 8 KiB");
    }
    let Some(pairs) = super::pairs(query.as_bytes()) else {
        return stop(StatusCode::BAD_REQUEST, "The request holds a NUL character");
    };
    let names = [
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "scope",
    ];
    if let Some(name) = repeated(&pairs, &names) {
        return stop(
            StatusCode::BAD_REQUEST,
            &format!("{name}: given more than once"),
        );
    }
    let Some(client_id) = field(&pairs, "client_id") else {
        return stop(StatusCode::BAD_REQUEST, "client_id: required");
    };
    let Client {
        name: client_name,
        redirect_uris: uris,
        self_registered,
    } = match client(&state, o, client_id).await {
        Ok(c) => c,
        Err(why) => return stop(StatusCode::BAD_REQUEST, &why),
    };
    let redirect_uri = match field(&pairs, "redirect_uri") {
        Some(r) if uris.iter().any(|u| u == r) => r.to_string(),
        None if uris.len() == 1 => uris[0].clone(),
        _ => {
            return stop(
                StatusCode::BAD_REQUEST,
                "redirect_uri: is not one the client registered (it must match exactly)",
            )
        }
    };
    let ticket = Ticket::new(
        client_id.to_string(),
        client_name,
        self_registered,
        redirect_uri,
        field(&pairs, "state").map(str::to_string),
        field(&pairs, "code_challenge").unwrap_or("").to_string(),
        random(32),
    );
    // Nothing goes back to the redirect URI before the user acts: anyone may
    // register one, and an automatic redirect would make this an open redirector.
    if field(&pairs, "response_type") != Some("code") {
        return stop(StatusCode::BAD_REQUEST, "response_type: must be code");
    }
    if field(&pairs, "code_challenge_method") != Some("S256")
        || !mcp_auth_core::token::is_challenge(&ticket.challenge)
    {
        return stop(
            StatusCode::BAD_REQUEST,
            "code_challenge: PKCE with code_challenge_method=S256 is required",
        );
    }
    if field(&pairs, "resource").is_some_and(|r| r.trim_end_matches('/') != o.resource) {
        return stop(
            StatusCode::BAD_REQUEST,
            "resource: is not this server's MCP endpoint",
        );
    }
    if ticket.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return stop(
            StatusCode::BAD_REQUEST,
            "state: must be at most 1024 characters",
        );
    }
    // Nothing is kept here yet: the browser carries the first step, signed.
    let sealed = o.tickets.seal(&ticket);
    let cookie = format!(
        "{}={}; Path=/authorize; HttpOnly; SameSite=Strict; Max-Age=600{}",
        cookie_name(&ticket.csrf),
        ticket.csrf,
        if o.secure { "; Secure" } else { "" }
    );
    let sign_in = SignIn::from_ticket(ticket, peer(request.extensions()));
    key_page(&sealed, &sign_in, None, Some(cookie))
}

/// The client's name, isolated from the text around it (a right-to-left mark in a
/// name cannot turn the page's words around).
fn named(s: &SignIn) -> String {
    format!("<bdi>{}</bdi>", escape(&s.client_name))
}

/// Who vouches for the client's name: no one for a self-registered one; the host of
/// its metadata document otherwise.
fn claim(s: &SignIn) -> String {
    if s.self_registered {
        " <span class=muted>(a name the application gave itself: go on only if you started this connection)</span>".into()
    } else {
        format!(
            " <span class=muted>(as published by <code>{}</code>)</span>",
            escape(&redirect_host(&s.client_id))
        )
    }
}

/// The first form: the MCP key.
fn key_page(id: &str, s: &SignIn, error: Option<&str>, cookie: Option<String>) -> Response {
    let error_html = error.map_or(String::new(), |e| {
        format!("<p class=err role=alert>{}</p>", escape(e))
    });
    let body = format!(
        "<h1>Connect {client} to your MCP tools</h1>\
         <div class=box><p><strong>{client}</strong>{claim} asks to call tools on your behalf. \
         After you allow it, your browser returns to <code>{host}</code>.</p>\
         {error_html}\
         <form method=post action=/authorize autocomplete=off>\
         <input type=hidden name=request value=\"{id}\"><input type=hidden name=csrf value=\"{csrf}\">\
         <input type=hidden name=action value=check>\
         <label for=api_key>Your MCP key</label>\
         <input type=password id=api_key name=api_key required placeholder=\"mcp_live_...\" autofocus>\
         <p class=muted>The key is checked, not stored here; the application gets a token limited to the key's tenant and the tools you choose next.</p>\
         <button type=submit>Continue</button></form>\
         <form method=post action=/authorize><input type=hidden name=request value=\"{id}\">\
         <input type=hidden name=csrf value=\"{csrf}\"><input type=hidden name=action value=deny>\
         <button type=submit>Cancel</button></form></div>",
        client = named(s),
        claim = claim(s),
        host = escape(&redirect_host(&s.redirect_uri)),
        id = escape(id),
        csrf = escape(&s.csrf),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(
        status,
        "Connect to MCP tools",
        &body,
        Some(&form_target(&s.redirect_uri)),
        cookie,
    )
}

/// The second form: the key's tenant and tools, each ticked.
fn tools_page(id: &str, s: &SignIn, error: Option<&str>) -> Response {
    let error_html = error.map_or(String::new(), |e| {
        format!("<p class=err role=alert>{}</p>", escape(e))
    });
    let tools: String = s
        .tools
        .iter()
        .map(|(name, title)| {
            format!(
                "<label><input type=checkbox name=tool value=\"{n}\" checked> {t} <span class=muted>({n})</span></label>",
                n = escape(name),
                t = escape(title)
            )
        })
        .collect();
    let body = format!(
        "<h1>Allow {client}?</h1><div class=box>\
         <p>{about}</p>{error_html}\
         <form method=post action=/authorize>\
         <input type=hidden name=request value=\"{id}\"><input type=hidden name=csrf value=\"{csrf}\">\
         <fieldset><legend>Tools {client} may call</legend>{tools}</fieldset>\
         <p class=muted>Untick the tools it should not call. Your browser then returns to <code>{host}</code>.</p>\
         <button type=submit name=action value=allow>Allow</button>\
         <button type=submit name=action value=deny>Deny</button></form></div>",
        client = named(s),
        about = s.about,
        host = escape(&redirect_host(&s.redirect_uri)),
        id = escape(id),
        csrf = escape(&s.csrf),
    );
    page(
        StatusCode::OK,
        "Allow access to MCP tools",
        &body,
        Some(&form_target(&s.redirect_uri)),
        None,
    )
}

/// POST /authorize.
pub async fn submit(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let o = state.oauth();
    let ip = peer(request.extensions());
    if !o.requests.allow(ip) {
        return stop(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests from this address; wait a minute",
        );
    }
    let headers = request.headers().clone();
    let Some(pairs) = form(&state, request.into_body()).await else {
        return stop(StatusCode::BAD_REQUEST, "The form could not be read");
    };
    // The first step's ticket (no key yet), or the id of a sign-in kept since its
    // key was accepted.
    let request_field = field(&pairs, "request").unwrap_or("");
    let kept = (request_field.len() == 32)
        .then(|| o.consent.get(request_field))
        .flatten();
    let (id, mut s) = match kept {
        Some(s) => (Some(request_field.to_string()), s),
        None => match o.tickets.open(request_field) {
            Some(t) => (None, SignIn::from_ticket(t, ip)),
            None => {
                return stop(
                    StatusCode::BAD_REQUEST,
                    "This sign-in has expired or is unknown",
                )
            }
        },
    };
    let csrf_ok = field(&pairs, "csrf").is_some_and(|c| same(c, &s.csrf))
        && cookie_of(&headers, &cookie_name(&s.csrf)).is_some_and(|c| same(c, &s.csrf));
    if !csrf_ok {
        return stop(
            StatusCode::FORBIDDEN,
            "The form did not come from this sign-in (its CSRF token does not match); nothing was granted",
        );
    }
    // What the forms carry as `request`.
    let carried = id.clone().unwrap_or_else(|| request_field.to_string());
    match field(&pairs, "action") {
        Some("deny") => {
            if let Some(id) = &id {
                o.consent.end(id);
            }
            back_with_error(o, &s, "access_denied", "The user denied the request")
        }
        Some("check") => {
            if !o.attempts.allow(ip) {
                return key_page(
                    &carried,
                    &s,
                    Some("Too many keys tried from this address; wait a minute"),
                    None,
                );
            }
            let key = field(&pairs, "api_key").unwrap_or("").trim().to_string();
            let answer =
                match ask(&state, "SELECT mcp_oauth_consent($1::text)::text", &[&key]).await {
                    Ok(a) => a,
                    Err(_) => {
                        return key_page(
                            &carried,
                            &s,
                            Some("The database did not answer; try again"),
                            None,
                        )
                    }
                };
            if answer.get("error").is_some() {
                return key_page(&carried, &s, Some(INVALID_KEY), None);
            }
            let text = |k: &str| {
                answer
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let tenant = match answer.get("server_name").and_then(Value::as_str) {
                Some(n) => format!(
                    "{} <span class=muted>({})</span>",
                    escape(n),
                    escape(&text("tenant_id"))
                ),
                None => escape(&text("tenant_id")),
            };
            s.about = format!(
                "Tenant: <strong>{tenant}</strong><br>Key: <strong>{}</strong> <span class=muted>({}…)</span>",
                escape(&text("key_name")),
                escape(&text("key_prefix"))
            );
            s.tools = answer
                .get("tools")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| {
                            Some((
                                t.get("name")?.as_str()?.to_string(),
                                t.get("title")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            s.key = Some(key);
            // Kept from now on (a key was accepted): capped per address and in all.
            let kept_id = match &id {
                Some(id) => {
                    o.consent.put(id, s.clone());
                    id.clone()
                }
                None => match o.consent.start(s.clone()) {
                    Some(new) => new,
                    None => {
                        return stop(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Too many sign-ins are in progress from this address or in all; try again in a few minutes",
                        )
                    }
                },
            };
            tools_page(&kept_id, &s, None)
        }
        Some("allow") => {
            let (Some(id), Some(key)) = (id.as_deref(), s.key.clone()) else {
                return key_page(&carried, &s, Some("Enter your MCP key first"), None);
            };
            let chosen: Vec<String> = s
                .tools
                .iter()
                .filter(|(n, _)| pairs.iter().any(|(k, v)| k == "tool" && v == n))
                .map(|(n, _)| n.clone())
                .collect();
            if chosen.is_empty() {
                return tools_page(id, &s, Some("Choose at least one tool"));
            }
            if super::client_document::is_document_url(&s.client_id) {
                if let Err(why) = record_document(&state, o, &s.client_id).await {
                    o.consent.end(id);
                    return stop(StatusCode::BAD_REQUEST, &why);
                }
            }
            // Every tool kept: the token follows the key's own list.
            let tools = if chosen.len() == s.tools.len() {
                "null".to_string()
            } else {
                Value::from(chosen).to_string()
            };
            let answer = ask(
                &state,
                "SELECT mcp_oauth_authorize($1::text, $2::text, $3::text, $4::text, $5::text,
                            CASE WHEN $6::text::jsonb = 'null' THEN NULL
                                 ELSE ARRAY(SELECT jsonb_array_elements_text($6::text::jsonb)) END)::text",
                &[&key, &s.client_id, &s.redirect_uri, &s.challenge, &o.resource, &tools],
            )
            .await;
            o.consent.end(id);
            match answer {
                Ok(a) => match a.get("code").and_then(Value::as_str) {
                    Some(code) => back(o, &s.redirect_uri, s.state.as_deref(), &[("code", code)]),
                    None => {
                        let e = a
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("server_error");
                        let d = a
                            .get("error_description")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        back_with_error(o, &s, e, d)
                    }
                },
                Err(_) => back_with_error(
                    o,
                    &s,
                    "temporarily_unavailable",
                    "The database did not answer",
                ),
            }
        }
        _ => stop(
            StatusCode::BAD_REQUEST,
            "action: must be check, allow or deny",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_clients_name() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(
            redirect_host("https://claude.ai/api/mcp/auth_callback"),
            "claude.ai"
        );
        assert_eq!(
            form_target("http://127.0.0.1:3000/cb?x=1"),
            "http://127.0.0.1:3000"
        );
        assert_eq!(form_target("cursor://anysphere/cb"), "cursor:");
    }

    #[test]
    fn cookies_are_found_by_name_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mcp_auth_consent_abc=tok; b=2"),
        );
        assert_eq!(cookie_of(&h, "mcp_auth_consent_abc"), Some("tok"));
        assert_eq!(cookie_of(&h, "mcp_auth_consent_ab"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
