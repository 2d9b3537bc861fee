//! Who is calling. SECURITY DEFINER functions run as the extension owner, so the
//! caller is the *outer* role: the session user or the role chosen by SET ROLE.
//! Imports nothing of the extension, so any module may ask.

use pgrx::prelude::*;

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

/// Whether a tool handler is running: call_tool runs them as mcp_tool_runner.
pub fn running_tool() -> bool {
    unsafe {
        let runner = pg_sys::get_role_oid(c"mcp_tool_runner".as_ptr(), true);
        runner != pg_sys::InvalidOid && pg_sys::GetUserId() == runner
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
