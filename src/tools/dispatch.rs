//! The two MCP entry points. Both answer with an envelope (defined in
//! `mcp_auth_core::envelope`) and never raise for a client's mistake.
//!
//! `call_tool` is one round trip, in one pass: authenticate (keeping the key row,
//! its parsed patterns and prefix), authorize, rate limit (in shared memory), read
//! and check the arguments, run the handler (as mcp_tool_runner, in a
//! subtransaction), then audit the outcome once, through the ledger, before
//! anything is returned. A failed handler's writes are rolled back; its audit entry
//! stays, and so does every entry, whatever the caller's transaction does next.

use super::{registry, runner};
use crate::audit::usage_log::{self, Arguments, Usage};
use crate::jsonb_datum::JsonbDatum;
use crate::keys::{validate, KeyInfo};
use crate::ledger::{self, Down};
use crate::rate_limit;
use mcp_auth_core::arguments;
use mcp_auth_core::envelope::{
    self, ErrorKind, INVALID_KEY, RATE_LIMITED, TOOL_NOT_ALLOWED, UNKNOWN_TOOL,
};
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

/// What a call ended with, its audit entry written or not.
enum Ending {
    /// Audited already (the result is returned only once its entry is durable).
    Answered(JsonbDatum),
    /// To be audited, then returned as an error envelope.
    Failed(Failed),
    /// The ledger could not make the entry durable: nothing may be returned.
    Unaudited(Down),
}

/// One call on its way: what its audit entry needs besides the outcome.
struct Call {
    start: Instant,
    tool_name: String,
    client: Client,
}

impl Call {
    fn audit(
        &self,
        key: KeyInfo,
        arguments: Arguments,
        failed: Option<&Failed>,
        xact_id: Option<String>,
        charge: Option<(i32, i64)>,
    ) -> Result<(), Down> {
        usage_log::record(Usage {
            key,
            tool: if self.tool_name.is_empty() {
                "(none)".into()
            } else {
                self.tool_name.clone()
            },
            arguments,
            success: failed.is_none(),
            error: failed.map(|f| f.detail.clone().unwrap_or_else(|| f.message.clone())),
            notice: failed.map(|f| f.message.clone()),
            response_time_ms: Some(elapsed_ms(self.start)),
            ip: self.client.ip.clone(),
            user_agent: self.client.user_agent.clone(),
            xact_id,
            charge,
        })
        .map(|_| ())
    }
}

fn unaudited(down: Down) -> JsonbDatum {
    reply(envelope::failure(ErrorKind::Internal, down.message(), None))
}

/// Calls a tool for the key: the one entry point an MCP server needs. Works in any
/// transaction, statement or protocol shape: the call's audit entry and rate-limit
/// charge are durable (through the ledger) before anything is returned, and the
/// tool's own writes stay in the caller's transaction, whose id the entry records.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn call_tool(
    p_api_key: Option<&str>,
    p_tool: Option<&str>,
    p_arguments: default!(Option<JsonbDatum>, "'{}'"),
    p_client: default!(Option<JsonbDatum>, "'{}'"),
) -> JsonbDatum {
    let mut call = Call {
        start: Instant::now(),
        client: client_of(p_client),
        tool_name: p_tool
            .unwrap_or("")
            .chars()
            .take(usage_log::MAX_TOOL_NAME)
            .collect(),
    };
    // A stuck ledger refuses before anything runs.
    if let Some(down) = ledger::stalled() {
        return unaudited(down);
    }
    // A refused key that exists is audited under its tenant, with no arguments.
    let key = match validate::authenticate(p_api_key.unwrap_or("")) {
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
                if let Err(down) = call.audit(info, Arguments::None, Some(&failed), None, None) {
                    return unaudited(down);
                }
            }
            return reply(envelope::failure(
                ErrorKind::Authentication,
                INVALID_KEY,
                None,
            ));
        }
    };
    if let Some(grant) = &key.oauth {
        // The audit row names the OAuth client the token was issued to.
        let via = format!("OAuth client {}", grant.client);
        call.client.user_agent = Some(match call.client.user_agent.take() {
            Some(agent) => format!("{agent}; {via}"),
            None => via,
        });
    }
    let mut kept = Arguments::None;
    let mut charge = None;
    match run(&call, &key, p_arguments, &mut kept, &mut charge) {
        Ending::Answered(result) => result,
        Ending::Unaudited(down) => unaudited(down),
        Ending::Failed(failed) => {
            match call.audit(key.key.clone(), kept, Some(&failed), None, charge) {
                Ok(()) => reply(envelope::failure(
                    failed.kind,
                    &failed.message,
                    failed.retry_after_ms,
                )),
                Err(down) => unaudited(down),
            }
        }
    }
}

fn limited(d: rate_limit::Decision) -> Failed {
    Failed {
        retry_after_ms: Some(d.retry_after_ms),
        ..Failed::new(ErrorKind::RateLimit, RATE_LIMITED)
    }
}

/// Everything after authentication. `kept` says what of the arguments to audit
/// (nothing for a call refused before they are read), `charge` the rate-limit
/// charge the call made; a failure is audited by the caller with both.
fn run(
    call: &Call,
    key: &validate::Authenticated,
    p_arguments: Option<JsonbDatum>,
    kept: &mut Arguments,
    charge: &mut Option<(i32, i64)>,
) -> Ending {
    let tool_name = call.tool_name.as_str();
    if tool_name.is_empty() {
        return Ending::Failed(Failed::new(
            ErrorKind::Validation,
            "p_tool: must name a tool",
        ));
    }
    // Authorization, before existence: a key learns nothing about tools it may not call.
    if !key.allows(tool_name) {
        return Ending::Failed(Failed::new(ErrorKind::Permission, TOOL_NOT_ALLOWED));
    }
    let Some(tool) = registry::find(tool_name) else {
        return Ending::Failed(Failed::new(
            ErrorKind::NotFound,
            format!("{UNKNOWN_TOOL}{tool_name}"),
        ));
    };
    // Every call that names a tool it may call is charged, whatever follows.
    let decision = rate_limit::decide(&key.key, 1);
    if !decision.allowed {
        return Ending::Failed(limited(decision));
    }
    *charge = Some((1, decision.at));
    // The handler gets the caller's jsonb as given; the text is read for the checks.
    let datum = p_arguments.unwrap_or_else(|| JsonB(json!({})).into());
    let text = datum.to_text();
    let args = match arguments::parse(&text) {
        Ok(a) => a,
        Err(why) => {
            *kept = Arguments::Withheld(why.to_string());
            return Ending::Failed(Failed::new(ErrorKind::Validation, why.to_string()));
        }
    };
    let checked = tool.check(&args);
    *kept = Arguments::Kept(args); // audited whether or not they pass
    if let Err(problem) = checked {
        return Ending::Failed(Failed::new(
            ErrorKind::Validation,
            format!("Invalid arguments: {problem}"),
        ));
    }

    // The handler's writes stay only once the call's entry, with the transaction
    // that holds them, is durable.
    let mut down = None;
    let outcome = runner::run(&tool.handler, datum, |_| {
        let arguments = std::mem::replace(kept, Arguments::None);
        let audited = call.audit(key.key.clone(), arguments, None, ledger::xact_id(), *charge);
        down = audited.err();
        down.is_none()
    });
    match outcome {
        runner::Outcome::Done(envelope) => Ending::Answered(envelope),
        runner::Outcome::Withheld => Ending::Unaudited(down.unwrap_or(Down::Refused)),
        runner::Outcome::Raised { code, message } => {
            let kind = runner::classify(code);
            // A data exception quotes the value it refused, which may be anything the
            // client sent: neither the answer nor the trail repeats it.
            let message = if runner::is_data_exception(code) {
                mcp_auth_core::redact::without_values(&message)
            } else {
                message
            };
            // Internal errors keep their detail in the audit trail, not in the answer.
            let shown = if kind == ErrorKind::Internal {
                format!(
                    "Tool {tool_name} failed (internal error {})",
                    runner::sqlstate(code)
                )
            } else {
                mcp_auth_core::redact::cap(&message, usage_log::MAX_ERROR)
            };
            Ending::Failed(Failed {
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
    let key = match validate::authenticate(p_api_key.unwrap_or("")) {
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
        .filter(|t| key.allows(&t.name))
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
