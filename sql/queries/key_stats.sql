-- get_mcp_key_stats: all-time totals and top tools from the per-slot rollups, the
-- last 24 hours from per-minute counts plus the log's oldest partial minute.
-- $1 key_id uuid. Returns total, successful, failed, average ms, last 24 h,
-- top tools (jsonb), last used.
WITH bounds AS (
    SELECT pg_catalog.statement_timestamp() - interval '24 hours' AS since,
           pg_catalog.date_trunc('minute', pg_catalog.statement_timestamp() - interval '24 hours')
               + interval '1 minute' AS first_full_minute),
totals AS (
    SELECT COALESCE(sum(requests), 0)::bigint AS requests,
           COALESCE(sum(failures), 0)::bigint AS failures,
           sum(response_ms_sum) AS ms_sum,
           sum(response_ms_count) AS ms_count,
           max(last_used_at) AS last_logged
      FROM @s.mcp_key_usage_totals WHERE key_id = $1),
top_tools AS (
    SELECT COALESCE(pg_catalog.jsonb_agg(
               pg_catalog.jsonb_build_object('tool', tool_name, 'requests', n)
               ORDER BY n DESC, tool_name), '[]') AS tools
      FROM (SELECT tool_name, sum(requests)::bigint AS n
              FROM @s.mcp_key_usage_totals WHERE key_id = $1
             GROUP BY tool_name ORDER BY n DESC, tool_name LIMIT 5) t),
day AS (
    SELECT (SELECT COALESCE(sum(m.requests), 0) FROM @s.mcp_key_usage_minutes m
             WHERE m.key_id = $1 AND m.minute >= b.first_full_minute)
         + (SELECT count(*) FROM @s.mcp_key_usage_logs l
             WHERE l.key_id = $1 AND l.created_at > b.since
               AND l.created_at < b.first_full_minute) AS n
      FROM bounds b),
validated AS (
    SELECT max(last_used_at) AS at FROM @s.mcp_key_usage_counters WHERE key_id = $1)
SELECT totals.requests,
       totals.requests - totals.failures,
       totals.failures,
       CASE WHEN totals.ms_count > 0
            THEN round(totals.ms_sum::numeric / totals.ms_count, 2) END,
       day.n::bigint,
       top_tools.tools,
       GREATEST(totals.last_logged, validated.at)
  FROM totals, top_tools, day, validated
