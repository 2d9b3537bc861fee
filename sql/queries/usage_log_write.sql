-- log_mcp_key_usage and call_tool's audit: in one statement the usage row, the
-- per-slot statistics, the activity_log row (when the tenant's activity logging is
-- on) and the toast queued for the notifier worker.
-- $1 tenant_id uuid, $2 key_id uuid, $3 tool text, $4 arguments jsonb (redacted),
-- $5 success boolean, $6 error text, $7 response_time_ms integer, $8 ip inet,
-- $9 user_agent text, $10 slot integer (this backend's), $11 key name text,
-- $12 key prefix text, $13 the toast's error text (what the client was told),
-- $14 boolean: also count a validation of the key (call_tool's, which authenticates
-- without its own counting statement).
-- Returns the usage row's id. Conflicts name the primary keys, whose columns differ
-- between 2.1.0 and 2.2.0 (tenant_id added), so one library serves both versions.
WITH cfg AS (
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
    ON CONFLICT ON CONSTRAINT mcp_key_usage_totals_pkey DO UPDATE
       SET requests = t.requests + 1,
           failures = t.failures + EXCLUDED.failures,
           response_ms_sum = t.response_ms_sum + EXCLUDED.response_ms_sum,
           response_ms_count = t.response_ms_count + EXCLUDED.response_ms_count,
           last_used_at = GREATEST(t.last_used_at, EXCLUDED.last_used_at)),
validated AS (
    INSERT INTO @s.mcp_key_usage_counters AS c (key_id, slot, tenant_id, usage_count, last_used_at)
    SELECT $2, $10, $1, 1, pg_catalog.statement_timestamp() WHERE $14
    ON CONFLICT ON CONSTRAINT mcp_key_usage_counters_pkey DO UPDATE
       SET usage_count = c.usage_count + 1,
           last_used_at = EXCLUDED.last_used_at),
minutes AS (
    INSERT INTO @s.mcp_key_usage_minutes AS m (key_id, minute, slot, tenant_id, requests)
    SELECT $2, pg_catalog.date_trunc('minute', log.created_at), $10, $1, 1 FROM log
    ON CONFLICT ON CONSTRAINT mcp_key_usage_minutes_pkey DO UPDATE SET requests = m.requests + 1),
activity AS (
    INSERT INTO @s.activity_log
        (tenant_id, user_name, action, entity_type, entity_id, entity_name, description, metadata)
    SELECT $1, 'MCP Server',
           CASE WHEN $5 THEN 'mcp_execute' ELSE 'mcp_error' END,
           'mcp_tool', $3, $3,
           CASE WHEN $5 THEN pg_catalog.format('Tool "%s" executed successfully', $3)
                ELSE pg_catalog.format('Tool "%s" execution failed: %s', $3, $6) END,
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
SELECT log.id FROM log
