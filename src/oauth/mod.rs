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

use crate::spi::{self, Statement, TEXT};
use pgrx::JsonB;
use serde_json::{json, Value};

/// An OAuth error answer.
fn error(code: &str, description: impl std::fmt::Display) -> JsonB {
    JsonB(json!({"error": code, "error_description": description.to_string()}))
}

fn ok(value: Value) -> JsonB {
    JsonB(value)
}

const LOCK_TIMEOUT: Statement = Statement {
    sql: "SELECT pg_catalog.current_setting('lock_timeout')",
    args: &[],
    writes: false,
};
const SET_LOCK_TIMEOUT: Statement = Statement {
    sql: "SELECT pg_catalog.set_config('lock_timeout', $1, true)",
    args: &[TEXT],
    writes: true,
};

/// Runs `f` waiting at most 10 ms for any row lock, then puts the caller's
/// lock_timeout back. A tenant's admin can hold its own tenant's token rows in an
/// open transaction; a grant that meets one gives up at once (the server tells the
/// client to try again) instead of holding a pool connection while it waits.
fn bounded<R>(f: impl FnOnce() -> R) -> R {
    let before: String = spi::one(&LOCK_TIMEOUT, &[]).unwrap_or_else(|| "0".into());
    spi::one::<String>(&SET_LOCK_TIMEOUT, &["10ms".into()]);
    let out = f();
    spi::one::<String>(&SET_LOCK_TIMEOUT, &[before.as_str().into()]);
    out
}

/// How long codes and tokens live.
const CODE_SECONDS: i32 = 60;
const ACCESS_SECONDS: i32 = 3600;
const REFRESH_SECONDS: i32 = 30 * 24 * 3600;
