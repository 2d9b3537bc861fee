//! What the caller may act on: which tenant's keys it manages, and whose audit data
//! and budget it may touch. Who the caller is comes from `roles`.

use crate::errors;
use crate::roles::{caller, Caller};
use crate::tenant;
use pgrx::Uuid;

/// The tenants whose keys the caller may manage: `None` means every tenant.
pub fn managed_tenant() -> Option<Uuid> {
    match caller() {
        Caller::Operator => None,
        Caller::Admin => match tenant::current() {
            Some(ctx) => Some(ctx.tenant_id),
            None => {
                let (why, hint) = tenant::no_tenant_reason();
                errors::denied(why, Some(hint))
            }
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
