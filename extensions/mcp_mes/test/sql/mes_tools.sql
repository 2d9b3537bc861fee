-- The MES tools through call_tool: envelopes, validation, lifecycles, permissions,
-- the rate limit, and the audit of every outcome. (pg_regress installs mcp_auth and
-- mcp_mes in the test database first: see the Makefile.)
SELECT count(*) AS tools, count(DISTINCT domain) AS domains FROM mcp_tools;
SELECT domain, string_agg(name, ', ' ORDER BY name) FROM mcp_tools GROUP BY domain ORDER BY domain;
\set ta '''a5000000-0000-4000-8000-0000000000a5'''
SELECT mes_seed_demo(:ta, 12) - 'tenant_id' AS seeded;
SELECT status, count(*) FROM jobs WHERE tenant_id = :ta GROUP BY status ORDER BY status;
SET mcp_auth.bcrypt_cost = 4;
SELECT api_key AS full_key, key_id AS full_id FROM generate_mcp_key(:ta, 'Full') \gset
SELECT api_key AS ro_key, key_id AS ro_id FROM generate_mcp_key(
p_tenant_id := 'a5000000-0000-4000-8000-0000000000a5',
p_name := 'Read-Only Analytics Key',
p_allowed_tools := '["fetch_jobs", "fetch_parts", "fetch_tasks", "get_dashboard_stats"]'::jsonb
) \gset

-- Discovery: the read-only key sees exactly its four tools, with schemas and annotations.
SELECT jsonb_array_length(list_tools(:'full_key')->'result'->'tools') AS full_tools;
SELECT t->>'name' AS name, t->'annotations'->>'readOnlyHint' AS read_only,
       t->'inputSchema'->'properties'->'limit' AS limit_schema
  FROM jsonb_array_elements(list_tools(:'ro_key')->'result'->'tools') t ORDER BY 1;
SELECT t->>'name', t->'annotations'->'destructiveHint' AS destructive
  FROM jsonb_array_elements(list_tools(:'full_key')->'result'->'tools') t
 WHERE t->>'name' IN ('complete_job', 'create_job') ORDER BY 1;
SELECT list_tools('mcp_live_wrong');

-- A read tool.
SELECT r->'ok' AS ok, r->'result'->'count' AS count,
       (SELECT bool_and(j->>'status' = 'in_progress') FROM jsonb_array_elements(r->'result'->'jobs') j) AS all_in_progress
  FROM call_tool(:'full_key', 'fetch_jobs', '{"status": "in_progress", "limit": 50}') r;
SELECT call_tool(:'full_key', 'fetch_jobs', '{"limit": 2}')->'result'->'count' AS limited;
-- The Integration Guide's read-only key may not create a job; both outcomes are audited.
SELECT call_tool(:'ro_key', 'create_job', '{"customer": "Globex"}');
SELECT call_tool(:'ro_key', 'get_dashboard_stats', '{}')->'result'->'jobs' AS jobs_by_status;
SELECT tool_name, success, error_message FROM mcp_key_usage_logs
 WHERE key_id = :'ro_id' ORDER BY created_at;

-- Bad arguments name the field and the rule; unknown tools and bad keys are plain.
SELECT call_tool(:'full_key', 'fetch_jobs', '{"status": "bogus"}');
SELECT call_tool(:'full_key', 'fetch_jobs', '{"limit": "fifty"}');
SELECT call_tool(:'full_key', 'fetch_jobs', '{"limit": 501}');
SELECT call_tool(:'full_key', 'fetch_jobs', '{"colour": "red"}');
SELECT call_tool(:'full_key', 'create_job', '{}');
SELECT call_tool(:'full_key', 'start_job', '{"job_id": "not-a-uuid"}');
SELECT call_tool(:'full_key', 'fetch_jobs', '[1, 2]');
SELECT call_tool(:'full_key', 'launch_rocket', '{}');
SELECT call_tool(:'full_key', NULL, '{}');
SELECT call_tool(NULL, 'fetch_jobs', '{}');
SELECT call_tool(left(:'full_key', 46) || CASE WHEN right(:'full_key', 1) = 'x' THEN 'y' ELSE 'x' END, 'fetch_jobs', '{}');

-- Lifecycle: moves are atomic and checked.
SELECT id AS job1, job_number AS job1_number FROM jobs
 WHERE tenant_id = :ta AND status = 'not_started' ORDER BY job_number LIMIT 1 \gset
SELECT call_tool(:'full_key', 'complete_job', jsonb_build_object('job_id', :'job1')) - 'result' AS complete_unstarted;
SELECT call_tool(:'full_key', 'start_job', jsonb_build_object('job_id', :'job1'))->'result'->>'message' = 'Job ' || :'job1_number' || ' is now in_progress' AS started;
SELECT call_tool(:'full_key', 'start_job', jsonb_build_object('job_id', :'job1'))->'error'->>'message' = 'Cannot start job ' || :'job1_number' || ': status is in_progress' AS start_twice;
SELECT call_tool(:'full_key', 'stop_job', jsonb_build_object('job_id', :'job1'))->'result'->'job'->>'status' AS stopped;
SELECT call_tool(:'full_key', 'complete_job', jsonb_build_object('job_id', :'job1'))->'error'->>'type' AS complete_on_hold;
SELECT call_tool(:'full_key', 'resume_job', jsonb_build_object('job_id', :'job1'))->'result'->'job'->>'status' AS resumed;
SELECT call_tool(:'full_key', 'complete_job', jsonb_build_object('job_id', :'job1'))->'result'->'job'->>'status' AS completed;
SELECT call_tool(:'full_key', 'resume_job', jsonb_build_object('job_id', gen_random_uuid()))->'error'->>'type' AS unknown_job;
SELECT status, started_at IS NOT NULL AS started, completed_at IS NOT NULL AS completed FROM jobs WHERE id = :'job1';

-- Writes.
SELECT r->'result'->>'message' LIKE 'Created job J-%' AS created, r->'result'->'job'->>'customer' AS customer
  FROM call_tool(:'full_key', 'create_job', '{"customer": "Initech", "priority": 2, "due_date": "2030-01-31"}') r;
SELECT call_tool(:'full_key', 'create_job', '{"customer": "Initech", "job_number": "J-1001"}')->'error';
SELECT id AS part1 FROM parts WHERE tenant_id = :ta AND status = 'in_progress' LIMIT 1 \gset
SELECT call_tool(:'full_key', 'update_part', jsonb_build_object('part_id', :'part1', 'quantity_completed', 10))->'result'->'part'->>'status' AS part_done;
SELECT call_tool(:'full_key', 'update_part', jsonb_build_object('part_id', :'part1', 'quantity_completed', 11))->'error';
SELECT id AS op1 FROM operations WHERE tenant_id = :ta AND status = 'not_started' LIMIT 1 \gset
SELECT call_tool(:'full_key', 'start_operation', jsonb_build_object('operation_id', :'op1'))->'result'->'operation'->>'status' AS op_started;
SELECT call_tool(:'full_key', 'pause_operation', jsonb_build_object('operation_id', :'op1'))->'result'->'operation'->>'status' AS op_paused;
SELECT call_tool(:'full_key', 'complete_operation', jsonb_build_object('operation_id', :'op1'))->'error'->>'type' AS complete_paused_op;
SELECT call_tool(:'full_key', 'update_operation', jsonb_build_object('operation_id', :'op1', 'actual_minutes', 42, 'notes', 'slow'))->'result'->'operation'->>'actual_minutes' AS minutes;
SELECT id AS task1 FROM tasks WHERE tenant_id = :ta LIMIT 1 \gset
SELECT call_tool(:'full_key', 'update_task', jsonb_build_object('task_id', :'task1', 'assignee', 'Fay', 'status', 'done'))->'result'->'task'->>'assignee' AS assignee;
SELECT call_tool(:'full_key', 'fetch_tasks', '{"assignee": "Fay"}')->'result'->'count' AS fays_tasks;
SELECT call_tool(:'full_key', 'fetch_ncrs', '{}')->'result'->'count' AS ncrs,
       call_tool(:'full_key', 'fetch_issues', '{}')->'result'->'count' AS issues;
SELECT c->>'cell' AS cell, c->'wip' AS wip, c->'wip_limit' AS wip_limit, c->>'status' AS status
  FROM jsonb_array_elements(call_tool(:'full_key', 'get_qrm_data', '{}')->'result'->'cells') c;

-- A failed handler leaves no write behind, and its audit row stays.
SELECT count(*) AS jobs_before FROM jobs WHERE tenant_id = :ta \gset
SELECT call_tool(:'full_key', 'create_job', '{"customer": "Dup", "job_number": "J-1002"}')->'error'->>'type' AS duplicate;
SELECT count(*) = :jobs_before AS unchanged FROM jobs WHERE tenant_id = :ta;
SELECT success, error_message FROM mcp_key_usage_logs
 WHERE key_id = :'full_id' AND tool_name = 'create_job' ORDER BY created_at DESC LIMIT 1;
SELECT action, entity_name, metadata->>'error' AS error FROM activity_log
 WHERE tenant_id = :ta AND entity_name = 'create_job' ORDER BY created_at DESC LIMIT 1;

-- The rate limit.
SELECT api_key AS slow_key FROM generate_mcp_key(:ta, 'Slow', p_rate_limit := 2) \gset
SELECT call_tool(:'slow_key', 'fetch_jobs', '{"limit": 1}')->'ok' AS first,
       call_tool(:'slow_key', 'fetch_jobs', '{"limit": 1}')->'ok' AS second;
SELECT r->'error'->>'type' AS type, r->'error'->>'message' AS message,
       (r->'error'->>'retry_after_ms')::int BETWEEN 1 AND 60000 AS retry_after
  FROM call_tool(:'slow_key', 'fetch_jobs', '{"limit": 1}') r;

-- The client's details reach the audit row; keys and secrets do not.
SELECT call_tool(:'full_key', 'fetch_parts', '{"limit": 1}',
                 '{"name": "claude-desktop", "version": "1.2.3", "ip": "198.51.100.7"}')->'ok';
SELECT ip_address, user_agent, response_time_ms >= 0 AS timed FROM mcp_key_usage_logs
 WHERE key_id = :'full_id' AND tool_name = 'fetch_parts';
