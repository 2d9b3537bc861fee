-- Cost independent of the tenant's size: fetch plans, exact counts, and Citus's rule.
SET mcp_auth.bcrypt_cost = 4;
\set big '''a7000000-0000-4000-8000-0000000000a7'''
-- One tenant with 3,000 jobs among 30 small ones, so that estimates for a tenant are
-- skewed as they are in production.
SELECT mes_seed_demo(:big, 3000)->'jobs' AS big_jobs;
SELECT count(mes_seed_demo(('a8000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 20))
  FROM generate_series(1, 30) g;
ANALYZE jobs, parts, operations, tasks, issues;
SELECT api_key AS key FROM generate_mcp_key(:big, 'Big tenant', p_rate_limit := 100000) \gset

-- Every filter shape of every fetch tool (ids need not exist: plans are the point).
CREATE TABLE regress_shapes (tool text, args jsonb, n serial);
INSERT INTO regress_shapes (tool, args) VALUES
    ('fetch_jobs', '{}'), ('fetch_jobs', '{"status": "completed"}'),
    ('fetch_jobs', '{"customer": "Acme"}'), ('fetch_jobs', '{"search": "Bracket"}'),
    ('fetch_jobs', '{"status": "on_hold", "customer": "Globex", "offset": 20}'),
    ('fetch_parts', '{}'), ('fetch_parts', '{"job_id": "00000000-0000-4000-8000-000000000001"}'),
    ('fetch_parts', '{"status": "in_progress"}'),
    ('fetch_parts', '{"job_id": "00000000-0000-4000-8000-000000000001", "status": "completed"}'),
    ('fetch_tasks', '{}'), ('fetch_tasks', '{"status": "done"}'), ('fetch_tasks', '{"assignee": "Ana"}'),
    ('fetch_tasks', '{"operation_id": "00000000-0000-4000-8000-000000000002"}'),
    ('fetch_operations', '{}'), ('fetch_operations', '{"part_id": "00000000-0000-4000-8000-000000000003"}'),
    ('fetch_operations', '{"cell_id": "00000000-0000-4000-8000-000000000004"}'),
    ('fetch_operations', '{"status": "in_progress"}'),
    ('fetch_operations', '{"cell_id": "00000000-0000-4000-8000-000000000004", "status": "in_progress"}'),
    ('fetch_issues', '{}'), ('fetch_issues', '{"status": "open"}'), ('fetch_issues', '{"severity": "high"}'),
    ('fetch_issues', '{"job_id": "00000000-0000-4000-8000-000000000001"}'),
    ('fetch_ncrs', '{}'), ('fetch_ncrs', '{"status": "closed"}'), ('fetch_ncrs', '{"category": "weld"}');
GRANT SELECT ON regress_shapes TO mcp_admin;
-- Ten executions of each shape in this session, all answered.
SELECT count(*) AS calls, count(*) FILTER (WHERE (call_tool(:'key', tool, args || '{"limit": 50}')->>'ok')::boolean) AS ok
  FROM regress_shapes, generate_series(1, 10);

SELECT grant_mcp_tenant_admin('mcp_admin', 'a7000000-0000-4000-8000-0000000000a7') AS bound;
SET ROLE mcp_admin;
SET mcp_auth.tenant_id = 'a7000000-0000-4000-8000-0000000000a7';
-- The plan of one shape of each tool, in full.
SELECT mes_explain_fetch('fetch_jobs', '{"status": "completed", "limit": 50}');
SELECT mes_explain_fetch('fetch_parts', '{"job_id": "00000000-0000-4000-8000-000000000001"}');
SELECT mes_explain_fetch('fetch_tasks', '{"assignee": "Ana"}');
SELECT mes_explain_fetch('fetch_operations', '{"cell_id": "00000000-0000-4000-8000-000000000004"}');
SELECT mes_explain_fetch('fetch_issues', '{"severity": "high"}');
SELECT mes_explain_fetch('fetch_ncrs', '{"status": "closed"}');
-- Every shape: a Limit over an index scan in the tool's order; no sort, no bitmap or
-- sequential scan of the tenant. The same under generic and custom plan settings
-- (EXECUTE plans each call with its values, so neither setting applies).
CREATE TEMP VIEW regress_plans AS
SELECT s.n, s.tool, s.args,
       (SELECT string_agg(substring(l FROM 'Index Scan(?: Backward)? using (\w+)'), ', ')
          FROM mes_explain_fetch(s.tool, s.args) l) AS index,
       (SELECT bool_or(l ~ '^ *(->  )?Limit') FROM mes_explain_fetch(s.tool, s.args) l) AS limited,
       (SELECT bool_or(l ~ 'Sort|Seq Scan|Bitmap') FROM mes_explain_fetch(s.tool, s.args) l) AS scans_tenant
  FROM regress_shapes s;
SELECT tool, args, index, limited, scans_tenant FROM regress_plans ORDER BY n;
SET plan_cache_mode = force_generic_plan;
SELECT count(*) FILTER (WHERE limited AND NOT scans_tenant) AS generic_ok FROM regress_plans;
SET plan_cache_mode = force_custom_plan;
SELECT count(*) FILTER (WHERE limited AND NOT scans_tenant) AS custom_ok FROM regress_plans;
RESET plan_cache_mode;
RESET ROLE;
RESET mcp_auth.tenant_id;

-- The dashboard's counts are exact after every kind of change: tools, an admin's
-- updates and deletes (cascading), and TRUNCATE of another table.
CREATE FUNCTION regress_true_counts(t uuid) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'jobs', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM jobs WHERE tenant_id = t AND status = s))
                   FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'parts', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM parts WHERE tenant_id = t AND status = s))
                    FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'operations', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM operations WHERE tenant_id = t AND status = s))
                         FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'tasks', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM tasks WHERE tenant_id = t AND status = s))
                    FROM unnest(ARRAY['assigned', 'in_progress', 'done', 'cancelled']) s),
        'open_issues', (SELECT count(*) FROM issues WHERE tenant_id = t AND issue_type = 'issue' AND status IN ('open', 'investigating')),
        'open_ncrs', (SELECT count(*) FROM issues WHERE tenant_id = t AND issue_type = 'ncr' AND status IN ('open', 'investigating')),
        'overdue_jobs', (SELECT count(*) FROM jobs WHERE tenant_id = t AND status <> 'completed' AND due_date < current_date))
$$;
CREATE FUNCTION regress_true_wip(t uuid) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_object_agg(c.name, (SELECT count(*) FROM operations o WHERE o.cell_id = c.id AND o.status = 'in_progress'))
      FROM cells c WHERE c.tenant_id = t
$$;
CREATE FUNCTION regress_counts_match(k text, t uuid) RETURNS boolean LANGUAGE sql AS $$
    SELECT call_tool(k, 'get_dashboard_stats', '{}')->'result' = regress_true_counts(t)
       AND (SELECT jsonb_object_agg(c->>'cell', c->'wip') FROM jsonb_array_elements(
                call_tool(k, 'get_qrm_data', '{}')->'result'->'cells') c) = regress_true_wip(t)
$$;
SELECT regress_counts_match(:'key', :big) AS seeded;
SELECT id AS job, job_number FROM jobs WHERE tenant_id = :big AND status = 'not_started' ORDER BY job_number LIMIT 1 \gset
SELECT id AS op FROM operations WHERE tenant_id = :big AND status = 'not_started' AND cell_id IS NOT NULL LIMIT 1 \gset
SELECT call_tool(:'key', 'start_job', jsonb_build_object('job_id', :'job'))->'ok' AS started,
       call_tool(:'key', 'start_operation', jsonb_build_object('operation_id', :'op'))->'ok' AS op_started,
       call_tool(:'key', 'create_job', '{"customer": "Counted", "due_date": "2000-01-01"}')->'result'->'job'->>'job_number' AS created;
SELECT regress_counts_match(:'key', :big) AS after_tools;
UPDATE jobs SET status = 'on_hold', due_date = current_date - 3 WHERE tenant_id = :big AND job_number LIKE 'J-11%';
UPDATE operations SET cell_id = (SELECT id FROM cells WHERE tenant_id = :big ORDER BY name LIMIT 1)
 WHERE tenant_id = :big AND status = 'in_progress' AND sequence = 2;
SELECT regress_counts_match(:'key', :big) AS after_updates;
DELETE FROM jobs WHERE tenant_id = :big AND job_number LIKE 'J-12%';
SELECT regress_counts_match(:'key', :big) AS after_cascading_delete;
BEGIN;
UPDATE jobs SET status = 'completed' WHERE tenant_id = :big;
ROLLBACK;
SELECT regress_counts_match(:'key', :big) AS after_rollback;
-- create_job's next number comes from the counter, not from counting the jobs.
SELECT call_tool(:'key', 'create_job', '{"customer": "Next"}')->'result'->'job'->>'job_number' AS next_number;
-- No other tenant's counts moved, and no other role may write the counts.
SELECT regress_counts_match(:'key', :big) AS big_still,
       (SELECT bool_and(regress_true_counts(tenant_id) IS NOT NULL) FROM cells) AS others_readable;
SET ROLE mcp_admin;
SET mcp_auth.tenant_id = 'a7000000-0000-4000-8000-0000000000a7';
UPDATE dashboard_counts SET n = n + 1;
SELECT count(*) > 0 AS admin_reads_own_counts FROM dashboard_counts;
RESET ROLE;
RESET mcp_auth.tenant_id;
TRUNCATE tasks;
SELECT regress_counts_match(:'key', :big) AS after_truncate;

-- Citus's rule, read from the catalog, for both extensions: every primary key, unique
-- constraint or index and foreign key of a table with a tenant_id column includes
-- tenant_id (foreign keys on both sides). Violations below; then how many were checked.
CREATE TEMP VIEW tenant_keys AS
WITH tenant_tables AS (
    SELECT c.oid AS rel, c.relname, a.attnum AS tenant_col
      FROM pg_class c
      JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname IN ('mcp_auth', 'mcp_mes')
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition)
SELECT t.relname, x.conname AS name, x.contype AS kind,
       t.tenant_col = ANY (x.conkey)
       AND (x.contype <> 'f' OR (SELECT ra.attnum FROM pg_attribute ra WHERE ra.attrelid = x.confrelid
                                   AND ra.attname = 'tenant_id') = ANY (x.confkey)) AS includes_tenant
  FROM tenant_tables t JOIN pg_constraint x ON x.conrelid = t.rel AND x.contype IN ('p', 'u', 'f')
UNION ALL
SELECT t.relname, i.indexrelid::regclass::text, 'i', t.tenant_col = ANY (i.indkey::int2[])
  FROM tenant_tables t JOIN pg_index i ON i.indrelid = t.rel AND i.indisunique
 WHERE NOT EXISTS (SELECT FROM pg_constraint x WHERE x.conindid = i.indexrelid);
SELECT relname, name, kind FROM tenant_keys WHERE NOT includes_tenant ORDER BY 1, 2;
SELECT relname, count(*) AS checked FROM tenant_keys GROUP BY 1 ORDER BY 1;
SELECT revoke_mcp_tenant_admin('mcp_admin') AS unbound;
