//! The tool registry: `register_mcp_tool` (superusers, and extensions such as
//! mcp_mes from their install script) and lookups for the dispatcher.

use crate::errors;
use crate::spi::{self, col, Statement, BOOL, JSONB, TEXT};
use pgrx::prelude::*;
use pgrx::{JsonB, PgBuiltInOids};
use serde_json::Value;

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
}

fn read(t: &pgrx::spi::SpiTupleTable<'_>) -> Option<Tool> {
    Some(Tool {
        name: col(t, 1)?,
        title: col(t, 2),
        description: col(t, 3)?,
        input_schema: col::<JsonB>(t, 4)?.0,
        handler: col(t, 5)?,
        read_only: col(t, 6)?,
        destructive: col(t, 7)?,
    })
}

/// The registry joined with each handler's qualified name; `$tail` filters and orders.
macro_rules! tools_query {
    ($tail:literal) => {
        concat!(
            "SELECT t.name, t.title, t.description, t.input_schema,
                    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
                    t.read_only, t.destructive
               FROM @s.mcp_tools t
               JOIN pg_catalog.pg_proc p ON p.oid = t.handler
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace ",
            $tail
        )
    };
}

const FIND: Statement = Statement {
    sql: tools_query!("WHERE t.name = $1"),
    args: &[TEXT],
    writes: false,
};

const ALL: Statement = Statement {
    sql: tools_query!("ORDER BY t.domain, t.name"),
    args: &[],
    writes: false,
};

pub fn find(name: &str) -> Option<Tool> {
    spi::run(&FIND, &[name.into()], |t| {
        if t.is_empty() {
            None
        } else {
            read(&t.first())
        }
    })
}

pub fn all() -> Vec<Tool> {
    spi::run(&ALL, &[], |mut t| {
        let mut tools = Vec::new();
        while t.next().is_some() {
            if let Some(tool) = read(&t) {
                tools.push(tool);
            }
        }
        tools
    })
}

const HANDLER_SHAPE: Statement = Statement {
    sql: "SELECT p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.jsonb'::pg_catalog.regtype
                 AND p.prorettype = 'pg_catalog.jsonb'::pg_catalog.regtype AND NOT p.proretset,
                 $1::pg_catalog.regprocedure::text
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
    if let Err(e) = mcp_auth_core::arguments::Schema::compile(&schema.0) {
        errors::bad_param("p_input_schema", format!("not a valid JSON Schema: {e}"));
    }
    let handler = p_handler.unwrap_or_else(|| errors::required("p_handler"));
    let (shape_ok, signature): (Option<bool>, Option<String>) =
        spi::run(&HANDLER_SHAPE, &[handler.into()], |t| {
            if t.is_empty() {
                (None, None)
            } else {
                let r = t.first();
                (col(&r, 1), col(&r, 2))
            }
        });
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
