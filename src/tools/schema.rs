//! Argument validation with the `jsonschema` crate. Compiled schemas are kept per
//! backend, keyed by tool and schema text, so a changed schema is recompiled.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

thread_local! {
    static COMPILED: RefCell<HashMap<String, (String, Rc<jsonschema::Validator>)>> =
        RefCell::new(HashMap::new());
}

/// Compiles `schema`, or says why it is not a usable JSON Schema.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

fn validator(tool: &str, schema: &Value) -> Result<Rc<jsonschema::Validator>, String> {
    let text = schema.to_string();
    if let Some(v) = COMPILED.with(|c| {
        c.borrow()
            .get(tool)
            .filter(|(t, _)| *t == text)
            .map(|(_, v)| v.clone())
    }) {
        return Ok(v);
    }
    let v = Rc::new(compile(schema)?);
    COMPILED.with(|c| c.borrow_mut().insert(tool.to_string(), (text, v.clone())));
    Ok(v)
}

/// Checks `args` against the tool's schema. The message names each offending field
/// and the rule it broke: `status: "bogus" is not one of ["not_started", ...]`.
pub fn check(tool: &str, schema: &Value, args: &Value) -> Result<(), String> {
    let v =
        validator(tool, schema).map_err(|e| format!("the tool's input schema is invalid: {e}"))?;
    let problems: Vec<String> = v
        .iter_errors(args)
        .take(5)
        .map(|e| {
            let path = e.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            if field.is_empty() {
                e.to_string()
            } else {
                format!("{field}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
