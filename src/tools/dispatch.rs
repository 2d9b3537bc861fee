//! The two MCP entry points. Both answer with an envelope and never raise for a
//! client's mistake: `{"ok": true, "result": ...}` or
//! `{"ok": false, "error": {"type", "message", "retry_after_ms"}}`.
//!
//! `call_tool` is one round trip and one transaction: authenticate, authorize, rate
//! limit, validate the arguments, run the handler (as mcp_tool_runner, in a
//! subtransaction) and audit the outcome. A failed handler's writes are rolled back;
//! its audit row stays.

use super::{registry, runner, schema};
use crate::access::Scope;
use crate::audit::usage_log::{self, Usage};
use crate::errors::INVALID_KEY;
use crate::jsonb_datum::JsonbDatum;
use crate::keys::{self, validate};
use crate::rate_limit;
use mcp_auth_core::tools;
use pgrx::datum::Inet;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::time::Instant;

/// The error types of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Authentication,
    Permission,
    RateLimit,
    Validation,
    NotFound,
    InvalidState,
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Authentication => "authentication_error",
            Kind::Permission => "permission_error",
            Kind::RateLimit => "rate_limit_error",
            Kind::Validation => "validation_error",
            Kind::NotFound => "not_found",
            Kind::InvalidState => "invalid_state",
            Kind::Internal => "internal_error",
        }
    }
}

fn ok(result: Value) -> JsonbDatum {
    JsonB(json!({"ok": true, "result": result})).into()
}

fn failure(kind: Kind, message: &str, retry_after_ms: Option<i32>) -> JsonbDatum {
    let mut error = json!({"type": kind.as_str(), "message": message});
    if let Some(ms) = retry_after_ms {
        error["retry_after_ms"] = json!(ms);
    }
    JsonB(json!({"ok": false, "error": error})).into()
}

/// What a handler's SQLSTATE means to a client.
fn classify(sqlstate: &str) -> Kind {
    match sqlstate {
        "P0002" => Kind::NotFound,
        "55000" => Kind::InvalidState,
        "42501" => Kind::Permission,
        s if s.starts_with("22") || s.starts_with("23") => Kind::Validation,
        _ => Kind::Internal,
    }
}

/// What the server knows of its caller, for the audit row.
struct Client {
    ip: Option<Inet>,
    user_agent: Option<String>,
}

fn client_of(p_client: &Value) -> Client {
    let text = |k: &str| p_client.get(k).and_then(Value::as_str).map(str::to_string);
    let user_agent = text("user_agent").or_else(|| {
        text("name").map(|n| match text("version") {
            Some(v) => format!("{n}/{v}"),
            None => n,
        })
    });
    let ip = text("ip")
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .map(Inet);
    Client { ip, user_agent }
}

fn elapsed_ms(start: Instant) -> i32 {
    start.elapsed().as_millis().min(i32::MAX as u128) as i32
}

/// Calls a tool for the key: the one entry point an MCP server needs.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
fn call_tool(
    p_api_key: Option<&str>,
    p_tool: Option<&str>,
    p_arguments: default!(Option<JsonB>, "'{}'"),
    p_client: default!(Option<JsonB>, "'{}'"),
) -> JsonbDatum {
    let start = Instant::now();
    let client = client_of(&p_client.map(|j| j.0).unwrap_or(Value::Null));
    let tool_name: String = p_tool.unwrap_or("").chars().take(200).collect();

    // Authentication. A refused key that exists is audited under its tenant.
    let key = match validate::authenticate(p_api_key.unwrap_or("")) {
        Ok(k) => k,
        Err(refused) => {
            if let Some((tenant_id, key_id)) = refused.key {
                let info = keys::in_scope("p_api_key", Some(key_id), Scope::Any);
                audit(
                    tenant_id,
                    info,
                    &tool_name,
                    None,
                    Some(format!(
                        "authentication failed: {}",
                        refused.refusal.reason()
                    )),
                    start,
                    &client,
                );
            }
            return failure(Kind::Authentication, INVALID_KEY, None);
        }
    };
    let info = keys::KeyInfo {
        id: key.key_id,
        tenant_id: key.tenant_id,
        name: key.name.clone(),
        key_prefix: p_api_key.unwrap_or("")[..16].to_string(),
        rate_limit: key.rate_limit,
    };
    let arguments = p_arguments.map(|j| j.0).unwrap_or_else(|| json!({}));
    let refuse = |kind: Kind, message: String, retry: Option<i32>, info: keys::KeyInfo| {
        audit(
            key.tenant_id,
            info,
            &tool_name,
            Some(&arguments),
            Some(message.clone()),
            start,
            &client,
        );
        failure(kind, &message, retry)
    };

    if tool_name.is_empty() {
        return refuse(
            Kind::Validation,
            "p_tool: must name a tool".into(),
            None,
            info,
        );
    }
    // Authorization, before existence: a key learns nothing about tools it may not call.
    if !tools::allows(&keys::stored_patterns(&key.allowed_tools), &tool_name) {
        return refuse(
            Kind::Permission,
            "Tool not allowed for this key".into(),
            None,
            info,
        );
    }
    let Some(tool) = registry::find(&tool_name) else {
        return refuse(
            Kind::NotFound,
            format!("Unknown tool: {tool_name}"),
            None,
            info,
        );
    };
    let decision = rate_limit::decide(&info, 1);
    if !decision.allowed {
        return refuse(
            Kind::RateLimit,
            "Rate limit exceeded".into(),
            Some(decision.retry_after_ms),
            info,
        );
    }
    if !arguments.is_object() {
        return refuse(
            Kind::Validation,
            "arguments: must be a JSON object".into(),
            None,
            info,
        );
    }
    if let Err(problem) = schema::check(&tool.name, &tool.input_schema, &arguments) {
        return refuse(
            Kind::Validation,
            format!("Invalid arguments: {problem}"),
            None,
            info,
        );
    }

    match runner::run(&tool.handler, &arguments) {
        runner::Outcome::Done(envelope) => {
            audit(
                key.tenant_id,
                info,
                &tool_name,
                Some(&arguments),
                None,
                start,
                &client,
            );
            envelope
        }
        runner::Outcome::Raised { sqlstate, message } => {
            let kind = classify(&sqlstate);
            // Internal errors keep their detail in the audit trail, not in the answer.
            let shown = if kind == Kind::Internal {
                format!("Tool {tool_name} failed (internal error {sqlstate})")
            } else {
                message.clone()
            };
            audit(
                key.tenant_id,
                info,
                &tool_name,
                Some(&arguments),
                Some(message),
                start,
                &client,
            );
            failure(kind, &shown, None)
        }
    }
}

fn audit(
    tenant_id: pgrx::Uuid,
    key: keys::KeyInfo,
    tool: &str,
    arguments: Option<&Value>,
    error: Option<String>,
    start: Instant,
    client: &Client,
) {
    usage_log::record(Usage {
        tenant_id,
        key,
        tool: if tool.is_empty() {
            "(none)".into()
        } else {
            tool.to_string()
        },
        arguments: arguments.cloned(),
        success: error.is_none(),
        error,
        response_time_ms: Some(elapsed_ms(start)),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    });
}

/// The tools this key may call, as MCP Tool objects: `{"tools": [...]}`.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
fn list_tools(p_api_key: Option<&str>) -> JsonbDatum {
    let key = match validate::authenticate(p_api_key.unwrap_or("")) {
        Ok(k) => k,
        Err(_) => return failure(Kind::Authentication, INVALID_KEY, None),
    };
    let patterns = keys::stored_patterns(&key.allowed_tools);
    let listed: Vec<Value> = registry::all()
        .into_iter()
        .filter(|t| tools::allows(&patterns, &t.name))
        .map(|t| {
            let title = t.title.clone().unwrap_or_else(|| t.name.clone());
            json!({
                "name": t.name,
                "title": title,
                "description": t.description,
                "inputSchema": t.input_schema,
                "annotations": {
                    "title": title,
                    "readOnlyHint": t.read_only,
                    "destructiveHint": t.destructive,
                    "idempotentHint": t.read_only,
                    "openWorldHint": false,
                },
            })
        })
        .collect();
    ok(json!({"tools": listed}))
}
