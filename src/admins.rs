//! Which tenants an mcp_admin login may act for. Membership in mcp_admin alone
//! gives no tenant: a superuser binds a role (and so its members) in
//! `mcp_tenant_admins` to
//! - one or more tenants (`grant_mcp_tenant_admin`): the login picks one with
//!   `SET mcp_auth.tenant_id`, or gets its only one without;
//! - the tenant of a verified JWT claim (`grant_mcp_jwt_tenant_admin`), for the role
//!   PostgREST or Supabase switches to after checking a token: the tenant is read
//!   from `request.jwt.claims`, at the path `mcp_auth.jwt_tenant_claim`;
//! - every tenant (`grant_mcp_all_tenants_admin`), for an application that serves
//!   them all and says so.
//!
//! Each backend keeps the bindings from their first use until they change (a
//! statement trigger invalidates the table's relcache entry, as for the registry).

use crate::errors;
use crate::settings;
use crate::spi::{self, Statement};
use pgrx::prelude::*;
use pgrx::Uuid;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What a role was given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    Tenant(Uuid),
    Jwt,
    All,
}

/// What the caller may reach, from every binding of the roles it has the rights of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub all: bool,
    pub jwt: bool,
    pub tenants: Vec<Uuid>,
}

impl Reach {
    /// Whether `tenant` is within reach; `claim` is the verified JWT's tenant.
    pub fn allows(&self, tenant: Uuid, claim: Option<Uuid>) -> bool {
        self.all || self.tenants.contains(&tenant) || (self.jwt && claim == Some(tenant))
    }
}

/// Every binding: the role's oid and what it was given.
type Bindings = Rc<Vec<(pg_sys::Oid, Grant)>>;

thread_local! {
    static KEPT: RefCell<Option<Bindings>> = const { RefCell::new(None) };
    static STALE: Cell<bool> = const { Cell::new(true) };
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

pub fn init() {
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0)) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == TABLE.with(Cell::get) {
        STALE.with(|s| s.set(true));
    }
}

// Run as a superuser under the caller's settings: every type is qualified, so that
// a temporary type of the caller's (pg_temp comes before pg_catalog for types) can
// never stand in for one (load() also pins search_path).
const ALL: Statement = Statement {
    sql: "SELECT role::pg_catalog.oid, scope, tenant_id::pg_catalog.text FROM @s.mcp_tenant_admins",
    args: &[],
    writes: false,
};

// 2.3.0 and before (a database not yet updated) have no bindings.
const HAS_TABLE: Statement = Statement {
    sql: "SELECT pg_catalog.to_regclass('@s.mcp_tenant_admins') IS NOT NULL",
    args: &[],
    writes: false,
};

/// Reads the table as the bootstrap superuser: the caller (an admin, or a policy
/// evaluated for anyone) has no rights on it, and must not need any. As a SECURITY
/// DEFINER function would: `search_path` pinned to `pg_catalog, pg_temp` for the
/// read (nothing of the caller's can be looked up), restored after it.
fn load() -> Vec<(pg_sys::Oid, Grant)> {
    let (mut user, mut security) = (pg_sys::InvalidOid, 0);
    let nest = unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut security);
        pg_sys::SetUserIdAndSecContext(
            pg_sys::BOOTSTRAP_SUPERUSERID.into(),
            security
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    // An error here aborts the (sub)transaction, which restores the user and the
    // setting itself.
    let rows = if spi::one::<bool>(&HAS_TABLE, &[]) == Some(true) {
        spi::run(&ALL, &[], |mut t| {
            let mut rows = Vec::new();
            while t.next().is_some() {
                let role = spi::col::<pg_sys::Oid>(&t, 1).unwrap_or(pg_sys::InvalidOid);
                let tenant = spi::col::<String>(&t, 3).and_then(|s| crate::tenant::parse_uuid(&s));
                let grant = match (spi::col::<String>(&t, 2).as_deref(), tenant) {
                    (Some("tenant"), Some(t)) => Grant::Tenant(t),
                    (Some("jwt"), _) => Grant::Jwt,
                    (Some("all"), _) => Grant::All,
                    _ => continue,
                };
                rows.push((role, grant));
            }
            rows
        })
    } else {
        Vec::new()
    };
    unsafe {
        pg_sys::SetUserIdAndSecContext(user, security);
        pg_sys::AtEOXact_GUC(true, nest);
    }
    rows
}

fn bindings() -> Bindings {
    if !STALE.with(|s| s.replace(false)) {
        if let Some(b) = KEPT.with(|k| k.borrow().clone()) {
            return b;
        }
    }
    TABLE.with(|t| {
        t.set(unsafe { pg_sys::get_relname_relid(c"mcp_tenant_admins".as_ptr(), spi::namespace()) })
    });
    let b = Rc::new(load());
    KEPT.with(|k| *k.borrow_mut() = Some(b.clone()));
    b
}

/// What the outer role (the login, or the role SET ROLE chose) may reach.
pub fn reach() -> Reach {
    let outer = unsafe { pg_sys::GetOuterUserId() };
    let mut reach = Reach::default();
    for (role, grant) in bindings().iter() {
        if !unsafe { pg_sys::has_privs_of_role(outer, *role) } {
            continue;
        }
        match grant {
            Grant::All => reach.all = true,
            Grant::Jwt => reach.jwt = true,
            Grant::Tenant(t) if !reach.tenants.contains(t) => reach.tenants.push(*t),
            Grant::Tenant(_) => {}
        }
    }
    reach
}

/// The tenant in the verified JWT's claims, for a role bound to JWT tenants. Only
/// trusted when the role was reached by SET ROLE from another login (PostgREST's
/// authenticator): a login of the role itself could set `request.jwt.claims` to
/// anything.
pub fn jwt_tenant() -> Option<Uuid> {
    let switched = unsafe { pg_sys::GetOuterUserId() != pg_sys::GetSessionUserId() };
    if !switched {
        return None;
    }
    let claims = unsafe {
        let p = pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false);
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    }?;
    let claims: serde_json::Value = serde_json::from_str(&claims).ok()?;
    let path = settings::jwt_tenant_claim();
    let value = path.split('.').try_fold(&claims, |v, k| v.get(k))?;
    crate::tenant::parse_uuid(value.as_str()?)
}

/// Statement trigger on mcp_tenant_admins: every backend drops its copy of the
/// bindings once this transaction commits.
#[pg_trigger]
fn mcp_tenant_admins_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let table = trigger.relation()?.oid();
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table) };
    Ok(None)
}

fn require_superuser(what: &str) {
    if !unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) } {
        errors::denied(format!("{what} requires a superuser"), None);
    }
}

const GRANT: Statement = Statement {
    sql: "WITH made AS (
              INSERT INTO @s.mcp_tenant_admins (role, scope, tenant_id)
              VALUES ($1::pg_catalog.oid::pg_catalog.regrole, $2, $3::pg_catalog.uuid)
              ON CONFLICT DO NOTHING
              RETURNING 1)
          SELECT pg_catalog.count(*)::int FROM made",
    args: &[spi::OID, spi::TEXT, spi::TEXT],
    writes: true,
};

const REVOKE: Statement = Statement {
    sql: "WITH gone AS (
              DELETE FROM @s.mcp_tenant_admins
               WHERE role = $1::pg_catalog.oid::pg_catalog.regrole
                 AND ($2::pg_catalog.uuid IS NULL OR tenant_id = $2::pg_catalog.uuid)
              RETURNING 1)
          SELECT pg_catalog.count(*)::int FROM gone",
    args: &[spi::OID, spi::TEXT],
    writes: true,
};

fn role_oid(field: &str, role: &str) -> pg_sys::Oid {
    let Ok(name) = std::ffi::CString::new(role) else {
        errors::bad_param(field, "must not contain NUL");
    };
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        errors::bad_param(field, format!("role {role:?} does not exist"));
    }
    oid
}

fn bind(role: &str, scope: &str, tenant: Option<Uuid>) -> bool {
    let oid = role_oid("p_role", role);
    let tenant = tenant.map(|t| t.to_string());
    spi::one::<i32>(&GRANT, &[oid.into(), scope.into(), tenant.into()]) == Some(1)
}

/// Binds `p_role` (and its members) to tenant `p_tenant_id`: as an mcp_admin, it
/// acts for that tenant. True when the binding is new.
#[pg_extern(volatile, security_definer, requires = ["admins"])]
#[search_path(pg_catalog, pg_temp)]
fn grant_mcp_tenant_admin(p_role: &str, p_tenant_id: Uuid) -> bool {
    require_superuser("grant_mcp_tenant_admin");
    bind(p_role, "tenant", Some(p_tenant_id))
}

/// Binds `p_role` to the tenant of the verified JWT's claim (PostgREST/Supabase).
/// Refused for a role that can log in: its own sessions could claim any tenant.
#[pg_extern(volatile, security_definer, requires = ["admins"])]
#[search_path(pg_catalog, pg_temp)]
fn grant_mcp_jwt_tenant_admin(p_role: &str) -> bool {
    require_superuser("grant_mcp_jwt_tenant_admin");
    let oid = role_oid("p_role", p_role);
    let can_login = spi::one::<bool>(
        &Statement {
            sql: "SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE oid = $1",
            args: &[spi::OID],
            writes: false,
        },
        &[oid.into()],
    );
    if can_login == Some(true) {
        errors::bad_param(
            "p_role",
            "must be a NOLOGIN role that the JWT-verifying login switches to (SET ROLE); \
             a login of its own could set request.jwt.claims itself",
        );
    }
    bind(p_role, "jwt", None)
}

/// Makes `p_role` an application-wide admin: every tenant, chosen per session with
/// `SET mcp_auth.tenant_id`.
#[pg_extern(volatile, security_definer, requires = ["admins"])]
#[search_path(pg_catalog, pg_temp)]
fn grant_mcp_all_tenants_admin(p_role: &str) -> bool {
    require_superuser("grant_mcp_all_tenants_admin");
    bind(p_role, "all", None)
}

/// Removes `p_role`'s bindings: to `p_tenant_id`, or every one (JWT and all-tenant
/// ones included) when it is NULL. Returns how many went.
#[pg_extern(volatile, security_definer, requires = ["admins"])]
#[search_path(pg_catalog, pg_temp)]
fn revoke_mcp_tenant_admin(p_role: &str, p_tenant_id: default!(Option<Uuid>, "NULL")) -> i32 {
    require_superuser("revoke_mcp_tenant_admin");
    let oid = role_oid("p_role", p_role);
    let tenant = p_tenant_id.map(|t| t.to_string());
    spi::one::<i32>(&REVOKE, &[oid.into(), tenant.into()]).unwrap_or(0)
}
