//! `check_mcp_tool_permission`, and the allowed_tools check shared with the
//! table's update trigger.

use crate::roles::{self, Caller};
use crate::spi::{self, col, Statement, UUID};
use crate::tenant;
use mcp_auth_core::tools;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

const KEY_TOOLS: Statement = Statement {
    sql: "SELECT tenant_id, allowed_tools
            FROM @s.mcp_authentication_keys
           WHERE id = $1 AND enabled AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > pg_catalog.now())",
    args: &[UUID],
    writes: false,
};

/// True when `tool` is allowed for the usable key `key_id`, seen from the caller:
/// only superusers may ask about keys outside the current tenant.
pub fn key_allows(key_id: Uuid, tool: &str) -> bool {
    let Some((tenant_id, patterns)) = spi::first(&KEY_TOOLS, &[key_id.into()], |r| {
        Some((col::<Uuid>(r, 1)?, col::<JsonB>(r, 2)?.0))
    }) else {
        return false;
    };
    if roles::caller() != Caller::Operator
        && tenant::current().map(|c| c.tenant_id) != Some(tenant_id)
    {
        return false;
    }
    // A key holder (mcp_client) may ask only about the key it validated.
    if roles::caller() == Caller::Other && tenant::key_context().map(|k| k.key_id) != Some(key_id) {
        return false;
    }
    tools::allows(&super::stored_patterns(&patterns), tool)
}

/// Whether the key may call the tool: `["*"]` allows all, otherwise exact names and
/// `prefix*` patterns. Never NULL: an unknown, disabled, expired or foreign key gives false.
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn check_mcp_tool_permission(p_key_id: Option<Uuid>, p_tool_name: Option<&str>) -> bool {
    match (p_key_id, p_tool_name) {
        (Some(key_id), Some(tool)) => key_allows(key_id, tool),
        _ => false,
    }
}

/// Raises a clear error naming `p_field` unless `p_allowed_tools` is a valid list.
#[pg_extern(immutable, parallel_safe)]
fn mcp_check_allowed_tools(
    p_allowed_tools: JsonB,
    p_field: default!(&str, "'allowed_tools'"),
) -> bool {
    super::tool_patterns(p_field, &p_allowed_tools.0);
    true
}
