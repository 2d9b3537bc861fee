//! `log_mcp_key_usage`: one statement writes the usage row, the statistics, the
//! activity_log row (when the tenant's activity logging is on) and queues the
//! `mcp_activity` notification for the notifier worker. Arguments and texts are
//! redacted and bounded first: whatever a client sends, a row stays small.

use super::notifier;
use crate::access;
use crate::errors;
use crate::jsonb_datum::JsonbDatum;
use crate::keys;
use crate::spi::{self, Statement, BOOL, INT4, JSONB, TEXT, UUID};
use mcp_auth_core::{arguments, redact};
use pgrx::datum::Inet;
use pgrx::prelude::*;
use pgrx::{JsonB, PgBuiltInOids, Uuid};

const INET: PgOid = PgOid::BuiltIn(PgBuiltInOids::INETOID);

// $1 tenant, $2 key, $3 tool, $4 args, $5 success, $6 error, $7 ms, $8 ip, $9 agent,
// $10 slot, $11 key name, $12 key prefix, $13 the payload's error (what the client was told).
const WRITE: Statement = Statement {
    sql: "WITH cfg AS (
              SELECT COALESCE((SELECT activity_logging FROM @s.mcp_server_config WHERE tenant_id = $1),
                              true) AS activity_logging),
          log AS (
              INSERT INTO @s.mcp_key_usage_logs
                  (tenant_id, key_id, tool_name, tool_arguments, success, error_message,
                   response_time_ms, ip_address, user_agent)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
              RETURNING id, created_at),
          totals AS (
              INSERT INTO @s.mcp_key_usage_totals AS t
                  (key_id, tool_name, slot, tenant_id, requests, failures,
                   response_ms_sum, response_ms_count, last_used_at)
              SELECT $2, $3, $10, $1, 1, CASE WHEN $5 THEN 0 ELSE 1 END,
                     COALESCE($7, 0), CASE WHEN $7 IS NULL THEN 0 ELSE 1 END, log.created_at
                FROM log
              ON CONFLICT (key_id, tool_name, slot) DO UPDATE
                 SET requests = t.requests + 1,
                     failures = t.failures + EXCLUDED.failures,
                     response_ms_sum = t.response_ms_sum + EXCLUDED.response_ms_sum,
                     response_ms_count = t.response_ms_count + EXCLUDED.response_ms_count,
                     last_used_at = GREATEST(t.last_used_at, EXCLUDED.last_used_at)),
          minutes AS (
              INSERT INTO @s.mcp_key_usage_minutes AS m (key_id, minute, slot, tenant_id, requests)
              SELECT $2, pg_catalog.date_trunc('minute', log.created_at), $10, $1, 1 FROM log
              ON CONFLICT (key_id, minute, slot) DO UPDATE SET requests = m.requests + 1),
          activity AS (
              INSERT INTO @s.activity_log
                  (tenant_id, user_name, action, entity_type, entity_id, entity_name, description, metadata)
              SELECT $1, 'MCP Server',
                     CASE WHEN $5 THEN 'mcp_execute' ELSE 'mcp_error' END,
                     'mcp_tool', $3, $3,
                     CASE WHEN $5 THEN pg_catalog.format('Tool \"%s\" executed successfully', $3)
                          ELSE pg_catalog.format('Tool \"%s\" execution failed: %s', $3, $6) END,
                     pg_catalog.jsonb_build_object(
                         'key_id', $2, 'key_name', $11, 'key_prefix', $12, 'tool', $3,
                         'arguments', $4, 'success', $5, 'error', $6, 'response_time_ms', $7,
                         'usage_log_id', log.id)
                FROM log, cfg WHERE cfg.activity_logging),
          -- The toast, for the notifier worker; bounded below NOTIFY's 8000-byte payload limit.
          queued AS (
              INSERT INTO @s.mcp_activity_outbox (tenant_id, payload)
              SELECT $1, pg_catalog.jsonb_build_object(
                         'id', log.id, 'tenant_id', $1, 'key_id', $2, 'key_prefix', $12,
                         'key_name', pg_catalog.left($11, 200), 'tool', $3, 'success', $5,
                         'action', CASE WHEN $5 THEN 'mcp_execute' ELSE 'mcp_error' END,
                         'response_time_ms', $7, 'error', $13,
                         'at', log.created_at)::text
                FROM log)
          SELECT log.id FROM log",
    args: &[
        UUID, UUID, TEXT, JSONB, BOOL, TEXT, INT4, INET, TEXT, INT4, TEXT, TEXT, TEXT,
    ],
    writes: true,
};

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

/// Writes `usage` (redacting and bounding it first); returns the usage row's id.
pub fn record(usage: Usage) -> Uuid {
    let arguments = match &usage.arguments {
        Arguments::None => None,
        Arguments::Kept(a) => Some(JsonB(redact::json(a))),
        Arguments::Withheld(why) => Some(JsonB(serde_json::json!({ "[withheld]": why }))),
    };
    let error = usage.error.as_deref().map(|e| bounded(e, MAX_ERROR));
    let notice = usage.notice.as_deref().map(|e| bounded(e, MAX_NOTICE));
    // A client that puts its key in the tool name must not get it stored either.
    let tool = bounded(&usage.tool, MAX_TOOL_NAME);
    let user_agent = usage
        .user_agent
        .as_deref()
        .map(|u| bounded(u, MAX_USER_AGENT));
    notifier::queued();
    spi::one(
        &WRITE,
        &[
            usage.key.tenant_id.into(),
            usage.key.id.into(),
            tool.as_str().into(),
            arguments.into(),
            usage.success.into(),
            error.into(),
            usage.response_time_ms.into(),
            usage.ip.into(),
            user_agent.into(),
            spi::backend_slot().into(),
            usage.key.name.as_str().into(),
            usage.key.key_prefix.as_str().into(),
            notice.into(),
        ],
    )
    .unwrap_or_else(|| pgrx::error!("mcp_key_usage_logs: insert returned no id"))
}

/// Logs one MCP request: the usage row, the activity_log row (when the tenant's
/// activity logging is on) and a `NOTIFY mcp_activity`, sent by the notifier worker
/// once this transaction commits. Arguments are stored with
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
    })
}
