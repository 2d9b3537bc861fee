//! Argument validation against each tool's JSON Schema (the rules and messages are
//! `mcp_auth_core::arguments`'). Compiled schemas are kept per backend, keyed by
//! tool and schema text, so a changed schema is recompiled.

use mcp_auth_core::arguments::Schema;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static COMPILED: RefCell<HashMap<String, (String, Rc<Schema>)>> =
        RefCell::new(HashMap::new());
}

fn compiled(tool: &str, schema: &Value) -> Result<Rc<Schema>, String> {
    let text = schema.to_string();
    if let Some(v) = COMPILED.with(|c| {
        c.borrow()
            .get(tool)
            .filter(|(t, _)| *t == text)
            .map(|(_, v)| v.clone())
    }) {
        return Ok(v);
    }
    let v = Rc::new(Schema::compile(schema)?);
    COMPILED.with(|c| c.borrow_mut().insert(tool.to_string(), (text, v.clone())));
    Ok(v)
}

/// Checks `args` against the tool's schema; the message names each offending field
/// and the rule it broke, never the value: `status: must be one of "open", ...`.
pub fn check(tool: &str, schema: &Value, args: &Value) -> Result<(), String> {
    compiled(tool, schema)
        .map_err(|e| format!("the tool's input schema is invalid: {e}"))?
        .check(args)
}
