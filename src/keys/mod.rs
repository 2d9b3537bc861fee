//! API keys: generation, validation, permission checks and lifecycle.

pub mod generate;
pub mod lifecycle;
pub mod permission;
pub mod status;
pub mod validate;
pub mod verified_cache;

use crate::access::Scope;
use crate::errors;
use crate::spi::{self, col, Statement, UUID};
use pgrx::Uuid;
use serde_json::Value;

/// What other modules need to know of a key.
#[derive(Clone)]
pub struct KeyInfo {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub rate_limit: i32,
}

const KEY_INFO: Statement = Statement {
    sql: "SELECT tenant_id, name, key_prefix, rate_limit FROM @s.mcp_authentication_keys WHERE id = $1",
    args: &[UUID],
    writes: false,
};

/// The key `field` names, if `scope` reaches it; otherwise the same error as for a
/// key that does not exist.
pub fn in_scope(field: &str, key_id: Option<Uuid>, scope: Scope) -> KeyInfo {
    let id = key_id.unwrap_or_else(|| errors::required(field));
    let found = spi::first(&KEY_INFO, &[id.into()], |r| {
        Some(KeyInfo {
            id,
            tenant_id: col(r, 1)?,
            name: col(r, 2)?,
            key_prefix: col(r, 3)?,
            rate_limit: col(r, 4)?,
        })
    });
    match found {
        Some(k) if scope.allows(k.tenant_id, k.id) => k,
        _ => errors::no_such_key(field),
    }
}

/// Reads and checks an `allowed_tools` list: a non-empty JSON array of tool names
/// or patterns. Errors name `field` and the rule.
pub fn tool_patterns(field: &str, value: &Value) -> Vec<String> {
    let Value::Array(items) = value else {
        errors::bad_param(
            field,
            "must be a JSON array of tool names, such as '[\"*\"]' or '[\"fetch_jobs\", \"fetch_*\"]'",
        );
    };
    if items.is_empty() {
        errors::bad_param(
            field,
            "must list at least one tool (use '[\"*\"]' to allow every tool)",
        );
    }
    if items.len() > 500 {
        errors::bad_param(field, "must list at most 500 entries");
    }
    items
        .iter()
        .map(|item| {
            let Value::String(s) = item else {
                errors::bad_param(field, format!("entries must be strings, found {item}"));
            };
            if let Err(e) = mcp_auth_core::tools::check_pattern(s) {
                errors::bad_param(field, e);
            }
            s.clone()
        })
        .collect()
}

/// The patterns stored with a key (already checked when written).
pub fn stored_patterns(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
