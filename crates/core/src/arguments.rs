//! Tool arguments as a client sends them: bounded, parsed, and checked against the
//! tool's JSON Schema with messages that name the field and the rule and never
//! repeat the value (a value may be a password, or 15 MB long).

use crate::redact;
use serde_json::Value;

/// The largest argument object accepted, as JSON text. Larger ones are refused
/// before anything is stored.
pub const MAX_BYTES: usize = 64 * 1024;
/// The deepest nesting accepted (objects and arrays).
pub const MAX_DEPTH: usize = 32;
/// At most this many problems are reported for one call.
const MAX_PROBLEMS: usize = 5;
/// A field path longer than this is cut in messages.
const MAX_FIELD_CHARS: usize = 120;

/// Why arguments were refused before their schema was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { bytes: usize },
    TooDeep,
    NumberOutOfRange,
    Malformed,
    NotAnObject,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge { bytes } => write!(
                f,
                "arguments: must be at most {MAX_BYTES} bytes of JSON (got {bytes})"
            ),
            Refusal::TooDeep => write!(
                f,
                "arguments: must be nested at most {MAX_DEPTH} levels deep"
            ),
            Refusal::NumberOutOfRange => write!(
                f,
                "arguments: every number must fit a 64-bit float (magnitude below 1.8e308)"
            ),
            Refusal::Malformed => write!(f, "arguments: must be valid JSON"),
            Refusal::NotAnObject => write!(f, "arguments: must be a JSON object"),
        }
    }
}

/// Reads an argument object from its JSON text, within the size and depth bounds.
pub fn parse(text: &str) -> Result<Value, Refusal> {
    if text.len() > MAX_BYTES {
        return Err(Refusal::TooLarge { bytes: text.len() });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        if message.contains("recursion limit") {
            Refusal::TooDeep
        } else if message.contains("number out of range") {
            Refusal::NumberOutOfRange
        } else {
            Refusal::Malformed
        }
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(Refusal::TooDeep);
    }
    if !value.is_object() {
        return Err(Refusal::NotAnObject);
    }
    Ok(value)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A tool's compiled input schema.
pub struct Schema(jsonschema::Validator);

impl Schema {
    /// Compiles `schema`, or says why it is not a usable JSON Schema.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        jsonschema::validator_for(schema)
            .map(Schema)
            .map_err(|e| e.to_string())
    }

    /// Checks `args`: Ok, or up to five `field: rule` problems joined by `; `.
    pub fn check(&self, args: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .0
            .iter_errors(args)
            .take(MAX_PROBLEMS)
            .map(|e| {
                let path = e.instance_path().to_string();
                let field = field_name(path.trim_start_matches('/'));
                let rule = rule(e.kind());
                if field.is_empty() {
                    rule
                } else {
                    format!("{field}: {rule}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// A JSON pointer as a dotted field name, with key-shaped names redacted and long
/// ones cut (property names are the client's text too).
fn field_name(pointer: &str) -> String {
    let dotted = pointer
        .replace('/', ".")
        .replace("~1", "/")
        .replace("~0", "~");
    let shown = redact::text(&dotted);
    if shown.chars().count() > MAX_FIELD_CHARS {
        let cut: String = shown.chars().take(MAX_FIELD_CHARS).collect();
        format!("{cut}...")
    } else {
        shown
    }
}

/// What a schema keyword demands, in words, from the schema alone: the offending
/// value is never part of it.
fn rule(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    let list = |v: &Value| match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    match kind {
        K::Type { kind } => match kind {
            TypeKind::Single(t) => format!("must be of type {t}"),
            TypeKind::Multiple(ts) => format!(
                "must be of type {}",
                ts.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        },
        K::Enum { options } => format!("must be one of {}", list(options)),
        K::Constant { expected_value } => format!("must be {expected_value}"),
        K::Required { property } => match property.as_str() {
            Some(p) => format!("{} is required", field_name(p)),
            None => "a required property is missing".into(),
        },
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let names: Vec<String> = unexpected.iter().take(5).map(|n| field_name(n)).collect();
            format!("unknown properties are not allowed ({})", names.join(", "))
        }
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        K::MultipleOf { multiple_of } => format!("must be a multiple of {multiple_of}"),
        K::Pattern { pattern } => format!("must match the pattern {pattern}"),
        K::Format { format } => format!("must be a valid {format}"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::MinProperties { limit } => format!("must have at least {limit} properties"),
        K::MaxProperties { limit } => format!("must have at most {limit} properties"),
        K::UniqueItems => "items must be unique".into(),
        K::FalseSchema => "is not allowed".into(),
        other => format!("does not satisfy the schema's {} rule", other.keyword()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["job_id"],
            "properties": {
                "job_id": {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
                "status": {"type": "string", "enum": ["open", "closed"]},
                "password": {"type": "string", "maxLength": 8},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500}
            }
        }))
        .expect("a valid schema")
    }

    #[test]
    fn messages_name_the_field_and_rule_never_the_value() {
        let secret = "Tr0ub4dor&3-correct-horse";
        let err = schema()
            .check(
                &json!({"job_id": "x", "password": secret, "status": "bogus-value", "limit": 9999}),
            )
            .unwrap_err();
        assert!(
            err.contains("password: must be at most 8 characters long"),
            "{err}"
        );
        assert!(
            err.contains("status: must be one of \"open\", \"closed\""),
            "{err}"
        );
        assert!(err.contains("limit: must be at most 500"), "{err}");
        assert!(err.contains("job_id: must match the pattern"), "{err}");
        for value in [secret, "bogus-value", "9999"] {
            assert!(!err.contains(value), "{value} echoed in {err}");
        }
    }

    #[test]
    fn missing_and_unknown_properties_are_named() {
        let err = schema().check(&json!({"extra": 1})).unwrap_err();
        assert!(err.contains("job_id is required"), "{err}");
        assert!(
            err.contains("unknown properties are not allowed (extra)"),
            "{err}"
        );
    }

    #[test]
    fn key_shaped_property_names_are_redacted_in_messages() {
        let k = crate::key::generate(crate::key::Environment::Live);
        let err = schema().check(&json!({"job_id": "0", &k: 1})).unwrap_err();
        assert!(!err.contains(&k), "{err}");
        assert!(err.contains(&k[..16]), "{err}");
    }

    #[test]
    fn bounds_come_before_parsing() {
        let big = format!("{{\"search\": \"{}\"}}", "x".repeat(MAX_BYTES));
        assert_eq!(parse(&big), Err(Refusal::TooLarge { bytes: big.len() }));
        let deep = format!("{}1{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(parse(&format!("{{\"a\": {deep}}}")), Err(Refusal::TooDeep));
        let deep_ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&format!("{{\"a\": {deep_ok}}}")).is_ok());
        assert_eq!(parse("{\"limit\": 1e400}"), Err(Refusal::NumberOutOfRange));
        assert_eq!(parse("[1]"), Err(Refusal::NotAnObject));
        assert_eq!(parse("{"), Err(Refusal::Malformed));
        assert_eq!(parse("{\"limit\": 5}"), Ok(json!({"limit": 5})));
        assert!(Refusal::TooLarge { bytes: 70000 }
            .to_string()
            .starts_with("arguments: must be at most 65536 bytes"));
    }
}
