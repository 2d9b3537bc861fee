//! The tool registry: `register_mcp_tool` (superusers, and extensions such as
//! mcp_mes from their install script) and the lookups of the entry points.
//!
//! Each backend keeps the whole registry, with every tool's compiled JSON Schema,
//! from its first use until the registry may have changed: a statement trigger on
//! mcp_tools sends a relcache invalidation of the table (to every backend, at
//! commit), and any change to a function (a handler renamed or dropped) invalidates
//! pg_proc's syscache; both callbacks mark the kept copy stale.

use crate::errors;
use crate::spi::{self, col, Statement, BOOL, JSONB, TEXT};
use mcp_auth_core::arguments::Schema;
use pgrx::prelude::*;
use pgrx::{JsonB, PgBuiltInOids};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

const OID: PgOid = PgOid::BuiltIn(PgBuiltInOids::OIDOID);

/// A registered tool, with its handler as a qualified function name.
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    pub handler: String,
    pub read_only: bool,
    pub destructive: bool,
    /// `input_schema` compiled once, or why it is not a usable schema.
    schema: Result<Schema, String>,
}

impl Tool {
    /// Checks `args` against the tool's schema; the message names each offending
    /// field and the rule it broke, never the value: `status: must be one of ...`.
    pub fn check(&self, args: &Value) -> Result<(), String> {
        match &self.schema {
            Ok(schema) => schema.check(args),
            Err(e) => Err(format!("the tool's input schema is invalid: {e}")),
        }
    }
}

fn read(t: &pgrx::spi::SpiTupleTable<'_>) -> Option<Tool> {
    let input_schema = col::<JsonB>(t, 4)?.0;
    Some(Tool {
        name: col(t, 1)?,
        title: col(t, 2),
        description: col(t, 3)?,
        schema: Schema::compile(&input_schema),
        input_schema,
        handler: col(t, 5)?,
        read_only: col(t, 6)?,
        destructive: col(t, 7)?,
    })
}

// Every tool with its handler's qualified name, in listing order.
const ALL: Statement = Statement {
    sql: "SELECT t.name, t.title, t.description, t.input_schema,
                 pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
                 t.read_only, t.destructive
            FROM @s.mcp_tools t
            JOIN pg_catalog.pg_proc p ON p.oid = t.handler
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           ORDER BY t.domain, t.name",
    args: &[],
    writes: false,
};

struct Registry {
    /// In listing order (domain, name).
    tools: Vec<Rc<Tool>>,
    by_name: HashMap<String, Rc<Tool>>,
}

thread_local! {
    static KEPT: RefCell<Option<Rc<Registry>>> = const { RefCell::new(None) };
    /// Set by the invalidation callbacks, which may run at any moment (even while
    /// the registry is being read), so they touch nothing but these cells.
    static STALE: Cell<bool> = const { Cell::new(true) };
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

pub fn init() {
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(on_proc),
            pg_sys::Datum::from(0),
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == TABLE.with(Cell::get) {
        STALE.with(|s| s.set(true));
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_proc(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    STALE.with(|s| s.set(true));
}

fn registry() -> Rc<Registry> {
    if !STALE.with(|s| s.replace(false)) {
        if let Some(r) = KEPT.with(|k| k.borrow().clone()) {
            return r;
        }
    }
    // Marked fresh before reading: an invalidation that arrives meanwhile marks the
    // copy being read stale again.
    TABLE.with(|t| {
        t.set(unsafe { pg_sys::get_relname_relid(c"mcp_tools".as_ptr(), spi::namespace()) })
    });
    let tools: Vec<Rc<Tool>> = spi::run(&ALL, &[], |mut t| {
        let mut tools = Vec::new();
        while t.next().is_some() {
            tools.extend(read(&t).map(Rc::new));
        }
        tools
    });
    let by_name = tools.iter().map(|t| (t.name.clone(), t.clone())).collect();
    let r = Rc::new(Registry { tools, by_name });
    KEPT.with(|k| *k.borrow_mut() = Some(r.clone()));
    r
}

pub fn find(name: &str) -> Option<Rc<Tool>> {
    registry().by_name.get(name).cloned()
}

pub fn all() -> Vec<Rc<Tool>> {
    registry().tools.clone()
}

/// Statement trigger on mcp_tools: every backend drops its copy of the registry
/// once this transaction commits (this one at its next command).
#[pg_trigger]
fn mcp_tools_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let table = trigger.relation()?.oid();
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table) };
    Ok(None)
}

const HANDLER_SHAPE: Statement = Statement {
    sql: "SELECT p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.jsonb'::pg_catalog.regtype
                 AND p.prorettype = 'pg_catalog.jsonb'::pg_catalog.regtype AND NOT p.proretset,
                 $1::pg_catalog.regprocedure::pg_catalog.text
            FROM pg_catalog.pg_proc p WHERE p.oid = $1",
    args: &[OID],
    writes: false,
};

const UPSERT: Statement = Statement {
    sql: "INSERT INTO @s.mcp_tools
              (name, domain, title, description, input_schema, handler, read_only, destructive, extension)
          VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.regprocedure, $7, $8, $9)
          ON CONFLICT (name) DO UPDATE SET
              domain = EXCLUDED.domain, title = EXCLUDED.title, description = EXCLUDED.description,
              input_schema = EXCLUDED.input_schema, handler = EXCLUDED.handler,
              read_only = EXCLUDED.read_only, destructive = EXCLUDED.destructive,
              extension = EXCLUDED.extension",
    args: &[TEXT, TEXT, TEXT, TEXT, JSONB, OID, BOOL, BOOL, TEXT],
    writes: true,
};

/// The extension whose script is running, if any.
fn creating_extension() -> Option<String> {
    unsafe {
        if !pg_sys::creating_extension {
            return None;
        }
        let name = pg_sys::get_extension_name(pg_sys::CurrentExtensionObject);
        (!name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// Registers (or replaces) a tool. The handler must be `(jsonb) RETURNS jsonb`; it is
/// called with the validated arguments, as mcp_tool_runner, in the key's tenant.
#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn register_mcp_tool(
    p_name: Option<&str>,
    p_domain: Option<&str>,
    p_description: Option<&str>,
    p_input_schema: Option<JsonB>,
    p_handler: Option<pg_sys::Oid>,
    p_read_only: default!(Option<bool>, false),
    p_title: default!(Option<&str>, "NULL"),
    p_destructive: default!(Option<bool>, false),
) {
    let name = p_name.unwrap_or_else(|| errors::required("p_name"));
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        errors::bad_param("p_name", "must be 1 to 128 letters, digits, _ . or -");
    }
    let domain = p_domain.unwrap_or_else(|| errors::required("p_domain"));
    let description = p_description.unwrap_or_else(|| errors::required("p_description"));
    let schema = p_input_schema.unwrap_or_else(|| errors::required("p_input_schema"));
    if let Err(e) = Schema::compile(&schema.0) {
        errors::bad_param("p_input_schema", format!("not a valid JSON Schema: {e}"));
    }
    let handler = p_handler.unwrap_or_else(|| errors::required("p_handler"));
    let (shape_ok, signature): (Option<bool>, Option<String>) =
        spi::first(&HANDLER_SHAPE, &[handler.into()], |r| {
            Some((col(r, 1), col(r, 2)))
        })
        .unwrap_or((None, None));
    if shape_ok != Some(true) {
        errors::bad_param("p_handler", "must be a function (jsonb) RETURNS jsonb");
    }
    spi::run(
        &UPSERT,
        &[
            name.into(),
            domain.into(),
            p_title.into(),
            description.into(),
            schema.into(),
            handler.into(),
            p_read_only.unwrap_or(false).into(),
            p_destructive.unwrap_or(false).into(),
            creating_extension().into(),
        ],
        |_| (),
    );
    // The runner role may call registered handlers, and nothing else of the extension.
    let grant = format!(
        "GRANT EXECUTE ON FUNCTION {} TO mcp_tool_runner",
        signature.expect("a function has a signature")
    );
    errors::spi(Spi::run(&grant));
}
