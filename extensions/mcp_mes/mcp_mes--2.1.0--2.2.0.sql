-- mcp_mes 2.1.0 -> 2.2.0:
-- - MCP servers (mcp_client) lose every table right (tools only, through call_tool);
-- - create_job numbers from a per-tenant counter row instead of an advisory lock that
--   any role could hold;
-- - primary keys include tenant_id (Citus's rule for distributed tables);
-- - fetch tools plan each filter shape with its values, on indexes in their order;
-- - get_dashboard_stats and get_qrm_data read dashboard_counts, kept by triggers.

\echo Use "ALTER EXTENSION mcp_mes UPDATE TO '2.2.0'" to load this file. \quit

REVOKE SELECT ON cells, jobs, parts, operations, tasks, issues FROM mcp_client;

CREATE TABLE job_numbers (
    tenant_id   uuid   PRIMARY KEY,
    last_number bigint NOT NULL
);
ALTER TABLE job_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_numbers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON job_numbers
    USING (tenant_id = mcp_current_tenant())
    WITH CHECK (tenant_id = mcp_current_tenant());
REVOKE ALL ON job_numbers FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON job_numbers TO mcp_tool_runner;
SELECT pg_catalog.pg_extension_config_dump('job_numbers', '');

-- Primary keys (id, tenant_id): every unique constraint and foreign key includes
-- tenant_id, as Citus requires of distributed tables. The composite foreign keys
-- referenced UNIQUE (tenant_id, id); they now reference the primary key.
ALTER TABLE parts DROP CONSTRAINT parts_tenant_id_job_id_fkey;
ALTER TABLE operations DROP CONSTRAINT operations_tenant_id_part_id_fkey;
ALTER TABLE operations DROP CONSTRAINT operations_tenant_id_cell_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_tenant_id_operation_id_fkey;
ALTER TABLE issues DROP CONSTRAINT issues_tenant_id_job_id_fkey;
ALTER TABLE issues DROP CONSTRAINT issues_tenant_id_operation_id_fkey;
ALTER TABLE cells DROP CONSTRAINT cells_pkey, DROP CONSTRAINT cells_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE jobs DROP CONSTRAINT jobs_pkey, DROP CONSTRAINT jobs_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE parts DROP CONSTRAINT parts_pkey, DROP CONSTRAINT parts_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE operations DROP CONSTRAINT operations_pkey, DROP CONSTRAINT operations_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey, DROP CONSTRAINT tasks_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE issues DROP CONSTRAINT issues_pkey, DROP CONSTRAINT issues_tenant_id_id_key,
    ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE parts ADD CONSTRAINT parts_tenant_id_job_id_fkey FOREIGN KEY (tenant_id, job_id) REFERENCES jobs (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE operations ADD CONSTRAINT operations_tenant_id_part_id_fkey FOREIGN KEY (tenant_id, part_id) REFERENCES parts (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE operations ADD CONSTRAINT operations_tenant_id_cell_id_fkey FOREIGN KEY (tenant_id, cell_id) REFERENCES cells (tenant_id, id);
ALTER TABLE tasks ADD CONSTRAINT tasks_tenant_id_operation_id_fkey FOREIGN KEY (tenant_id, operation_id) REFERENCES operations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE issues ADD CONSTRAINT issues_tenant_id_job_id_fkey FOREIGN KEY (tenant_id, job_id) REFERENCES jobs (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE issues ADD CONSTRAINT issues_tenant_id_operation_id_fkey FOREIGN KEY (tenant_id, operation_id) REFERENCES operations (tenant_id, id) ON DELETE SET NULL (operation_id);

-- Each fetch tool's order after each equality filter it takes.
DROP INDEX parts_tenant_job_idx;
DROP INDEX operations_tenant_cell_idx;
CREATE INDEX parts_tenant_job_idx ON parts (tenant_id, job_id, part_number);
CREATE INDEX parts_tenant_status_idx ON parts (tenant_id, status, part_number);
CREATE INDEX operations_tenant_cell_idx ON operations (tenant_id, cell_id, part_id, sequence);
CREATE INDEX operations_tenant_status_idx ON operations (tenant_id, status, part_id, sequence);
CREATE INDEX tasks_tenant_created_idx ON tasks (tenant_id, created_at DESC);
CREATE INDEX tasks_tenant_operation_idx ON tasks (tenant_id, operation_id, created_at DESC);
CREATE INDEX issues_tenant_type_created_idx ON issues (tenant_id, issue_type, created_at DESC);
CREATE INDEX issues_tenant_job_idx ON issues (tenant_id, job_id, created_at DESC);

-- Exact counts for get_dashboard_stats and get_qrm_data without reading the rows they
-- count: each table's statement triggers (below) add the changes of a statement in its
-- own transaction. Metrics: '<table>:<status>' (jobs, parts, operations, tasks),
-- 'issue:<status>' and 'ncr:<status>', 'due:<YYYY-MM-DD>' (unfinished jobs by due
-- date) and 'wip:<cell id>' (operations in progress). One row per backend slot, so
-- concurrent writers of one tenant never wait on one row; readers sum the slots.
CREATE TABLE dashboard_counts (
    tenant_id uuid    NOT NULL,
    metric    text    NOT NULL,
    slot      integer NOT NULL,
    n         bigint  NOT NULL,
    PRIMARY KEY (tenant_id, metric, slot)
);
ALTER TABLE dashboard_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dashboard_counts
    USING (tenant_id = mcp_current_tenant())
    WITH CHECK (tenant_id = mcp_current_tenant());
REVOKE ALL ON dashboard_counts FROM PUBLIC;
GRANT SELECT ON dashboard_counts TO mcp_tool_runner, mcp_admin;
-- Not dumped: restoring the rows fires the counting triggers, which make them again.

-- Adds one statement's changes to dashboard_counts, in its transaction. TG_ARGV[0] is
-- an expression over a row of the table that gives the metrics the row counts in
-- (text[]); rows before the statement count -1, rows after it +1. Runs as the owner:
-- no other role may write dashboard_counts.
CREATE FUNCTION mes_count_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO dashboard_counts AS c (tenant_id, metric, slot, n)
         SELECT tenant_id, metric, $1, sum(d) FROM (%s) r
          GROUP BY tenant_id, metric HAVING sum(d) <> 0
         ON CONFLICT (tenant_id, metric, slot) DO UPDATE SET n = c.n + EXCLUDED.n',
        concat_ws(' UNION ALL ',
            CASE WHEN TG_OP <> 'DELETE'
                 THEN format('SELECT tenant_id, unnest(%s) AS metric, 1 AS d FROM new_rows', TG_ARGV[0]) END,
            CASE WHEN TG_OP <> 'INSERT'
                 THEN format('SELECT tenant_id, unnest(%s) AS metric, -1 AS d FROM old_rows', TG_ARGV[0]) END))
    USING mcp_backend_slot();
    RETURN NULL;
END $$;

-- TRUNCATE empties the table for every tenant: its metrics go (TG_ARGV: LIKE patterns).
CREATE FUNCTION mes_count_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM dashboard_counts WHERE metric LIKE ANY (TG_ARGV);
    RETURN NULL;
END $$;

DO $counting$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('jobs', $m$ARRAY['jobs:' || status] || CASE WHEN status <> 'completed' AND due_date IS NOT NULL THEN ARRAY['due:' || to_char(due_date, 'YYYY-MM-DD')] END$m$,
         ARRAY['jobs:%', 'due:%']),
        ('parts', $m$ARRAY['parts:' || status]$m$, ARRAY['parts:%']),
        ('operations', $m$ARRAY['operations:' || status] || CASE WHEN status = 'in_progress' AND cell_id IS NOT NULL THEN ARRAY['wip:' || cell_id] END$m$,
         ARRAY['operations:%', 'wip:%']),
        ('tasks', $m$ARRAY['tasks:' || status]$m$, ARRAY['tasks:%']),
        ('issues', $m$ARRAY[issue_type || ':' || status]$m$, ARRAY['issue:%', 'ncr:%'])
    ) v(tbl, metrics, patterns)
    LOOP
        EXECUTE format('CREATE TRIGGER count_inserts AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mes_count_changes(%L)', t.tbl, t.metrics);
        EXECUTE format('CREATE TRIGGER count_updates AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mes_count_changes(%L)', t.tbl, t.metrics);
        EXECUTE format('CREATE TRIGGER count_deletes AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION mes_count_changes(%L)', t.tbl, t.metrics);
        EXECUTE format('CREATE TRIGGER count_truncates AFTER TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION mes_count_truncate(%s)', t.tbl,
                       (SELECT string_agg(quote_literal(p), ', ') FROM unnest(t.patterns) p));
    END LOOP;
END
$counting$;

-- The counts of the rows already there (the triggers count from here on).
INSERT INTO dashboard_counts (tenant_id, metric, slot, n)
SELECT tenant_id, metric, 0, count(*) FROM (
    SELECT tenant_id, unnest(ARRAY['jobs:' || status] || CASE WHEN status <> 'completed' AND due_date IS NOT NULL THEN ARRAY['due:' || to_char(due_date, 'YYYY-MM-DD')] END) AS metric FROM jobs
    UNION ALL SELECT tenant_id, 'parts:' || status FROM parts
    UNION ALL SELECT tenant_id, unnest(ARRAY['operations:' || status] || CASE WHEN status = 'in_progress' AND cell_id IS NOT NULL THEN ARRAY['wip:' || cell_id] END) FROM operations
    UNION ALL SELECT tenant_id, 'tasks:' || status FROM tasks
    UNION ALL SELECT tenant_id, issue_type || ':' || status FROM issues) r
GROUP BY tenant_id, metric;

-- The sum of a tenant's metric over the slots (0 when it has none).
CREATE FUNCTION mes_count(p_tenant uuid, p_metric text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT COALESCE(sum(n), 0)::bigint FROM dashboard_counts WHERE tenant_id = p_tenant AND metric = p_metric
$$;

-- The fetch tools' query for the filters a call gives, and only those: each filter
-- shape is planned on its own, with the call's values ($1 the arguments, $2 the
-- tenant), since EXECUTE never reuses a plan. With sorting off (mes_fetch), the plan
-- is an index scan in the tool's order that stops after limit + offset rows, however
-- many rows the tenant has (see the indexes of each table).
CREATE FUNCTION mes_fetch_query(p_tool text, p_args jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $$
DECLARE
    tbl text;
    result_key text;
    ord text;
    -- Each filter the tool takes, as name:kind, in the order its predicates go.
    filters text[];
    w text[] := ARRAY['tenant_id = $2'];
    f text;
    name text;
BEGIN
    CASE p_tool
    WHEN 'fetch_jobs' THEN
        tbl := 'jobs'; ord := 'created_at DESC, job_number';
        filters := ARRAY['status:equals', 'customer:contains', 'search:search'];
    WHEN 'fetch_parts' THEN
        tbl := 'parts'; ord := 'part_number';
        filters := ARRAY['job_id:uuid', 'status:equals'];
    WHEN 'fetch_tasks' THEN
        tbl := 'tasks'; ord := 'created_at DESC';
        filters := ARRAY['status:equals', 'assignee:contains', 'operation_id:uuid'];
    WHEN 'fetch_operations' THEN
        tbl := 'operations'; ord := 'part_id, sequence';
        filters := ARRAY['part_id:uuid', 'cell_id:uuid', 'status:equals'];
    WHEN 'fetch_issues' THEN
        tbl := 'issues'; result_key := 'issues'; ord := 'created_at DESC';
        w := w || $w$issue_type = 'issue'$w$::text;
        filters := ARRAY['severity:equals', 'job_id:uuid', 'status:equals'];
    WHEN 'fetch_ncrs' THEN
        tbl := 'issues'; result_key := 'ncrs'; ord := 'created_at DESC';
        w := w || $w$issue_type = 'ncr'$w$::text;
        filters := ARRAY['category:equals', 'status:equals'];
    ELSE
        RAISE EXCEPTION 'p_tool: % is not a fetch tool', p_tool USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    -- Only the filters the call gives; their values stay parameters ($1).
    FOREACH f IN ARRAY filters LOOP
        name := split_part(f, ':', 1);
        CONTINUE WHEN p_args->>name IS NULL;
        w := w || CASE split_part(f, ':', 2)
            WHEN 'equals' THEN format('%I = $1->>%L', name, name)
            WHEN 'uuid' THEN format('%I = ($1->>%L)::uuid', name, name)
            WHEN 'contains' THEN format('%I ILIKE ''%%'' || ($1->>%L) || ''%%''', name, name)
            -- fetch_jobs' search: the job number or the description.
            WHEN 'search' THEN format('(job_number ILIKE ''%%'' || ($1->>%1$L) || ''%%'''
                                      ' OR description ILIKE ''%%'' || ($1->>%1$L) || ''%%'')', name)
        END;
    END LOOP;
    -- One encoding pass: the page's rows go straight into the result object.
    RETURN format($q$SELECT jsonb_build_object(%L, COALESCE(array_agg(r ORDER BY %s), '{}'), 'count', count(*))
                       FROM (SELECT * FROM %I WHERE %s ORDER BY %s
                              LIMIT COALESCE(($1->>'limit')::int, 50)
                             OFFSET COALESCE(($1->>'offset')::int, 0)) r$q$,
                  COALESCE(result_key, tbl), ord, tbl, array_to_string(w, ' AND '), ord);
END $$;

-- Runs a fetch tool's query for the key's tenant.
CREATE FUNCTION mes_fetch(p_tool text, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
SET enable_sort = off SET enable_incremental_sort = off AS $$
DECLARE
    rows jsonb;
BEGIN
    EXECUTE mes_fetch_query(p_tool, p_args) INTO rows USING p_args, mes_tenant();
    RETURN rows;
END $$;

-- The plan mes_fetch gets for these arguments in the current tenant (mcp_admin, with
-- mcp_auth.tenant_id set): what regress test mes_plans shows for every fetch tool.
CREATE FUNCTION mes_explain_fetch(p_tool text, p_args jsonb) RETURNS SETOF text
LANGUAGE plpgsql SET search_path FROM CURRENT
SET enable_sort = off SET enable_incremental_sort = off AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || mes_fetch_query(p_tool, p_args) USING p_args, mes_tenant();
END $$;

DROP FUNCTION mes_limit(jsonb);

CREATE OR REPLACE FUNCTION mes_fetch_jobs(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_jobs', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_fetch_parts(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_parts', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_fetch_tasks(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_tasks', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_fetch_operations(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_operations', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_fetch_issues(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_issues', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_fetch_ncrs(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_ncrs', p_args)
$$;

CREATE OR REPLACE FUNCTION mes_get_dashboard_stats(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    t uuid := mes_tenant();
    c jsonb;
BEGIN
    -- From dashboard_counts, exact and independent of how many rows the tenant has.
    SELECT COALESCE(jsonb_object_agg(metric, n), '{}') INTO c
      FROM (SELECT metric, sum(n) AS n FROM dashboard_counts
             WHERE tenant_id = t AND metric NOT LIKE 'due:%' AND metric NOT LIKE 'wip:%'
             GROUP BY metric) m;
    RETURN jsonb_build_object(
        'jobs', (SELECT jsonb_object_agg(s, COALESCE(c->('jobs:' || s), '0'))
                   FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'parts', (SELECT jsonb_object_agg(s, COALESCE(c->('parts:' || s), '0'))
                    FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'operations', (SELECT jsonb_object_agg(s, COALESCE(c->('operations:' || s), '0'))
                         FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s),
        'tasks', (SELECT jsonb_object_agg(s, COALESCE(c->('tasks:' || s), '0'))
                    FROM unnest(ARRAY['assigned', 'in_progress', 'done', 'cancelled']) s),
        'open_issues', COALESCE((c->>'issue:open')::bigint, 0) + COALESCE((c->>'issue:investigating')::bigint, 0),
        'open_ncrs', COALESCE((c->>'ncr:open')::bigint, 0) + COALESCE((c->>'ncr:investigating')::bigint, 0),
        -- Unfinished jobs due before today: one range of 'due:' metrics, in date order.
        'overdue_jobs', (SELECT COALESCE(sum(n), 0) FROM dashboard_counts
                          WHERE tenant_id = t AND metric >= 'due:'
                            AND metric < 'due:' || to_char(current_date, 'YYYY-MM-DD')));
END $$;

-- Quick Response Manufacturing: per cell, work in progress against its WIP limit.
-- at_capacity when WIP reaches the limit, warning from 80% of it, available below.
CREATE OR REPLACE FUNCTION mes_get_qrm_data(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    rows jsonb;
    t uuid := mes_tenant();
BEGIN
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'cell_id', c.id, 'cell', c.name, 'wip', w.wip, 'wip_limit', c.wip_limit,
               'utilization', round(100.0 * w.wip / c.wip_limit, 1),
               'status', CASE WHEN w.wip >= c.wip_limit THEN 'at_capacity'
                              WHEN w.wip >= 0.8 * c.wip_limit THEN 'warning'
                              ELSE 'available' END) ORDER BY c.name), '[]') INTO rows
      FROM cells c
      -- Work in progress from dashboard_counts, not from the operations.
      CROSS JOIN LATERAL (SELECT mes_count(t, 'wip:' || c.id) AS wip) w
     WHERE c.tenant_id = t AND (p_args->>'cell_id' IS NULL OR c.id = (p_args->>'cell_id')::uuid);
    RETURN jsonb_build_object('cells', rows);
END $$;

CREATE OR REPLACE FUNCTION mes_create_job(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t uuid := mes_tenant();
    j jobs;
    n bigint;
    number text := p_args->>'job_number';
BEGIN
    IF number IS NULL THEN
        -- The next free J-number: the tenant's counter row, locked until commit, so
        -- two concurrent calls never pick the same number. A tenant's first number
        -- follows the jobs it already has; numbers already taken (by
        -- hand or by mes_seed_demo) are skipped.
        UPDATE job_numbers SET last_number = last_number + 1 WHERE tenant_id = t
        RETURNING last_number INTO n;
        IF NOT FOUND THEN
            INSERT INTO job_numbers AS c (tenant_id, last_number)
            VALUES (t, 1001 + (SELECT COALESCE(sum(dc.n), 0) FROM dashboard_counts dc
                                     WHERE dc.tenant_id = t AND dc.metric LIKE 'jobs:%'))
            ON CONFLICT (tenant_id) DO UPDATE SET last_number = c.last_number + 1
            RETURNING last_number INTO n;
        END IF;
        WHILE EXISTS (SELECT FROM jobs WHERE tenant_id = t AND job_number = 'J-' || n) LOOP
            n := n + 1;
            UPDATE job_numbers SET last_number = n WHERE tenant_id = t;
        END LOOP;
        number := 'J-' || n;
    END IF;
    INSERT INTO jobs (tenant_id, job_number, customer, description, priority, due_date)
    VALUES (t, number,
            p_args->>'customer', p_args->>'description',
            COALESCE((p_args->>'priority')::int, 3), (p_args->>'due_date')::date)
    RETURNING * INTO j;
    RETURN jsonb_build_object('job', to_jsonb(j), 'message', format('Created job %s', j.job_number));
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'job_number: % is already used', COALESCE(p_args->>'job_number', 'the next number')
        USING ERRCODE = 'unique_violation';
END $$;

-- Exactly p_jobs jobs for the tenant, spread over every status, with parts,
-- operations in five cells, task assignments, issues and NCRs.
CREATE OR REPLACE FUNCTION mes_seed_demo(p_tenant_id uuid, p_jobs integer) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    statuses text[] := ARRAY['not_started', 'in_progress', 'on_hold', 'completed'];
    base integer;
BEGIN
    IF p_tenant_id IS NULL THEN
        RAISE EXCEPTION 'p_tenant_id: must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_jobs IS NULL OR p_jobs < 0 OR p_jobs > 1000000 THEN
        RAISE EXCEPTION 'p_jobs: must be between 0 and 1000000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO cells (tenant_id, name, wip_limit)
    SELECT p_tenant_id, c.name, c.wip FROM (VALUES ('Laser', 4), ('Press Brake', 3), ('Welding', 5),
                                                   ('Paint', 6), ('Assembly', 8)) c(name, wip)
    ON CONFLICT (tenant_id, name) DO NOTHING;
    SELECT COALESCE(sum(n), 0) INTO base FROM dashboard_counts
     WHERE tenant_id = p_tenant_id AND metric LIKE 'jobs:%';
    -- Working sets of this call (a second call in the same transaction starts afresh).
    IF EXISTS (SELECT FROM pg_class c WHERE c.relname = 'mes_seed_jobs' AND c.relpersistence = 't'
                  AND c.relnamespace = pg_my_temp_schema()) THEN
        DROP TABLE pg_temp.mes_seed_jobs, pg_temp.mes_seed_parts, pg_temp.mes_seed_ops;
    END IF;

    CREATE TEMP TABLE mes_seed_jobs ON COMMIT DROP AS
    SELECT gen_random_uuid() AS id, g, statuses[1 + g % 4] AS status
      FROM generate_series(1, p_jobs) g;
    INSERT INTO jobs (id, tenant_id, job_number, customer, description, status, priority, due_date,
                      started_at, completed_at, created_at)
    SELECT s.id, p_tenant_id, 'J-' || (1000 + base + s.g),
           (ARRAY['Acme Corp', 'Globex', 'Initech', 'Umbrella', 'Stark Industries'])[1 + s.g % 5],
           (ARRAY['Bracket assembly', 'Enclosure', 'Frame weldment', 'Panel kit', 'Mounting plate'])[1 + (s.g / 5) % 5],
           s.status, 1 + s.g % 5, current_date + ((s.g % 40) - 10),
           CASE WHEN s.status <> 'not_started' THEN now() - interval '2 days' END,
           CASE WHEN s.status = 'completed' THEN now() - interval '1 day' END,
           now() - (s.g * interval '1 minute')
      FROM mes_seed_jobs s;

    CREATE TEMP TABLE mes_seed_parts ON COMMIT DROP AS
    SELECT gen_random_uuid() AS id, s.id AS job_id, s.g, p AS n, s.status
      FROM mes_seed_jobs s, generate_series(1, 1 + s.g % 2) p;
    INSERT INTO parts (id, tenant_id, job_id, part_number, name, quantity, quantity_completed, status)
    SELECT sp.id, p_tenant_id, sp.job_id, 'P-' || (1000 + base + sp.g) || '-' || sp.n,
           (ARRAY['Side plate', 'Base', 'Cover', 'Hinge'])[1 + (sp.g + sp.n) % 4],
           10, CASE sp.status WHEN 'completed' THEN 10 WHEN 'not_started' THEN 0 ELSE 4 END, sp.status
      FROM mes_seed_parts sp;

    CREATE TEMP TABLE mes_seed_ops ON COMMIT DROP AS
    SELECT gen_random_uuid() AS id, sp.id AS part_id, sp.g, o AS seq,
           CASE WHEN sp.status = 'completed' THEN 'completed'
                WHEN sp.status = 'not_started' THEN 'not_started'
                WHEN o = 1 THEN 'completed'
                WHEN o = 2 THEN sp.status
                ELSE 'not_started' END AS status
      FROM mes_seed_parts sp, generate_series(1, 3) o;
    INSERT INTO operations (id, tenant_id, part_id, cell_id, sequence, name, status, estimated_minutes,
                            actual_minutes)
    SELECT so.id, p_tenant_id, so.part_id,
           (SELECT c.id FROM cells c WHERE c.tenant_id = p_tenant_id
             ORDER BY c.name OFFSET (so.g + so.seq) % 5 LIMIT 1),
           so.seq, (ARRAY['Cut', 'Bend', 'Weld'])[so.seq], so.status, 30 + so.seq * 15,
           CASE WHEN so.status = 'completed' THEN 25 + so.seq * 15 END
      FROM mes_seed_ops so;

    INSERT INTO tasks (tenant_id, operation_id, assignee, status, due_at)
    SELECT p_tenant_id, so.id, (ARRAY['Ana', 'Ben', 'Chen', 'Dara', 'Eli'])[1 + so.g % 5],
           CASE so.status WHEN 'completed' THEN 'done' WHEN 'in_progress' THEN 'in_progress' ELSE 'assigned' END,
           now() + (so.g % 7) * interval '1 day'
      FROM mes_seed_ops so WHERE so.status <> 'not_started' OR so.seq = 1;

    INSERT INTO issues (tenant_id, job_id, issue_type, category, severity, status, title, description, reported_by)
    SELECT p_tenant_id, s.id,
           CASE WHEN s.g % 14 = 0 THEN 'ncr' ELSE 'issue' END,
           CASE WHEN s.g % 14 = 0 THEN (ARRAY['dimensional', 'material', 'surface', 'weld'])[1 + s.g % 4] END,
           (ARRAY['low', 'medium', 'high', 'critical'])[1 + s.g % 4],
           (ARRAY['open', 'investigating', 'resolved', 'closed'])[1 + (s.g / 7) % 4],
           CASE WHEN s.g % 14 = 0 THEN 'Out of tolerance on ' || 'J-' || (1000 + base + s.g)
                ELSE 'Machine stop on ' || 'J-' || (1000 + base + s.g) END,
           'Reported during production', (ARRAY['Ana', 'Ben', 'Chen'])[1 + s.g % 3]
      FROM mes_seed_jobs s WHERE s.g % 7 = 0;

    RETURN jsonb_build_object(
        'tenant_id', p_tenant_id,
        'jobs', (SELECT count(*) FROM mes_seed_jobs),
        'parts', (SELECT count(*) FROM mes_seed_parts),
        'operations', (SELECT count(*) FROM mes_seed_ops));
END $$;

-- Only this extension's functions (the schema may be shared, e.g. public).
DO $revoke$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT d.objid::regprocedure FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
              WHERE e.extname = 'mcp_mes' AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        -- Handlers that look rows up by id take them from one jsonb argument: custom
        -- plans would be re-planned on every call, the generic plan is as good there.
        -- (Fetch tools build their query per filter shape and EXECUTE it: mes_fetch.)
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan', f);
    END LOOP;
END
$revoke$;
GRANT EXECUTE ON FUNCTION mes_tenant(), mes_not_found(text, text),
    mes_fetch_query(text, jsonb), mes_fetch(text, jsonb), mes_count(uuid, text),
    mes_job_transition(jsonb, text, text[], text), mes_operation_transition(jsonb, text, text[], text)
    TO mcp_tool_runner;
-- (after mcp_tool_runner's: the order of a function's grants shows in pg_dump)
GRANT EXECUTE ON FUNCTION mes_explain_fetch(text, jsonb), mes_fetch_query(text, jsonb), mes_tenant()
    TO mcp_admin;
