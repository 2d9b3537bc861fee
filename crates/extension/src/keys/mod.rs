//! API keys: generation, validation, permission checks and lifecycle.

pub mod generate;
pub mod lifecycle;
pub mod permission;
pub mod validate;
pub mod verified_cache;

use crate::errors;
use serde_json::Value;

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
