-- The audit trail: usage rows, activity rows, redaction, statistics and the limiter.
SET mcp_auth.bcrypt_cost = 4;
\set tenant '''a1000000-0000-0000-0000-0000000000a1'''
SELECT key_id, api_key, key_prefix FROM generate_mcp_key(:tenant, 'Audited', p_rate_limit := 3) \gset k_

-- A success and a failure, as the MCP server logs them.
SELECT log_mcp_key_usage(
    p_tenant_id := :tenant, p_key_id := :'k_key_id', p_tool_name := 'fetch_jobs',
    p_tool_arguments := '{"status": "in_progress", "limit": 50}', p_success := true,
    p_response_time_ms := 45, p_ip_address := '192.0.2.10', p_user_agent := 'Claude Desktop'
) IS NOT NULL AS logged;
SELECT log_mcp_key_usage(:tenant, :'k_key_id', 'update_job', '{"id": "J-1001"}', false,
                         'Job not found', 12) IS NOT NULL AS logged;
SELECT tool_name, tool_arguments, success, error_message, response_time_ms, ip_address, user_agent
  FROM mcp_key_usage_logs WHERE key_id = :'k_key_id' ORDER BY created_at;
-- The Integration Guide's activity-log view of the same calls.
SELECT action, entity_type, entity_name, user_name, description,
       metadata - 'key_id' - 'usage_log_id' - 'key_prefix' AS metadata,
       metadata->>'key_prefix' = :'k_key_prefix' AS prefix_only
  FROM activity_log WHERE tenant_id = :tenant ORDER BY created_at;

-- Secrets in arguments (any name, any depth) and keys in any text are never stored.
SELECT log_mcp_key_usage(:tenant, :'k_key_id', 'create_job',
    jsonb_build_object('name', 'Bracket', 'API_KEY', :'k_api_key', 'nested',
        jsonb_build_object('Password', 'pw', 'refresh_token', 'tok', 'list', jsonb_build_array(:'k_api_key'))),
    false, 'refused key ' || :'k_api_key', 3, NULL, 'agent with ' || :'k_api_key') IS NOT NULL AS logged;
SELECT tool_arguments #- '{nested,list}' AS tool_arguments,
       tool_arguments->'nested'->'list'->>0 = :'k_key_prefix' || '[redacted]' AS listed_key_cut,
       error_message = 'refused key ' || :'k_key_prefix' || '[redacted]' AS error_cut,
       user_agent = 'agent with ' || :'k_key_prefix' || '[redacted]' AS agent_cut
  FROM mcp_key_usage_logs WHERE tool_name = 'create_job';
-- Even a key pasted as the tool name (logged under another key of the tenant).
SELECT key_id AS p_key_id FROM generate_mcp_key(:tenant, 'Pasted') \gset
SELECT log_mcp_key_usage(:tenant, :'p_key_id', :'k_api_key', NULL, false, 'Unknown tool: ' || :'k_api_key') IS NOT NULL AS logged;
SELECT tool_name = :'k_key_prefix' || '[redacted]' AS tool_name_cut FROM mcp_key_usage_logs
 WHERE key_id = :'p_key_id';
SELECT count(*) AS rows_holding_the_key FROM (
    SELECT x::text AS t FROM mcp_key_usage_logs x UNION ALL SELECT x::text FROM activity_log x
) s WHERE position(:'k_api_key' IN t) > 0 OR t LIKE '%"pw"%' OR t LIKE '%"tok"%';

-- Statistics.
SELECT total_requests, successful_requests, failed_requests, avg_response_time_ms,
       last_24h_requests, most_used_tools, last_used_at IS NOT NULL AS used
  FROM get_mcp_key_stats(:'k_key_id');
SELECT * FROM get_mcp_key_stats(gen_random_uuid());
SELECT * FROM get_mcp_key_stats(NULL);

-- Activity logging off: usage rows and statistics go on, activity rows stop.
SET mcp_auth.tenant_id = :tenant;
SELECT activity_logging FROM update_mcp_server_config(p_activity_logging := false);
SELECT log_mcp_key_usage(:tenant, :'k_key_id', 'fetch_parts') IS NOT NULL AS logged;
SELECT (SELECT count(*) FROM activity_log WHERE tenant_id = :tenant) AS activity_rows,
       (SELECT total_requests FROM get_mcp_key_stats(:'k_key_id')) AS total_requests;
SELECT activity_logging FROM update_mcp_server_config(p_activity_logging := true);
RESET mcp_auth.tenant_id;

-- Bad arguments are named.
SELECT log_mcp_key_usage(:tenant, :'k_key_id', '');
SELECT log_mcp_key_usage(:tenant, :'k_key_id', 'fetch_jobs', NULL, true, NULL, -1);
SELECT log_mcp_key_usage(NULL, :'k_key_id', 'fetch_jobs');
SELECT log_mcp_key_usage('a2000000-0000-0000-0000-0000000000a2', :'k_key_id', 'fetch_jobs');
SELECT log_mcp_key_usage(:tenant, gen_random_uuid(), 'fetch_jobs');

-- The rate limiter: 3 per minute, costs add up, refusals say when to retry.
SELECT allowed, rate_limit, remaining, retry_after_ms FROM check_mcp_rate_limit(:'k_key_id');
SELECT allowed, rate_limit, remaining, retry_after_ms FROM check_mcp_rate_limit(:'k_key_id', 2);
SELECT allowed, remaining, retry_after_ms BETWEEN 59000 AND 60000 AS retry_within_the_minute
  FROM check_mcp_rate_limit(:'k_key_id');
-- Every accepted charge is durable (the window itself is in shared memory; a
-- restart loads it back from these rows: tests/ledger/run.sh).
SELECT count(*) AS charges_kept, sum(cost) AS cost_kept FROM mcp_rate_limit_charges WHERE key_id = :'k_key_id';
SELECT * FROM check_mcp_rate_limit(:'k_key_id', 0);
SELECT * FROM check_mcp_rate_limit(:'k_key_id', 4);
SELECT * FROM check_mcp_rate_limit(gen_random_uuid());
-- Any isolation level decides the same (the window is not in a snapshot).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT allowed, remaining FROM check_mcp_rate_limit(:'k_key_id');
ROLLBACK;

-- Retention: the log shrinks, the all-time statistics stay.
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '40 days' WHERE tool_name = 'fetch_jobs';
SELECT purge_mcp_usage_logs(interval '1 hour');
SELECT purge_mcp_usage_logs(interval '30 days') AS purged;
SELECT count(*) AS log_rows, (SELECT total_requests FROM get_mcp_key_stats(:'k_key_id')) AS total_requests
  FROM mcp_key_usage_logs WHERE key_id = :'k_key_id';
