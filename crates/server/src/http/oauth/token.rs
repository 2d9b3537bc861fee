//! `/token` (RFC 6749 §4.1.3 and §6, public clients with PKCE) and `/revoke`
//! (RFC 7009). The database judges the grant; this only reads the form, checks the
//! audience against this server's resource, and answers with OAuth's statuses.

use super::{ask, field, form, json, oauth_error, peer, repeated, status_of, too_many};
use crate::http::State;
use axum::extract::{Request, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::Arc;

/// The client_id of a request: the form's, or the user of HTTP Basic (a client
/// registered public may still send it that way, with an empty secret).
fn client_id(headers: &axum::http::HeaderMap, pairs: &[(String, String)]) -> Option<String> {
    if let Some(id) = field(pairs, "client_id") {
        return Some(id.to_string());
    }
    let basic = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
    let (user, _) = decoded.split_once(':')?;
    let user: String = form_urlencoded::parse(format!("u={user}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!user.is_empty() && !user.contains('\0')).then_some(user)
}

/// A POSTed form and its headers, within the address's share of requests.
async fn posted(
    state: &State,
    request: Request,
) -> Result<(axum::http::HeaderMap, Vec<(String, String)>), Response> {
    if !state.oauth().requests.allow(peer(request.extensions())) {
        return Err(too_many());
    }
    let headers = request.headers().clone();
    match form(state, request.into_body()).await {
        Some(pairs) => Ok((headers, pairs)),
        None => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be a form of at most 16 KiB, without NUL, sent in time",
        )),
    }
}

pub async fn token(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let o = state.oauth();
    let (headers, pairs) = match posted(&state, request).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let names = [
        "grant_type",
        "code",
        "code_verifier",
        "redirect_uri",
        "client_id",
        "refresh_token",
        "resource",
    ];
    if let Some(name) = repeated(&pairs, &names) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{name}: given more than once"),
        );
    }
    let Some(client) = client_id(&headers, &pairs) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id: required",
        );
    };
    if field(&pairs, "resource").is_some_and(|r| r.trim_end_matches('/') != o.resource) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource: is not this server's MCP endpoint",
        );
    }
    let grant = field(&pairs, "grant_type").unwrap_or("");
    let secret = match grant {
        "authorization_code" => field(&pairs, "code"),
        "refresh_token" => field(&pairs, "refresh_token"),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type: must be authorization_code or refresh_token",
            )
        }
    };
    let Some(secret) = secret else {
        let what = if grant == "refresh_token" {
            "refresh_token"
        } else {
            "code"
        };
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{what}: required"),
        );
    };
    // A code or refresh token not even shaped like one (length, prefix, checksum)
    // is refused here, with no database work.
    use mcp_auth_core::token::{parse, Kind};
    let kind = if grant == "refresh_token" {
        Kind::Refresh
    } else {
        Kind::Code
    };
    if parse(secret) != Some(kind) {
        let what = if kind == Kind::Refresh {
            "refresh_token"
        } else {
            "code"
        };
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("{what}: unknown"),
        );
    }
    let verifier = field(&pairs, "code_verifier").unwrap_or("");
    let redirect_uri = field(&pairs, "redirect_uri").unwrap_or("");
    // The audience is always this server's: a grant made for another resource is refused.
    let answer = ask(
        &state,
        "SELECT mcp_oauth_token($1::text, $2::text, $3::text, NULLIF($4::text, ''),
                                NULLIF($5::text, ''), $6::text)::text",
        &[grant, secret, &client, verifier, redirect_uri, &o.resource],
    )
    .await;
    match answer {
        Ok(a) => json(status_of(&a), &a),
        Err(r) => r,
    }
}

pub async fn revoke(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let (headers, pairs) = match posted(&state, request).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let Some(token) = field(&pairs, "token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token: required",
        );
    };
    let Some(client) = client_id(&headers, &pairs) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id: required",
        );
    };
    // Nothing shaped like a token: nothing to revoke (RFC 7009 §2.2: still 200).
    if !matches!(
        mcp_auth_core::token::parse(token),
        Some(mcp_auth_core::token::Kind::Access | mcp_auth_core::token::Kind::Refresh)
    ) {
        return StatusCode::OK.into_response();
    }
    match ask(
        &state,
        "SELECT to_jsonb(mcp_oauth_revoke($1::text, $2::text))::text",
        &[token, &client],
    )
    .await
    {
        // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
        Ok(_) => StatusCode::OK.into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_name_the_client() {
        let mut h = axum::http::HeaderMap::new();
        // "mcp_client_abc:" in base64
        h.insert(
            header::AUTHORIZATION,
            "Basic bWNwX2NsaWVudF9hYmM6".parse().unwrap(),
        );
        assert_eq!(client_id(&h, &[]), Some("mcp_client_abc".into()));
        let form = vec![("client_id".to_string(), "x".to_string())];
        assert_eq!(client_id(&h, &form), Some("x".into()));
    }
}
