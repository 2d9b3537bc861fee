//! OAuth 2.1 for `mcp-auth serve --http --oauth-issuer` (docs/oauth.md): the
//! authorization server's state and rules, so that the HTTP server only speaks the
//! protocol. Each function answers in OAuth's own terms: a JSON object, or
//! `{"error": ..., "error_description": ...}` (RFC 6749 §5.2), never an SQL error
//! for a client's mistake.
//!
//! - `clients`: registration (RFC 7591) and metadata-document clients;
//! - `consent`: what a key may grant, and the authorization code it grants;
//! - `tokens`: the code exchanged (PKCE S256), refresh with rotation (a reused
//!   refresh token or code revokes its family), revocation (RFC 7009).
//!
//! Access tokens are checked with keys, in `keys::validate`.

mod clients;
mod consent;
mod tokens;

use pgrx::JsonB;
use serde_json::{json, Value};

/// An OAuth error answer.
fn error(code: &str, description: impl std::fmt::Display) -> JsonB {
    JsonB(json!({"error": code, "error_description": description.to_string()}))
}

fn ok(value: Value) -> JsonB {
    JsonB(value)
}

/// How long codes and tokens live.
const CODE_SECONDS: i32 = 60;
const ACCESS_SECONDS: i32 = 3600;
const REFRESH_SECONDS: i32 = 30 * 24 * 3600;
