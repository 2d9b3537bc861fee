-- The ledger writer's statement for a batch of usage entries (call_tool's audits,
-- log_mcp_key_usage's rows): in one statement the usage rows, the statistics, the
-- activity_log rows (when the tenant's activity logging is on) and the rate-limit
-- charges; it returns the toasts to notify. (Validation counts, call_tool's
-- included, come through ledger/counts.rs.)
-- $1 jsonb: an array of entries as the backends made them (audit/usage_log.rs): id,
-- tenant_id, key_id, tool, arguments (redacted), success, error, notice (what the
-- client was told), response_time_ms, ip, user_agent, key_name, key_prefix,
-- xact_id, at and charged_at (µs since 2000-01-01 UTC), cost; with the chains, the
-- activity row's activity_id when the tenant logs activity.
-- $2 bigint[] and $3 bytea, with the chains: the links the writer made
-- (ledger/chain.rs, Links), by the entry's place in $1.
-- The activity rows and the toasts follow the queue (as the chains do); the log rows
-- need no order (no sort per round). The statistics are summed per row they
-- update, since one statement may not update a row twice. They go to slot 0, the
-- writer's.
-- Lines marked "2.3.0" are left out for a database still at 2.1.0 or 2.2.0 (one
-- library serves a database before its ALTER EXTENSION UPDATE), which has neither
-- the xact_id column nor the charges table. Lines marked "chain" store the chains'
-- links (sql/audit_chain.sql); they are kept from 2.4.0 on while
-- mcp_auth.audit_chain is on, and the lines marked "no chain" only otherwise.
WITH e AS (
    SELECT a.ord, (a.x->>'id')::uuid AS id, (a.x->>'tenant_id')::uuid AS tenant_id,
           (a.x->>'key_id')::uuid AS key_id, a.x->>'tool' AS tool,
           NULLIF(a.x->'arguments', 'null') AS arguments, (a.x->>'success')::boolean AS success,
           a.x->>'error' AS error, a.x->>'notice' AS notice,
           (a.x->>'response_time_ms')::integer AS response_time_ms,
           (a.x->>'ip')::inet AS ip, a.x->>'user_agent' AS user_agent,
           a.x->>'key_name' AS key_name, a.x->>'key_prefix' AS key_prefix,
           (a.x->>'xact_id')::xid8 AS xact_id, -- 2.3.0
           $2[(3 * a.ord - 2)::integer] AS seq, -- chain
           timestamptz '2000-01-01 00:00:00+00' + $2[(3 * a.ord - 1)::integer] * interval '1 microsecond' AS created_at, -- chain
           pg_catalog.substr($3, (128 * a.ord - 127)::integer, 32) AS prev_hash, -- chain
           pg_catalog.substr($3, (128 * a.ord - 95)::integer, 32) AS hash, -- chain
           (a.x->>'activity_id')::uuid AS activity_id, NULLIF($2[(3 * a.ord)::integer], 0) AS activity_seq, -- chain
           pg_catalog.substr($3, (128 * a.ord - 63)::integer, 32) AS activity_prev, -- chain
           pg_catalog.substr($3, (128 * a.ord - 31)::integer, 32) AS activity_hash, -- chain
           (a.x->>'cost')::integer AS cost,
           timestamptz '2000-01-01 00:00:00+00' + (a.x->>'at')::bigint * interval '1 microsecond' AS at,
           timestamptz '2000-01-01 00:00:00+00'
               + (a.x->>'charged_at')::bigint * interval '1 microsecond' AS charged_at
      FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS a(x, ord)),
c AS (SELECT e.*, e.at AS created_at FROM e), -- no chain
c AS (SELECT e.* FROM e), -- chain
-- The activity rows, when the tenant's activity logging is on, at their usage row's
-- time. (With the chains, the writer has hashed them as they are made here, and
-- says which to make: it read the tenant's setting with its heads.)
a AS (
    SELECT c.ord, c.tenant_id,
           pg_catalog.gen_random_uuid() AS id, -- no chain
           c.activity_id AS id, c.activity_seq AS seq, c.activity_prev AS prev_hash, c.activity_hash AS hash, -- chain
           NULL::uuid AS user_id, 'MCP Server'::text AS user_name,
           CASE WHEN c.success THEN 'mcp_execute' ELSE 'mcp_error' END AS action,
           'mcp_tool'::text AS entity_type, c.tool AS entity_id, c.tool AS entity_name,
           CASE WHEN c.success THEN pg_catalog.format('Tool "%s" executed successfully', c.tool)
                ELSE pg_catalog.format('Tool "%s" execution failed: %s', c.tool, c.error) END
               AS description,
           pg_catalog.jsonb_build_object(
               'key_id', c.key_id, 'key_name', c.key_name, 'key_prefix', c.key_prefix,
               'tool', c.tool, 'arguments', c.arguments, 'success', c.success,
               'error', c.error, 'response_time_ms', c.response_time_ms, 'usage_log_id', c.id)
               AS metadata,
           c.created_at
      FROM c
      LEFT JOIN @s.mcp_server_config cfg ON cfg.tenant_id = c.tenant_id -- no chain
     WHERE COALESCE(cfg.activity_logging, true)), -- no chain
     WHERE c.activity_id IS NOT NULL), -- chain
charged AS ( -- 2.3.0
    INSERT INTO @s.mcp_rate_limit_charges (tenant_id, key_id, at, cost) -- 2.3.0
    SELECT e.tenant_id, e.key_id, e.charged_at, e.cost FROM e WHERE e.cost > 0), -- 2.3.0
log AS (
    INSERT INTO @s.mcp_key_usage_logs
        (id, tenant_id, key_id, tool_name, tool_arguments, success, error_message,
         response_time_ms, ip_address, user_agent,
         xact_id, -- 2.3.0
         seq, prev_hash, hash, -- chain
         created_at)
    SELECT c.id, c.tenant_id, c.key_id, c.tool, c.arguments, c.success, c.error,
           c.response_time_ms, c.ip, c.user_agent,
           c.xact_id, -- 2.3.0
           c.seq, c.prev_hash, c.hash, -- chain
           c.created_at
      FROM c),
totals AS (
    INSERT INTO @s.mcp_key_usage_totals AS t
        (key_id, tool_name, slot, tenant_id, requests, failures,
         response_ms_sum, response_ms_count, last_used_at)
    SELECT e.key_id, e.tool, 0, e.tenant_id, count(*), count(*) FILTER (WHERE NOT e.success),
           COALESCE(sum(e.response_time_ms), 0), count(e.response_time_ms), max(e.at)
      FROM e GROUP BY e.key_id, e.tool, e.tenant_id
    ON CONFLICT ON CONSTRAINT mcp_key_usage_totals_pkey DO UPDATE
       SET requests = t.requests + EXCLUDED.requests,
           failures = t.failures + EXCLUDED.failures,
           response_ms_sum = t.response_ms_sum + EXCLUDED.response_ms_sum,
           response_ms_count = t.response_ms_count + EXCLUDED.response_ms_count,
           last_used_at = GREATEST(t.last_used_at, EXCLUDED.last_used_at)),
minutes AS (
    INSERT INTO @s.mcp_key_usage_minutes AS m (key_id, minute, slot, tenant_id, requests)
    SELECT e.key_id, pg_catalog.date_trunc('minute', e.at), 0, e.tenant_id, count(*) FROM e
     GROUP BY e.key_id, pg_catalog.date_trunc('minute', e.at), e.tenant_id
    ON CONFLICT ON CONSTRAINT mcp_key_usage_minutes_pkey DO UPDATE
       SET requests = m.requests + EXCLUDED.requests),
activity AS (
    INSERT INTO @s.activity_log
        (id, tenant_id, user_id, user_name, action, entity_type, entity_id, entity_name,
         description, metadata,
         seq, prev_hash, hash, -- chain
         created_at)
    SELECT a.id, a.tenant_id, a.user_id, a.user_name, a.action, a.entity_type, a.entity_id,
           a.entity_name, a.description, a.metadata,
           a.seq, a.prev_hash, a.hash, -- chain
           a.created_at
      FROM a ORDER BY a.ord)
-- The toasts, which the writer sends as NOTIFY mcp_activity before it commits (in
-- queue order); bounded below NOTIFY's 8000-byte payload limit.
SELECT pg_catalog.jsonb_build_object(
           'id', e.id, 'tenant_id', e.tenant_id, 'key_id', e.key_id, 'key_prefix', e.key_prefix,
           'key_name', pg_catalog.left(e.key_name, 200), 'tool', e.tool, 'success', e.success,
           'action', CASE WHEN e.success THEN 'mcp_execute' ELSE 'mcp_error' END,
           'response_time_ms', e.response_time_ms, 'error', e.notice,
           'at', e.at)::text
  FROM e ORDER BY e.ord
