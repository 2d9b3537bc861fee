//! Who is calling. SECURITY DEFINER functions run as the extension owner, so the
//! caller is the *outer* role: the session user or the role chosen by SET ROLE.

use crate::errors;
use crate::tenant;
use pgrx::prelude::*;
use pgrx::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A superuser: the DBA, who may manage every tenant.
    Operator,
    /// A member of mcp_admin: its tenant comes from `mcp_auth.tenant_id`.
    Admin,
    /// Anyone else, members of mcp_client included.
    Other,
}

pub fn caller() -> Caller {
    unsafe {
        let outer = pg_sys::GetOuterUserId();
        if pg_sys::superuser_arg(outer) {
            return Caller::Operator;
        }
        let admin = pg_sys::get_role_oid(c"mcp_admin".as_ptr(), true);
        if admin != pg_sys::InvalidOid && pg_sys::has_privs_of_role(outer, admin) {
            Caller::Admin
        } else {
            Caller::Other
        }
    }
}

/// The tenants whose keys the caller may manage: `None` means every tenant.
pub fn managed_tenant() -> Option<Uuid> {
    match caller() {
        Caller::Operator => None,
        Caller::Admin => match tenant::current() {
            Some(ctx) => Some(ctx.tenant_id),
            None => errors::denied(
                "no tenant for this session",
                Some("SET mcp_auth.tenant_id = '<tenant uuid>' first"),
            ),
        },
        Caller::Other => errors::denied("managing MCP keys requires membership in mcp_admin", None),
    }
}

/// Raises unless the caller may manage keys of `tenant_id`.
pub fn require_tenant(field: &str, tenant_id: Uuid) {
    if let Some(own) = managed_tenant() {
        if own != tenant_id {
            errors::denied(
                format!("{field}: this session may only manage keys of tenant {own}"),
                None,
            );
        }
    }
}
