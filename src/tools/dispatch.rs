//! The two MCP entry points. Both answer with an envelope (defined in
//! `mcp_auth_core::envelope`) and never raise for a client's mistake.
//!
//! `call_tool` is one round trip and one transaction, in one pass: authenticate
//! (keeping the key row, its parsed patterns and prefix), authorize, rate limit,
//! read and check the arguments, run the handler (as mcp_tool_runner, in a
//! subtransaction), then audit the outcome once. A failed handler's writes are
//! rolled back; its audit row stays.

use super::{guard, registry, runner};
use crate::audit::usage_log::{self, Arguments, Usage};
use crate::jsonb_datum::JsonbDatum;
use crate::keys::validate;
use crate::rate_limit;
use mcp_auth_core::envelope::{
    self, ErrorKind, INVALID_KEY, RATE_LIMITED, TOOL_NOT_ALLOWED, UNKNOWN_TOOL,
};
use mcp_auth_core::{arguments, tools};
use pgrx::datum::Inet;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::time::Instant;

fn reply(value: Value) -> JsonbDatum {
    JsonB(value).into()
}

/// A call that did not produce a result, on its way to the envelope and the audit row.
struct Failed {
    kind: ErrorKind,
    /// What the client is told.
    message: String,
    /// What the audit row keeps, when it says more than the client may see.
    detail: Option<String>,
    retry_after_ms: Option<i32>,
}

impl Failed {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Failed {
        Failed {
            kind,
            message: message.into(),
            detail: None,
            retry_after_ms: None,
        }
    }
}

/// What the server knows of its caller, for the audit row.
struct Client {
    ip: Option<Inet>,
    user_agent: Option<String>,
}

/// Reads `p_client`; anything unreadable (too large, too deep) counts as unknown.
fn client_of(p_client: Option<JsonbDatum>) -> Client {
    let value = p_client
        .and_then(|c| arguments::parse(&c.to_text()).ok())
        .unwrap_or(Value::Null);
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
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
#[search_path(pg_catalog, pg_temp)]
fn call_tool(
    p_api_key: Option<&str>,
    p_tool: Option<&str>,
    p_arguments: default!(Option<JsonbDatum>, "'{}'"),
    p_client: default!(Option<JsonbDatum>, "'{}'"),
) -> JsonbDatum {
    let start = Instant::now();
    // Nothing is written, so nothing is audited: the call never started.
    if let Some(problem) = guard::unfit_for_call() {
        return reply(envelope::failure(ErrorKind::Internal, problem, None));
    }
    let client = client_of(p_client);
    let tool_name: String = p_tool
        .unwrap_or("")
        .chars()
        .take(usage_log::MAX_TOOL_NAME)
        .collect();
    let audit = |key, arguments, failed: Option<&Failed>, validated| {
        usage_log::record(Usage {
            key,
            tool: if tool_name.is_empty() {
                "(none)".into()
            } else {
                tool_name.clone()
            },
            arguments,
            success: failed.is_none(),
            error: failed.map(|f| f.detail.clone().unwrap_or_else(|| f.message.clone())),
            notice: failed.map(|f| f.message.clone()),
            response_time_ms: Some(elapsed_ms(start)),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            validated,
        });
    };

    // A refused key that exists is audited under its tenant, with no arguments.
    let key = match validate::authenticate(p_api_key.unwrap_or(""), validate::Count::WithAudit) {
        Ok(k) => k,
        Err(refused) => {
            if let Some(info) = refused.key {
                let failed = Failed {
                    detail: Some(format!(
                        "authentication failed: {}",
                        refused.refusal.reason()
                    )),
                    ..Failed::new(ErrorKind::Authentication, INVALID_KEY)
                };
                audit(info, Arguments::None, Some(&failed), false);
            }
            return reply(envelope::failure(
                ErrorKind::Authentication,
                INVALID_KEY,
                None,
            ));
        }
    };
    let mut kept = Arguments::None;
    let outcome = run(&key, &tool_name, p_arguments, &mut kept);
    match outcome {
        Ok(result) => {
            audit(key.key, kept, None, true);
            result
        }
        Err(failed) => {
            audit(key.key, kept, Some(&failed), true);
            reply(envelope::failure(
                failed.kind,
                &failed.message,
                failed.retry_after_ms,
            ))
        }
    }
}

fn limited(d: rate_limit::Decision) -> Failed {
    Failed {
        retry_after_ms: Some(d.retry_after_ms),
        ..Failed::new(ErrorKind::RateLimit, RATE_LIMITED)
    }
}

/// Everything after authentication. `kept` says what of the arguments to audit:
/// nothing for a call refused before they are read (permission, unknown tool, a full
/// window) or by the limit after its handler, so refused calls store bounded rows.
fn run(
    key: &validate::Authenticated,
    tool_name: &str,
    p_arguments: Option<JsonbDatum>,
    kept: &mut Arguments,
) -> Result<JsonbDatum, Failed> {
    if tool_name.is_empty() {
        return Err(Failed::new(
            ErrorKind::Validation,
            "p_tool: must name a tool",
        ));
    }
    // Authorization, before existence: a key learns nothing about tools it may not call.
    if !tools::allows(&key.patterns, tool_name) {
        return Err(Failed::new(ErrorKind::Permission, TOOL_NOT_ALLOWED));
    }
    let Some(tool) = registry::find(tool_name) else {
        return Err(Failed::new(
            ErrorKind::NotFound,
            format!("{UNKNOWN_TOOL}{tool_name}"),
        ));
    };
    // A key whose committed calls fill its window is refused before anything runs.
    if let Some(full) = rate_limit::full(&key.key, 1) {
        return Err(limited(full));
    }
    // Bad arguments count against the limit too: decided (briefly holding the
    // key's turn, up to the commit) before the refusal is returned.
    let invalid = |message: String| match rate_limit::decide(&key.key, 1) {
        d if !d.allowed => limited(d),
        _ => Failed::new(ErrorKind::Validation, message),
    };
    // The handler gets the caller's jsonb as given; the text is read for the checks.
    let datum = p_arguments.unwrap_or_else(|| JsonB(json!({})).into());
    let text = datum.to_text();
    let args = arguments::parse(&text).map_err(|why| {
        *kept = Arguments::Withheld(why.to_string());
        invalid(why.to_string())
    })?;
    let checked = tool.check(&args);
    *kept = Arguments::Kept(args); // audited whether or not they pass
    checked.map_err(|problem| invalid(format!("Invalid arguments: {problem}")))?;

    // The exact decision comes after the handler: one key's calls take turns only
    // from that decision to their commit, never for a slow handler's whole run.
    match runner::run(&tool.handler, datum, || rate_limit::decide(&key.key, 1)) {
        runner::Outcome::Done(envelope) => Ok(envelope),
        runner::Outcome::Refused(decision) => {
            *kept = Arguments::None;
            Err(limited(decision))
        }
        runner::Outcome::Raised { code, message } => {
            let kind = runner::classify(code);
            // Internal errors keep their detail in the audit trail, not in the answer.
            let shown = if kind == ErrorKind::Internal {
                format!(
                    "Tool {tool_name} failed (internal error {})",
                    runner::sqlstate(code)
                )
            } else {
                mcp_auth_core::redact::cap(&message, usage_log::MAX_ERROR)
            };
            Err(Failed {
                detail: Some(message),
                ..Failed::new(kind, shown)
            })
        }
    }
}

/// The tools this key may call, as MCP Tool objects: `{"tools": [...]}`.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn list_tools(p_api_key: Option<&str>) -> JsonbDatum {
    let key = match validate::authenticate(p_api_key.unwrap_or(""), validate::Count::Now) {
        Ok(k) => k,
        Err(_) => {
            return reply(envelope::failure(
                ErrorKind::Authentication,
                INVALID_KEY,
                None,
            ))
        }
    };
    let listed: Vec<Value> = registry::all()
        .into_iter()
        .filter(|t| tools::allows(&key.patterns, &t.name))
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
    reply(envelope::ok(json!({ "tools": listed })))
}
