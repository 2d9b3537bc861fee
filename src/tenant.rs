//! The tenant context that row-level security reads through `mcp_current_tenant()`.
//!
//! A validated key's context lives in this backend's memory, out of reach of any
//! SQL a client can run: no GUC, no table, no function sets it but
//! `validate_mcp_key`. It ends with the transaction, and a context set inside a
//! savepoint ends when that savepoint is rolled back.

use crate::admins;
use crate::errors;
use crate::roles::{self, Caller};
use crate::settings;
use pgrx::prelude::*;
use pgrx::Uuid;
use std::cell::RefCell;

#[derive(Debug, Clone)]
pub struct KeyContext {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub key_name: String,
    pub environment: String,
    /// Subtransaction that set it; re-labelled to the parent when that one commits.
    subxact: pg_sys::SubTransactionId,
}

/// Where the current tenant came from.
#[derive(Debug, Clone)]
pub enum Source {
    Key(KeyContext),
    Setting,
}

#[derive(Debug, Clone)]
pub struct Current {
    pub tenant_id: Uuid,
    pub source: Source,
}

thread_local! {
    /// A stack, so that a key validated after another one and then rolled back to a
    /// savepoint gives the earlier context back.
    static KEY_CONTEXTS: RefCell<Vec<KeyContext>> = const { RefCell::new(Vec::new()) };
}

pub fn init() {
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
    use pg_sys::XactEvent::*;
    // Every way a transaction ends clears the context; the PRE_ events come before the end.
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PREPARE
    ) {
        KEY_CONTEXTS.with(|c| c.borrow_mut().clear());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut core::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    KEY_CONTEXTS.with(|c| {
        let mut stack = c.borrow_mut();
        match event {
            SUBXACT_EVENT_ABORT_SUB => stack.retain(|ctx| ctx.subxact < my_subid),
            SUBXACT_EVENT_COMMIT_SUB => stack
                .iter_mut()
                .filter(|ctx| ctx.subxact == my_subid)
                .for_each(|ctx| ctx.subxact = parent_subid),
            _ => {}
        }
    });
}

/// Called by key validation only.
pub fn set_key_context(tenant_id: Uuid, key_id: Uuid, key_name: String, environment: String) {
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    KEY_CONTEXTS.with(|c| {
        c.borrow_mut().push(KeyContext {
            tenant_id,
            key_id,
            key_name,
            environment,
            subxact,
        })
    });
}

pub fn key_context() -> Option<KeyContext> {
    KEY_CONTEXTS.with(|c| c.borrow().last().cloned())
}

/// The tenant of this transaction:
/// - for a superuser, a validated key's, else `mcp_auth.tenant_id`;
/// - for an mcp_admin member, the same, but only within the tenants its role is
///   bound to (admins.rs): a key or a setting outside them gives nothing, and a
///   login bound to one tenant needs no setting;
/// - for anyone else, and for every caller's tool handlers, a validated key's; else
///   none.
pub fn current() -> Option<Current> {
    let key = key_context();
    let caller = roles::caller();
    // A tool handler (run as mcp_tool_runner) acts for its key's tenant, whoever called.
    if caller == Caller::Other || (key.is_some() && roles::running_tool()) {
        return key.map(|ctx| Current {
            tenant_id: ctx.tenant_id,
            source: Source::Key(ctx),
        });
    }
    let (reach, claim) = match caller {
        Caller::Admin => {
            let reach = admins::reach();
            let claim = if reach.jwt {
                admins::jwt_tenant()
            } else {
                None
            };
            (Some(reach), claim)
        }
        _ => (None, None),
    };
    let allowed = |t: Uuid| reach.as_ref().is_none_or(|r| r.allows(t, claim));
    if let Some(ctx) = key.filter(|ctx| allowed(ctx.tenant_id)) {
        return Some(Current {
            tenant_id: ctx.tenant_id,
            source: Source::Key(ctx),
        });
    }
    let setting = settings::tenant_setting().map(|raw| match parse_uuid(&raw) {
        Some(t) => t,
        None => errors::bad_param("mcp_auth.tenant_id", format!("{raw:?} is not a uuid")),
    });
    let chosen = match (&reach, setting) {
        (_, Some(t)) => Some(t),
        (None, None) => None,
        // An admin without a setting: the claim's tenant, or its only tenant.
        (Some(r), None) => {
            claim.or_else(|| (!r.all && !r.jwt && r.tenants.len() == 1).then(|| r.tenants[0]))
        }
    };
    chosen.filter(|&t| allowed(t)).map(|tenant_id| Current {
        tenant_id,
        source: Source::Setting,
    })
}

/// Why an admin has no tenant, for the functions that need one.
pub fn no_tenant_reason() -> (String, &'static str) {
    let hint = "a superuser binds this login to its tenants: \
                SELECT grant_mcp_tenant_admin('<role>', '<tenant uuid>')";
    match settings::tenant_setting() {
        Some(raw) => (
            format!("mcp_auth.tenant_id: this login is not bound to tenant {raw}"),
            hint,
        ),
        None if admins::reach() == admins::Reach::default() => {
            ("this login is not bound to any tenant".into(), hint)
        }
        None => (
            "no tenant for this session".into(),
            "SET mcp_auth.tenant_id = '<tenant uuid>' (one this login is bound to) first",
        ),
    }
}

pub fn parse_uuid(s: &str) -> Option<Uuid> {
    uuid::Uuid::parse_str(s)
        .ok()
        .map(|u| Uuid::from_bytes(*u.as_bytes()))
}

/// The current tenant, for row-level security policies. NULL when there is none,
/// so a policy `tenant_id = mcp_current_tenant()` then matches no row.
#[pg_extern(stable, parallel_restricted)]
fn mcp_current_tenant() -> Option<Uuid> {
    current().map(|c| c.tenant_id)
}

fn put<T: IntoDatum>(row: &mut PgHeapTuple<'static, AllocatedByRust>, field: &str, value: T) {
    row.set_by_name(field, value)
        .unwrap_or_else(|e| errors::internal(format!("mcp_tenant_info.{field}: {e}")));
}

/// One row describing the current tenant; `source` is `key`, `setting` or `none`.
#[pg_extern(stable, parallel_restricted, requires = ["schema"])]
#[search_path(pg_catalog, pg_temp)]
fn get_tenant_info() -> pgrx::composite_type!('static, "mcp_tenant_info") {
    // Qualified: the extension's schema is not on this function's search_path.
    let mut row =
        PgHeapTuple::new_composite_type(&format!("{}.mcp_tenant_info", crate::spi::schema()))
            .unwrap_or_else(|e| errors::internal(format!("mcp_tenant_info: {e}")));
    match current() {
        Some(Current {
            tenant_id,
            source: Source::Key(ctx),
        }) => {
            put(&mut row, "id", tenant_id);
            put(&mut row, "key_id", ctx.key_id);
            put(&mut row, "key_name", ctx.key_name);
            put(&mut row, "environment", ctx.environment);
            put(&mut row, "source", "key");
        }
        Some(Current {
            tenant_id,
            source: Source::Setting,
        }) => {
            put(&mut row, "id", tenant_id);
            put(&mut row, "source", "setting");
        }
        None => put(&mut row, "source", "none"),
    }
    row
}
