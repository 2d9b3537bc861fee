-- Tenant isolation through every tool, as real login roles.
SET mcp_auth.bcrypt_cost = 4;
\set ta '''a6000000-0000-4000-8000-0000000000a6'''
\set tb '''b6000000-0000-4000-8000-0000000000b6'''
SELECT mes_seed_demo(:ta, 8)->'jobs' AS a_jobs;
SELECT mes_seed_demo(:tb, 8)->'jobs' AS b_jobs;
SELECT api_key AS key_b FROM generate_mcp_key(:tb, 'Tenant B') \gset
SELECT id AS a_job, status AS a_status FROM jobs WHERE tenant_id = :ta AND status = 'in_progress' LIMIT 1 \gset
SELECT id AS a_part FROM parts WHERE tenant_id = :ta LIMIT 1 \gset
SELECT id AS a_op FROM operations WHERE tenant_id = :ta AND status = 'in_progress' LIMIT 1 \gset
SELECT id AS a_task FROM tasks WHERE tenant_id = :ta LIMIT 1 \gset
SELECT id AS a_cell FROM cells WHERE tenant_id = :ta LIMIT 1 \gset
CREATE TABLE regress_a_ids AS
    SELECT id FROM jobs WHERE tenant_id = :ta UNION ALL SELECT id FROM parts WHERE tenant_id = :ta
    UNION ALL SELECT id FROM operations WHERE tenant_id = :ta UNION ALL SELECT id FROM tasks WHERE tenant_id = :ta
    UNION ALL SELECT id FROM issues WHERE tenant_id = :ta UNION ALL SELECT id FROM cells WHERE tenant_id = :ta;
CREATE TABLE regress_a_before AS SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) AS h FROM (
    SELECT j::text AS x FROM jobs j WHERE tenant_id = :ta UNION ALL SELECT p::text FROM parts p WHERE tenant_id = :ta
    UNION ALL SELECT o::text FROM operations o WHERE tenant_id = :ta UNION ALL SELECT t::text FROM tasks t WHERE tenant_id = :ta) s;
CREATE ROLE regress_mes_server LOGIN IN ROLE mcp_client;
GRANT SELECT ON regress_a_ids TO regress_mes_server;

\c - regress_mes_server
-- Plain SQL: no table at all, with or without a key. MCP servers use tools only.
SELECT count(*) FROM jobs;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'key_b');
SELECT count(*) FROM issues;
ROLLBACK;
INSERT INTO jobs (tenant_id, job_number, customer) VALUES ('a6000000-0000-4000-8000-0000000000a6', 'X', 'Y');

-- Every read tool under B's key (one call per statement, as call_tool requires of
-- mcp_client): none of A's ids appear.
SELECT call_tool(:'key_b', 'fetch_jobs', '{"limit": 500}') AS fetch_jobs \gset
SELECT call_tool(:'key_b', 'fetch_parts', '{"limit": 500}') AS fetch_parts \gset
SELECT call_tool(:'key_b', 'fetch_tasks', '{"limit": 500}') AS fetch_tasks \gset
SELECT call_tool(:'key_b', 'fetch_operations', '{"limit": 500}') AS fetch_operations \gset
SELECT call_tool(:'key_b', 'fetch_issues', '{"limit": 500}') AS fetch_issues \gset
SELECT call_tool(:'key_b', 'fetch_ncrs', '{"limit": 500}') AS fetch_ncrs \gset
SELECT call_tool(:'key_b', 'get_dashboard_stats', '{}') AS get_dashboard_stats \gset
SELECT call_tool(:'key_b', 'get_qrm_data', '{}') AS get_qrm_data \gset
SELECT t.tool, (SELECT count(*) FROM regress_a_ids a WHERE position(a.id::text IN t.r) > 0) AS a_ids_seen,
       t.r::jsonb->'ok' AS ok
  FROM (VALUES ('fetch_jobs', :'fetch_jobs'),
               ('fetch_parts', :'fetch_parts'),
               ('fetch_tasks', :'fetch_tasks'),
               ('fetch_operations', :'fetch_operations'),
               ('fetch_issues', :'fetch_issues'),
               ('fetch_ncrs', :'fetch_ncrs'),
               ('get_dashboard_stats', :'get_dashboard_stats'),
               ('get_qrm_data', :'get_qrm_data')) t(tool, r)
 ORDER BY 1;
SELECT call_tool(:'key_b', 'get_dashboard_stats', '{}')->'result'->'jobs' AS b_jobs_only;
-- Every write tool given A's ids under B's key: not_found, and nothing changes.
SELECT call_tool(:'key_b', 'start_job', jsonb_build_object('job_id', :'a_job'))->'error'->>'type' AS start_job \gset
SELECT call_tool(:'key_b', 'stop_job', jsonb_build_object('job_id', :'a_job'))->'error'->>'type' AS stop_job \gset
SELECT call_tool(:'key_b', 'complete_job', jsonb_build_object('job_id', :'a_job'))->'error'->>'type' AS complete_job \gset
SELECT call_tool(:'key_b', 'resume_job', jsonb_build_object('job_id', :'a_job'))->'error'->>'type' AS resume_job \gset
SELECT call_tool(:'key_b', 'update_job', jsonb_build_object('job_id', :'a_job', 'customer', 'Hijacked'))->'error'->>'type' AS update_job \gset
SELECT call_tool(:'key_b', 'update_part', jsonb_build_object('part_id', :'a_part', 'quantity_completed', 1))->'error'->>'type' AS update_part \gset
SELECT call_tool(:'key_b', 'update_task', jsonb_build_object('task_id', :'a_task', 'assignee', 'Mallory'))->'error'->>'type' AS update_task \gset
SELECT call_tool(:'key_b', 'start_operation', jsonb_build_object('operation_id', :'a_op'))->'error'->>'type' AS start_operation \gset
SELECT call_tool(:'key_b', 'pause_operation', jsonb_build_object('operation_id', :'a_op'))->'error'->>'type' AS pause_operation \gset
SELECT call_tool(:'key_b', 'complete_operation', jsonb_build_object('operation_id', :'a_op'))->'error'->>'type' AS complete_operation \gset
SELECT call_tool(:'key_b', 'update_operation', jsonb_build_object('operation_id', :'a_op', 'notes', 'x'))->'error'->>'type' AS update_operation \gset
SELECT t.tool, t.outcome
  FROM (VALUES ('start_job', :'start_job'),
               ('stop_job', :'stop_job'),
               ('complete_job', :'complete_job'),
               ('resume_job', :'resume_job'),
               ('update_job', :'update_job'),
               ('update_part', :'update_part'),
               ('update_task', :'update_task'),
               ('start_operation', :'start_operation'),
               ('pause_operation', :'pause_operation'),
               ('complete_operation', :'complete_operation'),
               ('update_operation', :'update_operation')) t(tool, outcome)
 ORDER BY 1;
SELECT call_tool(:'key_b', 'get_qrm_data', jsonb_build_object('cell_id', :'a_cell'))->'result' AS a_cell_for_b;
SELECT call_tool(:'key_b', 'fetch_parts', jsonb_build_object('job_id', :'a_job'))->'result'->'count' AS a_job_parts;

\c - postgres
SELECT h = (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM (
    SELECT j::text AS x FROM jobs j WHERE tenant_id = :ta UNION ALL SELECT p::text FROM parts p WHERE tenant_id = :ta
    UNION ALL SELECT o::text FROM operations o WHERE tenant_id = :ta UNION ALL SELECT t::text FROM tasks t WHERE tenant_id = :ta) s)
    AS tenant_a_unchanged FROM regress_a_before;
DROP TABLE regress_a_ids, regress_a_before;

-- Handlers run as mcp_tool_runner, which RLS applies to: a handler that tries to
-- read every tenant's rows sees only the key's.
CREATE FUNCTION regress_spy(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'current_user', current_user,
        'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
        'bypassrls', (SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user),
        'tenants_seen', (SELECT count(DISTINCT tenant_id) FROM public.jobs),
        'jobs_seen', (SELECT count(*) FROM public.jobs))
$$;
SELECT register_mcp_tool('regress_spy', 'test', 'Reads every job it can', '{"type": "object"}', 'regress_spy(jsonb)'::regprocedure, true);
SELECT api_key AS spy_key FROM generate_mcp_key(:tb, 'Spy') \gset
SELECT call_tool(:'spy_key', 'regress_spy', '{}')->'result' AS spy;
-- (Other tests may have left tenants too: at least these two.)
SELECT count(DISTINCT tenant_id) >= 2 AS tenants_in_table FROM jobs;
-- A handler cannot escape with SET ROLE either.
CREATE FUNCTION regress_escape(p_args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    SET ROLE postgres;
    RETURN jsonb_build_object('jobs_seen', (SELECT count(*) FROM public.jobs));
END $$;
SELECT register_mcp_tool('regress_escape', 'test', 'Tries SET ROLE', '{"type": "object"}', 'regress_escape(jsonb)'::regprocedure);
SELECT call_tool(:'spy_key', 'regress_escape', '{}')->'error'->>'type' AS escape;
SELECT error_message FROM mcp_key_usage_logs WHERE tool_name = 'regress_escape';
-- Registration checks its arguments.
SELECT register_mcp_tool('bad tool', 'x', 'y', '{}', 'regress_spy(jsonb)'::regprocedure);
SELECT register_mcp_tool('bad_schema', 'x', 'y', '{"type": 5}', 'regress_spy(jsonb)'::regprocedure);
SELECT register_mcp_tool('bad_handler', 'x', 'y', '{}', 'mes_seed_demo(uuid, integer)'::regprocedure);
-- Dropping a handler takes its tool out of the registry (an event trigger).
DROP FUNCTION regress_escape(jsonb);
SELECT name FROM mcp_tools WHERE name LIKE 'regress_%' ORDER BY name;
SELECT call_tool(:'spy_key', 'regress_escape', '{}')->'error' AS dropped_tool;
DELETE FROM mcp_tools WHERE name LIKE 'regress_%';
DROP FUNCTION regress_spy(jsonb);
DROP ROLE regress_mes_server;

-- A tenant's admin manages its MES rows, but cannot LOCK a table against every
-- tenant's tools (issue 18: LOCK TABLE jobs as mcp_admin froze the MES tools).
CREATE ROLE regress_mes_admin LOGIN IN ROLE mcp_admin;
SELECT grant_mcp_tenant_admin('regress_mes_admin', :ta) AS bound;
SELECT id AS b_job FROM jobs WHERE tenant_id = :tb LIMIT 1 \gset
\c - regress_mes_admin
BEGIN;
LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE jobs IN SHARE MODE;
ROLLBACK;
SELECT count(*) > 0 AS reads_own_jobs, count(*) FILTER (WHERE tenant_id <> :ta) AS others FROM jobs;
UPDATE jobs SET priority = 1 WHERE id = :'a_job';
SELECT :ROW_COUNT AS updated_own;
INSERT INTO tasks (tenant_id, operation_id, assignee, notes)
VALUES (:ta, :'a_op', 'Regress', 'Check the fixture') RETURNING notes;
SELECT mes_delete_row('tasks', (SELECT id FROM tasks WHERE notes = 'Check the fixture')) AS deleted_own;
SELECT mes_delete_row('jobs', :'b_job') AS deleted_other_tenants;
SELECT mes_delete_row('mcp_authentication_keys', :'b_job');
DELETE FROM tasks WHERE tenant_id = :ta;
\c - postgres
SELECT count(*) AS b_job_kept FROM jobs WHERE id = :'b_job';
SELECT revoke_mcp_tenant_admin('regress_mes_admin') AS unbound;
DROP ROLE regress_mes_admin;
-- DROP EXTENSION mcp_mes takes its 20 tools along; CREATE EXTENSION brings them back.
DROP EXTENSION mcp_mes;
SELECT count(*) AS tools_left FROM mcp_tools;
CREATE EXTENSION mcp_mes;
SELECT count(*) AS tools_back FROM mcp_tools;
