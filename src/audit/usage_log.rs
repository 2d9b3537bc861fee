//! `log_mcp_key_usage` and call_tool's audit: one ledger entry, which the ledger's
//! writer turns into the usage row, the statistics, the activity_log row (when the
//! tenant's activity logging is on), the queued `mcp_activity` notification and the
//! call's rate-limit charge, durable before the caller goes on (sql/queries/
//! ledger_write.sql). Arguments and texts are redacted and bounded first: whatever
//! a client sends, a row stays small.

use crate::access;
use crate::errors;
use crate::jsonb_datum::JsonbDatum;
use crate::keys;
use crate::ledger::{self, Down};
use mcp_auth_core::{arguments, redact};
use pgrx::datum::Inet;
use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::json;

/// Longest stored texts, in bytes; longer ones are cut with a visible marker.
pub const MAX_TOOL_NAME: usize = 200;
pub const MAX_ERROR: usize = 2000;
pub const MAX_USER_AGENT: usize = 256;
/// The `error` of a notification: what the client was told, shortened.
const MAX_NOTICE: usize = 200;

/// A request to record, as the caller gave it.
pub struct Usage {
    pub key: keys::KeyInfo,
    pub tool: String,
    pub arguments: Arguments,
    pub success: bool,
    /// The whole error, for the usage and activity rows.
    pub error: Option<String>,
    /// What the client was told, for the notification (every listener sees it).
    pub notice: Option<String>,
    pub response_time_ms: Option<i32>,
    pub ip: Option<Inet>,
    pub user_agent: Option<String>,
    /// The calling transaction's id, when the call's effects are in it.
    pub xact_id: Option<String>,
    /// The rate-limit charge the call made: cost and when (µs since 2000-01-01).
    pub charge: Option<(i32, i64)>,
}

/// What of a call's arguments is stored.
pub enum Arguments {
    /// Nothing (refused calls: no key, no permission, over the rate limit).
    None,
    /// The arguments, bounded already (at most `arguments::MAX_BYTES`); redacted here.
    Kept(serde_json::Value),
    /// Arguments refused unread: only why (`{"[withheld]": "arguments: must be ..."}`).
    Withheld(String),
}

fn bounded(text: &str, max: usize) -> String {
    redact::cap(&redact::text(text), max)
}

/// Makes `usage` durable through the ledger (redacting and bounding it first);
/// returns the usage row's id.
pub fn record(usage: Usage) -> Result<Uuid, Down> {
    let arguments = match &usage.arguments {
        Arguments::None => serde_json::Value::Null,
        Arguments::Kept(a) => redact::json(a),
        Arguments::Withheld(why) => json!({ "[withheld]": why }),
    };
    let error = usage.error.as_deref().map(|e| bounded(e, MAX_ERROR));
    let notice = usage.notice.as_deref().map(|e| bounded(e, MAX_NOTICE));
    // A client that puts its key in the tool name must not get it stored either.
    let tool = bounded(&usage.tool, MAX_TOOL_NAME);
    let user_agent = usage
        .user_agent
        .as_deref()
        .map(|u| bounded(u, MAX_USER_AGENT));
    let id = Uuid::from_bytes(*uuid::Uuid::new_v4().as_bytes());
    let (cost, charged_at) = usage.charge.unwrap_or((0, 0));
    let entry = json!({
        "kind": "usage",
        "id": id.to_string(),
        "tenant_id": usage.key.tenant_id.to_string(),
        "key_id": usage.key.id.to_string(),
        "tool": tool,
        "arguments": arguments,
        "success": usage.success,
        "error": error,
        "notice": notice,
        "response_time_ms": usage.response_time_ms,
        "ip": usage.ip.map(|i| i.0),
        "user_agent": user_agent,
        "key_name": usage.key.name,
        "key_prefix": usage.key.key_prefix,
        "xact_id": usage.xact_id,
        "at": ledger::now_us(),
        "cost": cost,
        "charged_at": charged_at,
    });
    ledger::write(&entry).map(|()| id)
}

/// Logs one MCP request: the usage row, the activity_log row (when the tenant's
/// activity logging is on) and a `NOTIFY mcp_activity`, sent by the notifier worker.
/// Durable when it returns, whatever becomes of the caller's transaction. Arguments are stored with
/// secret-looking properties replaced by "[redacted]". An mcp_client session may only
/// log for the key it validated in this transaction.
#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn log_mcp_key_usage(
    p_tenant_id: Option<Uuid>,
    p_key_id: Option<Uuid>,
    p_tool_name: Option<String>,
    p_tool_arguments: default!(Option<JsonbDatum>, "NULL"),
    p_success: default!(Option<bool>, true),
    p_error_message: default!(Option<String>, "NULL"),
    p_response_time_ms: default!(Option<i32>, "NULL"),
    p_ip_address: default!(Option<Inet>, "NULL"),
    p_user_agent: default!(Option<String>, "NULL"),
) -> Uuid {
    let tenant_id = p_tenant_id.unwrap_or_else(|| errors::required("p_tenant_id"));
    let key = keys::in_scope("p_key_id", p_key_id, access::scope());
    if key.tenant_id != tenant_id {
        errors::bad_param("p_key_id", "the key does not belong to p_tenant_id");
    }
    let tool = p_tool_name.unwrap_or_else(|| errors::required("p_tool_name"));
    if tool.trim().is_empty() || tool.len() > 200 {
        errors::bad_param("p_tool_name", "must be 1 to 200 characters");
    }
    if let Some(ms) = p_response_time_ms.filter(|ms| *ms < 0) {
        errors::bad_param(
            "p_response_time_ms",
            format!("must not be negative (got {ms})"),
        );
    }
    let arguments = match p_tool_arguments.map(|a| arguments::parse(&a.to_text())) {
        None => Arguments::None,
        Some(Ok(a)) => Arguments::Kept(a),
        // Not an error: the call being logged happened; its arguments are not kept.
        Some(Err(why)) => Arguments::Withheld(why.to_string()),
    };
    record(Usage {
        key,
        tool,
        arguments,
        success: p_success.unwrap_or(true),
        notice: p_error_message.clone(),
        error: p_error_message,
        response_time_ms: p_response_time_ms,
        ip: p_ip_address,
        user_agent: p_user_agent,
        xact_id: None,
        charge: None,
    })
    .unwrap_or_else(|down| errors::internal(down.message()))
}
