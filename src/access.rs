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

/// `superuser`, `admin` or `other`: the caller as SQL-written functions see it.
#[pg_extern(stable)]
fn mcp_caller_kind() -> &'static str {
    match caller() {
        Caller::Operator => "superuser",
        Caller::Admin => "admin",
        Caller::Other => "other",
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

/// What the caller may act on when it writes audit data or uses a key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A superuser: any tenant, any key.
    Any,
    /// mcp_admin: every key of its tenant.
    Tenant(Uuid),
    /// Anyone else: only the key validated in this transaction.
    Key { tenant_id: Uuid, key_id: Uuid },
}

impl Scope {
    pub fn allows(self, tenant_id: Uuid, key_id: Uuid) -> bool {
        match self {
            Scope::Any => true,
            Scope::Tenant(t) => t == tenant_id,
            Scope::Key {
                tenant_id: t,
                key_id: k,
            } => t == tenant_id && k == key_id,
        }
    }
}

/// The caller's scope; raises when it has none (no tenant set, no key validated).
pub fn scope() -> Scope {
    match caller() {
        Caller::Operator => Scope::Any,
        Caller::Admin => Scope::Tenant(managed_tenant().expect("admins always have a tenant")),
        Caller::Other => match tenant::key_context() {
            Some(ctx) => Scope::Key {
                tenant_id: ctx.tenant_id,
                key_id: ctx.key_id,
            },
            None => errors::denied(
                "no MCP key was validated in this transaction",
                Some("call validate_mcp_key first, in the same transaction"),
            ),
        },
    }
}
