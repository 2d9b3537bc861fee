//! Redaction for the SQL-written parts of the extension (server logs and health).

use mcp_auth_core::redact;
use pgrx::prelude::*;
use pgrx::JsonB;

/// `p_text` with anything shaped like an MCP key cut to its display prefix.
#[pg_extern(immutable, parallel_safe)]
fn mcp_redact_text(p_text: &str) -> String {
    redact::text(p_text)
}

/// `p_value` with secret-named properties and key-shaped strings redacted.
#[pg_extern(immutable, parallel_safe)]
fn mcp_redact_json(p_value: JsonB) -> JsonB {
    JsonB(redact::json(&p_value.0))
}
