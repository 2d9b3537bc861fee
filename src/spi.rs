//! The extension's own SQL: statements are written against `@s`, replaced by the
//! extension's schema (quoted), prepared once per backend and kept.
//!
//! Resolving the schema through `pg_extension` keeps every reference qualified
//! (nothing depends on the caller's search_path) and works in any schema.

use crate::errors;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiTupleTable};
use pgrx::PgBuiltInOids;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Where the extension lives in this database, as last resolved by this backend.
#[derive(Clone)]
struct Installed {
    schema: String,
    namespace: pg_sys::Oid,
    keys_table: pg_sys::Oid,
}

thread_local! {
    static INSTALLED: RefCell<Option<Installed>> = const { RefCell::new(None) };
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

fn keys_table_in(namespace: pg_sys::Oid) -> pg_sys::Oid {
    unsafe { pg_sys::get_relname_relid(c"mcp_authentication_keys".as_ptr(), namespace) }
}

/// The extension's schema, re-resolved (and the kept plans dropped) when the
/// extension was dropped and created again since this backend last looked: a
/// syscache probe per call, far cheaper than a catalog query. None when mcp_auth is
/// not installed in this database.
fn resolve() -> Option<Installed> {
    if let Some(i) = INSTALLED.with(|c| c.borrow().clone()) {
        if keys_table_in(i.namespace) == i.keys_table {
            return Some(i);
        }
        PLANS.with(|p| p.borrow_mut().clear());
        INSTALLED.with(|c| *c.borrow_mut() = None);
    }
    let (schema, namespace): (Option<String>, Option<pg_sys::Oid>) = errors::spi(Spi::get_two(
        // One row either way: NULLs when the extension is not installed.
        "SELECT pg_catalog.quote_ident(n.nspname::pg_catalog.text), n.oid
           FROM (SELECT) one
           LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'mcp_auth'
           LEFT JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace",
    ));
    let i = Installed {
        schema: schema?,
        namespace: namespace?,
        keys_table: keys_table_in(namespace?),
    };
    INSTALLED.with(|c| *c.borrow_mut() = Some(i.clone()));
    Some(i)
}

fn installed() -> Installed {
    resolve().unwrap_or_else(|| errors::not_installed())
}

/// Whether mcp_auth is installed in this database (for the notifier, which must
/// leave quietly once it is dropped).
pub fn is_installed() -> bool {
    resolve().is_some()
}

/// The oid of the schema mcp_auth is installed in.
pub fn namespace() -> pg_sys::Oid {
    installed().namespace
}

/// The quoted name of the schema mcp_auth is installed in.
pub fn schema() -> String {
    installed().schema
}

/// A statement of ours: its text (with `@s.` for the schema; the large ones live in
/// `sql/queries/`, each naming its parameters in a header) and argument types.
pub struct Statement {
    pub sql: &'static str,
    pub args: &'static [PgOid],
    /// Prepared read-write: SPI may modify data and takes a fresh snapshot for it.
    /// Read-only statements run in the caller's snapshot.
    pub writes: bool,
}

fn plan(
    client: &pgrx::spi::SpiClient<'_>,
    sql: &str,
    args: &[PgOid],
    writes: bool,
) -> Rc<OwnedPreparedStatement> {
    let schema = schema();
    if let Some(p) = PLANS.with(|p| p.borrow().get(sql).cloned()) {
        return p;
    }
    let text = sql.replace("@s.", &format!("{schema}."));
    let prepared = if writes {
        client.prepare_mut(text.as_str(), args)
    } else {
        client.prepare(text.as_str(), args)
    };
    let kept = Rc::new(errors::spi(prepared).keep());
    PLANS.with(|p| p.borrow_mut().insert(sql.to_string(), kept.clone()));
    kept
}

/// Runs `stmt` with `args` and hands the rows to `read`, inside one SPI connection.
pub fn run<R>(
    stmt: &Statement,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(SpiTupleTable<'_>) -> R,
) -> R {
    run_sql(stmt.sql, stmt.args, stmt.writes, args, read)
}

/// Like `run`, for statements composed at run time (tool handler calls); each distinct
/// text is prepared once per backend.
pub fn run_sql<R>(
    sql: &str,
    types: &[PgOid],
    writes: bool,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(SpiTupleTable<'_>) -> R,
) -> R {
    Spi::connect_mut(|client| {
        let p = plan(client, sql, types, writes);
        let table = if writes {
            client.update(&*p, None, args)
        } else {
            client.select(&*p, None, args)
        };
        read(errors::spi(table))
    })
}

/// `read` of the first row, or None when there is none.
pub fn first<R>(
    stmt: &Statement,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&SpiTupleTable<'_>) -> Option<R>,
) -> Option<R> {
    run(stmt, args, |t| {
        if t.is_empty() {
            None
        } else {
            read(&t.first())
        }
    })
}

/// The first column of the first row, if any.
pub fn one<T: FromDatum + IntoDatum>(stmt: &Statement, args: &[DatumWithOid<'_>]) -> Option<T> {
    first(stmt, args, |r| col(r, 1))
}

/// Reads column `n` (1-based) of the current row; a NULL or mistyped column is our bug.
pub fn col<T: FromDatum + IntoDatum>(row: &SpiTupleTable<'_>, n: usize) -> Option<T> {
    errors::spi(row.get::<T>(n))
}

pub const OID: PgOid = PgOid::BuiltIn(PgBuiltInOids::OIDOID);
pub const UUID: PgOid = PgOid::BuiltIn(PgBuiltInOids::UUIDOID);
pub const TEXT: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
pub const INT4: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT4OID);
pub const INT8: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT8OID);
pub const JSONB: PgOid = PgOid::BuiltIn(PgBuiltInOids::JSONBOID);
pub const INT8_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT8ARRAYOID);
pub const BYTEA: PgOid = PgOid::BuiltIn(PgBuiltInOids::BYTEAOID);
pub const TIMESTAMPTZ: PgOid = PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZOID);
pub const INTERVAL: PgOid = PgOid::BuiltIn(PgBuiltInOids::INTERVALOID);
pub const BOOL: PgOid = PgOid::BuiltIn(PgBuiltInOids::BOOLOID);

/// This backend's slot (0..max_connections): the row a backend owns in the
/// per-slot counter tables, so that concurrent backends never update one row.
pub fn backend_slot() -> i32 {
    #[cfg(feature = "pg17")]
    unsafe {
        pg_sys::MyProcNumber
    }
    #[cfg(not(feature = "pg17"))]
    unsafe {
        pg_sys::MyBackendId
    }
}

thread_local! {
    static RAW_PLANS: RefCell<HashMap<String, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

/// Runs `sql` (one jsonb parameter, one jsonb column) read-write, for a tool
/// handler that may write, and returns the first row's value. Unlike pgrx's
/// `update`, it does not assign the transaction an id beforehand: a handler that
/// writes nothing leaves the caller's transaction without one, so it has no commit
/// record to flush, and the audit can tell a call with effects from one without.
pub fn run_handler(sql: &str, arg: pg_sys::Datum) -> Option<crate::jsonb_datum::JsonbDatum> {
    let text = sql.replace("@s.", &format!("{}.", schema()));
    unsafe {
        let outer = pg_sys::CurrentMemoryContext;
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            errors::internal("SPI_connect failed");
        }
        let plan = RAW_PLANS
            .with(|p| p.borrow().get(&text).copied())
            .unwrap_or_else(|| {
                let c = std::ffi::CString::new(text.as_str()).expect("no NUL in our SQL");
                let mut types = [pg_sys::JSONBOID];
                let plan = pg_sys::SPI_prepare(c.as_ptr(), 1, types.as_mut_ptr());
                if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                    errors::internal("could not prepare a tool handler's call");
                }
                RAW_PLANS.with(|p| p.borrow_mut().insert(text.clone(), plan));
                plan
            });
        let mut values = [arg];
        let nulls = [b' ' as std::ffi::c_char];
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), false, 1);
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            errors::internal(format!("a tool handler's call returned SPI code {rc}"));
        }
        let table = pg_sys::SPI_tuptable;
        let result = if table.is_null() || (*table).numvals == 0 {
            None
        } else {
            let mut is_null = false;
            let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut is_null);
            // Copied into the caller's context: SPI's memory ends with SPI_finish.
            pg_sys::MemoryContextSwitchTo(outer);
            crate::jsonb_datum::JsonbDatum::from_polymorphic_datum(d, is_null, pg_sys::JSONBOID)
        };
        pg_sys::SPI_finish();
        result
    }
}
