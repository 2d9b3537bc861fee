-- mcp_mes 2.2.0: a reference manufacturing execution schema and its 20 MCP tools.
--
-- Every table has `id uuid` and `tenant_id uuid`, row-level security forced on
-- mcp_current_tenant(), and composite foreign keys (tenant_id, parent id), so no row
-- can point at another tenant's row. Tool handlers are `(jsonb) RETURNS jsonb`,
-- registered with mcp_auth's register_mcp_tool; call_tool runs them as
-- mcp_tool_runner, for which RLS applies: a handler only ever sees the key's tenant.
-- While this script runs, search_path is this schema followed by mcp_auth's; every
-- function keeps that path (SET search_path FROM CURRENT).

\echo Use "CREATE EXTENSION mcp_mes" to load this file. \quit

-- Only superusers may create objects in this schema (see mcp_assert_private_schema).
SELECT mcp_assert_private_schema('@extschema@', 'mcp_mes');

CREATE TABLE cells (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id  uuid        NOT NULL,
    name       text        NOT NULL,
    wip_limit  integer     NOT NULL DEFAULT 10 CHECK (wip_limit > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tenant_id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE jobs (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL,
    job_number   text        NOT NULL,
    customer     text        NOT NULL,
    description  text,
    status       text        NOT NULL DEFAULT 'not_started'
                             CHECK (status IN ('not_started', 'in_progress', 'on_hold', 'completed')),
    priority     integer     NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
    due_date     date,
    started_at   timestamptz,
    completed_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tenant_id),
    UNIQUE (tenant_id, job_number)
);
-- Matching fetch_jobs' order, so a page of 50 reads 50 index entries.
CREATE INDEX jobs_tenant_status_idx ON jobs (tenant_id, status, created_at DESC, job_number);
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant_id, created_at DESC, job_number);

-- Each tenant's last J-number, so create_job numbers in O(1). Creators of one tenant
-- take turns on their tenant's row; only tool handlers (mcp_tool_runner) may touch
-- the table, so no other role can lock a row of it and hold creators up.
CREATE TABLE job_numbers (
    tenant_id   uuid   PRIMARY KEY,
    last_number bigint NOT NULL
);

CREATE TABLE parts (
    id                 uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id          uuid        NOT NULL,
    job_id             uuid        NOT NULL,
    part_number        text        NOT NULL,
    name               text        NOT NULL,
    quantity           integer     NOT NULL DEFAULT 1 CHECK (quantity > 0),
    quantity_completed integer     NOT NULL DEFAULT 0 CHECK (quantity_completed >= 0),
    status             text        NOT NULL DEFAULT 'not_started'
                                   CHECK (status IN ('not_started', 'in_progress', 'on_hold', 'completed')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tenant_id),
    FOREIGN KEY (tenant_id, job_id) REFERENCES jobs (tenant_id, id) ON DELETE CASCADE,
    CHECK (quantity_completed <= quantity)
);
-- fetch_parts' order (part_number) after each equality filter it takes.
CREATE INDEX parts_tenant_job_idx ON parts (tenant_id, job_id, part_number);
CREATE INDEX parts_tenant_number_idx ON parts (tenant_id, part_number);
CREATE INDEX parts_tenant_status_idx ON parts (tenant_id, status, part_number);

CREATE TABLE operations (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id         uuid        NOT NULL,
    part_id           uuid        NOT NULL,
    cell_id           uuid,
    sequence          integer     NOT NULL,
    name              text        NOT NULL,
    status            text        NOT NULL DEFAULT 'not_started'
                                  CHECK (status IN ('not_started', 'in_progress', 'on_hold', 'completed')),
    estimated_minutes integer     CHECK (estimated_minutes >= 0),
    actual_minutes    integer     CHECK (actual_minutes >= 0),
    notes             text,
    started_at        timestamptz,
    completed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tenant_id),
    FOREIGN KEY (tenant_id, part_id) REFERENCES parts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, cell_id) REFERENCES cells (tenant_id, id)
);
-- fetch_operations' order (part_id, sequence) after each equality filter it takes.
CREATE INDEX operations_tenant_part_idx ON operations (tenant_id, part_id, sequence);
CREATE INDEX operations_tenant_cell_idx ON operations (tenant_id, cell_id, part_id, sequence);
CREATE INDEX operations_tenant_status_idx ON operations (tenant_id, status, part_id, sequence);

-- Assignments of people to operations.
CREATE TABLE tasks (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL,
    operation_id uuid        NOT NULL,
    assignee     text        NOT NULL,
    status       text        NOT NULL DEFAULT 'assigned'
                             CHECK (status IN ('assigned', 'in_progress', 'done', 'cancelled')),
    notes        text,
    due_at       timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, tenant_id),
    FOREIGN KEY (tenant_id, operation_id) REFERENCES operations (tenant_id, id) ON DELETE CASCADE
);
-- fetch_tasks' order (newest first) after each equality filter it takes.
CREATE INDEX tasks_tenant_created_idx ON tasks (tenant_id, created_at DESC);
CREATE INDEX tasks_tenant_status_idx ON tasks (tenant_id, status, created_at DESC);
CREATE INDEX tasks_tenant_operation_idx ON tasks (tenant_id, operation_id, created_at DESC);

-- Production issues; NCRs (non-conformance reports) are issues of type 'ncr'.
CREATE TABLE issues (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL,
    job_id       uuid,
    operation_id uuid,
    issue_type   text        NOT NULL DEFAULT 'issue' CHECK (issue_type IN ('issue', 'ncr')),
    category     text,
    severity     text        NOT NULL DEFAULT 'medium' CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status       text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'investigating', 'resolved', 'closed')),
    title        text        NOT NULL,
    description  text,
    reported_by  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (id, tenant_id),
    FOREIGN KEY (tenant_id, job_id) REFERENCES jobs (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, operation_id) REFERENCES operations (tenant_id, id) ON DELETE SET NULL (operation_id),
    CHECK (issue_type = 'issue' OR category IS NOT NULL)
);
-- fetch_issues' and fetch_ncrs' order (newest first) after each equality filter.
CREATE INDEX issues_tenant_type_created_idx ON issues (tenant_id, issue_type, created_at DESC);
CREATE INDEX issues_tenant_type_idx ON issues (tenant_id, issue_type, status, created_at DESC);
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

DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cells', 'jobs', 'parts', 'operations', 'tasks', 'issues', 'job_numbers',
                             'dashboard_counts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = mcp_current_tenant())
                            WITH CHECK (tenant_id = mcp_current_tenant())', t);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
        -- Tools read and write the key's tenant; admins manage theirs (below). MCP servers
        -- (mcp_client) have no right on any table: they go through call_tool.
        -- dashboard_counts is written only by the counting triggers (as its owner).
        IF t = 'dashboard_counts' THEN
            EXECUTE format('GRANT SELECT ON %I TO mcp_tool_runner, mcp_admin', t);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO mcp_tool_runner', t);
        END IF;
        -- Dumped with their rows, except the counts: restoring the rows fires the
        -- counting triggers, which make them again.
        IF t <> 'dashboard_counts' THEN
            EXECUTE format('SELECT pg_catalog.pg_extension_config_dump(%L, '''')', t);
        END IF;
    END LOOP;
END
$rls$;

------------------------------------------------------------------------------------
-- Counts for the dashboard (dashboard_counts)
------------------------------------------------------------------------------------

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

-- The sum of a tenant's metric over the slots (0 when it has none).
CREATE FUNCTION mes_count(p_tenant uuid, p_metric text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT COALESCE(sum(n), 0)::bigint FROM dashboard_counts WHERE tenant_id = p_tenant AND metric = p_metric
$$;

------------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------------

-- The tenant of the running call; every handler starts here.
CREATE FUNCTION mes_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    t uuid := mcp_current_tenant();
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'no tenant: MES tools run through call_tool with a valid key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN t;
END $$;

CREATE FUNCTION mes_not_found(p_what text, p_id text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION '% not found: %', p_what, p_id USING ERRCODE = 'no_data_found';
END $$;

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

-- A lifecycle move, atomically: one conditional UPDATE. When it matches nothing, the
-- row either does not exist for this tenant (not_found) or is in the wrong state.
CREATE FUNCTION mes_job_transition(p_args jsonb, p_verb text, p_from text[], p_to text)
RETURNS jsonb LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    j jobs;
    current_status text;
    number text;
BEGIN
    PERFORM mes_tenant();
    UPDATE jobs SET status = p_to, updated_at = now(),
                    started_at = CASE WHEN p_to = 'in_progress' THEN COALESCE(started_at, now()) ELSE started_at END,
                    completed_at = CASE WHEN p_to = 'completed' THEN now() ELSE completed_at END
     WHERE id = (p_args->>'job_id')::uuid AND status = ANY (p_from)
    RETURNING * INTO j;
    IF FOUND THEN
        RETURN jsonb_build_object('job', to_jsonb(j),
            'message', format('Job %s is now %s', j.job_number, p_to));
    END IF;
    SELECT status, job_number INTO current_status, number FROM jobs WHERE id = (p_args->>'job_id')::uuid;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Job', p_args->>'job_id');
    END IF;
    RAISE EXCEPTION 'Cannot % job %: status is %', p_verb, number, current_status
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;

CREATE FUNCTION mes_operation_transition(p_args jsonb, p_verb text, p_from text[], p_to text)
RETURNS jsonb LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    o operations;
    current_status text;
    label text;
BEGIN
    PERFORM mes_tenant();
    UPDATE operations SET status = p_to, updated_at = now(),
                          started_at = CASE WHEN p_to = 'in_progress' THEN COALESCE(started_at, now()) ELSE started_at END,
                          completed_at = CASE WHEN p_to = 'completed' THEN now() ELSE completed_at END
     WHERE id = (p_args->>'operation_id')::uuid AND status = ANY (p_from)
    RETURNING * INTO o;
    IF FOUND THEN
        RETURN jsonb_build_object('operation', to_jsonb(o),
            'message', format('Operation %s is now %s', o.name, p_to));
    END IF;
    SELECT status, name INTO current_status, label FROM operations WHERE id = (p_args->>'operation_id')::uuid;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Operation', p_args->>'operation_id');
    END IF;
    RAISE EXCEPTION 'Cannot % operation %: status is %', p_verb, label, current_status
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;

------------------------------------------------------------------------------------
-- Jobs
------------------------------------------------------------------------------------

CREATE FUNCTION mes_fetch_jobs(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_jobs', p_args)
$$;

CREATE FUNCTION mes_create_job(p_args jsonb) RETURNS jsonb
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

CREATE FUNCTION mes_update_job(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    j jobs;
BEGIN
    PERFORM mes_tenant();
    UPDATE jobs SET customer = COALESCE(p_args->>'customer', customer),
                    description = COALESCE(p_args->>'description', description),
                    priority = COALESCE((p_args->>'priority')::int, priority),
                    due_date = COALESCE((p_args->>'due_date')::date, due_date),
                    updated_at = now()
     WHERE id = (p_args->>'job_id')::uuid
    RETURNING * INTO j;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Job', p_args->>'job_id');
    END IF;
    RETURN jsonb_build_object('job', to_jsonb(j), 'message', format('Updated job %s', j.job_number));
END $$;

CREATE FUNCTION mes_start_job(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_job_transition(p_args, 'start', ARRAY['not_started', 'on_hold'], 'in_progress')
$$;
CREATE FUNCTION mes_stop_job(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_job_transition(p_args, 'stop', ARRAY['in_progress'], 'on_hold')
$$;
CREATE FUNCTION mes_resume_job(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_job_transition(p_args, 'resume', ARRAY['on_hold'], 'in_progress')
$$;
CREATE FUNCTION mes_complete_job(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_job_transition(p_args, 'complete', ARRAY['in_progress'], 'completed')
$$;

------------------------------------------------------------------------------------
-- Parts
------------------------------------------------------------------------------------

CREATE FUNCTION mes_fetch_parts(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_parts', p_args)
$$;

CREATE FUNCTION mes_update_part(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    p parts;
BEGIN
    PERFORM mes_tenant();
    UPDATE parts SET quantity_completed = COALESCE((p_args->>'quantity_completed')::int, quantity_completed),
                     status = COALESCE(p_args->>'status',
                                       CASE WHEN (p_args->>'quantity_completed')::int >= quantity THEN 'completed'
                                            WHEN (p_args->>'quantity_completed')::int > 0 THEN 'in_progress'
                                            ELSE status END),
                     updated_at = now()
     WHERE id = (p_args->>'part_id')::uuid
    RETURNING * INTO p;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Part', p_args->>'part_id');
    END IF;
    RETURN jsonb_build_object('part', to_jsonb(p),
        'message', format('Part %s: %s of %s done', p.part_number, p.quantity_completed, p.quantity));
EXCEPTION WHEN check_violation THEN
    RAISE EXCEPTION 'quantity_completed: must be between 0 and the part''s quantity'
        USING ERRCODE = 'check_violation';
END $$;

------------------------------------------------------------------------------------
-- Tasks (assignments)
------------------------------------------------------------------------------------

CREATE FUNCTION mes_fetch_tasks(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_tasks', p_args)
$$;

CREATE FUNCTION mes_update_task(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t tasks;
BEGIN
    PERFORM mes_tenant();
    UPDATE tasks SET assignee = COALESCE(p_args->>'assignee', assignee),
                     status = COALESCE(p_args->>'status', status),
                     notes = COALESCE(p_args->>'notes', notes),
                     updated_at = now()
     WHERE id = (p_args->>'task_id')::uuid
    RETURNING * INTO t;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Task', p_args->>'task_id');
    END IF;
    RETURN jsonb_build_object('task', to_jsonb(t), 'message', format('Task assigned to %s is %s', t.assignee, t.status));
END $$;

------------------------------------------------------------------------------------
-- Operations
------------------------------------------------------------------------------------

CREATE FUNCTION mes_fetch_operations(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_operations', p_args)
$$;

CREATE FUNCTION mes_start_operation(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_operation_transition(p_args, 'start', ARRAY['not_started', 'on_hold'], 'in_progress')
$$;
CREATE FUNCTION mes_pause_operation(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_operation_transition(p_args, 'pause', ARRAY['in_progress'], 'on_hold')
$$;
CREATE FUNCTION mes_complete_operation(p_args jsonb) RETURNS jsonb
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT mes_operation_transition(p_args, 'complete', ARRAY['in_progress'], 'completed')
$$;

CREATE FUNCTION mes_update_operation(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    o operations;
BEGIN
    PERFORM mes_tenant();
    IF p_args->>'cell_id' IS NOT NULL AND NOT EXISTS (SELECT FROM cells WHERE id = (p_args->>'cell_id')::uuid) THEN
        PERFORM mes_not_found('Cell', p_args->>'cell_id');
    END IF;
    UPDATE operations SET estimated_minutes = COALESCE((p_args->>'estimated_minutes')::int, estimated_minutes),
                          actual_minutes = COALESCE((p_args->>'actual_minutes')::int, actual_minutes),
                          cell_id = COALESCE((p_args->>'cell_id')::uuid, cell_id),
                          notes = COALESCE(p_args->>'notes', notes),
                          updated_at = now()
     WHERE id = (p_args->>'operation_id')::uuid
    RETURNING * INTO o;
    IF NOT FOUND THEN
        PERFORM mes_not_found('Operation', p_args->>'operation_id');
    END IF;
    RETURN jsonb_build_object('operation', to_jsonb(o), 'message', format('Updated operation %s', o.name));
END $$;

------------------------------------------------------------------------------------
-- Issues and NCRs
------------------------------------------------------------------------------------

CREATE FUNCTION mes_fetch_issues(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_issues', p_args)
$$;

CREATE FUNCTION mes_fetch_ncrs(p_args jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT mes_fetch('fetch_ncrs', p_args)
$$;

------------------------------------------------------------------------------------
-- Analytics
------------------------------------------------------------------------------------

CREATE FUNCTION mes_get_dashboard_stats(p_args jsonb) RETURNS jsonb
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
CREATE FUNCTION mes_get_qrm_data(p_args jsonb) RETURNS jsonb
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

------------------------------------------------------------------------------------
-- Demo data
------------------------------------------------------------------------------------

-- Exactly p_jobs jobs for the tenant, spread over every status, with parts,
-- operations in five cells, task assignments, issues and NCRs.
CREATE FUNCTION mes_seed_demo(p_tenant_id uuid, p_jobs integer) RETURNS jsonb
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
GRANT EXECUTE ON FUNCTION mes_seed_demo(uuid, integer) TO mcp_admin;
GRANT EXECUTE ON FUNCTION mes_tenant(), mes_not_found(text, text),
    mes_fetch_query(text, jsonb), mes_fetch(text, jsonb), mes_count(uuid, text),
    mes_job_transition(jsonb, text, text[], text), mes_operation_transition(jsonb, text, text[], text)
    TO mcp_tool_runner;
-- (after mcp_tool_runner's: the order of a function's grants shows in pg_dump)
GRANT EXECUTE ON FUNCTION mes_explain_fetch(text, jsonb), mes_fetch_query(text, jsonb), mes_tenant()
    TO mcp_admin;

------------------------------------------------------------------------------------
-- The 20 tools, with their JSON Schemas and MCP annotations
------------------------------------------------------------------------------------

DO $tools$
DECLARE
    uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
    status_enum constant jsonb := '["not_started", "in_progress", "on_hold", "completed"]';
    lim constant jsonb := '{"type": "integer", "minimum": 1, "maximum": 500, "default": 50,
                            "description": "Most rows to return (default 50, at most 500)"}';
    id_of jsonb;
    t record;
BEGIN
    id_of := jsonb_build_object('type', 'string', 'pattern', uuid_re);
    FOR t IN SELECT * FROM (VALUES
        -- name, domain, title, description, read_only, destructive, schema
        ('fetch_jobs', 'jobs', 'Fetch jobs', 'Retrieve jobs with filtering by status, customer or text', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'status', jsonb_build_object('type', 'string', 'enum', status_enum),
             'customer', '{"type": "string", "maxLength": 200}'::jsonb,
             'search', '{"type": "string", "maxLength": 200}'::jsonb,
             'limit', lim, 'offset', '{"type": "integer", "minimum": 0}'::jsonb))),
        ('create_job', 'jobs', 'Create job', 'Create a new job', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["customer"]'::jsonb,
             'properties', jsonb_build_object(
             'customer', '{"type": "string", "minLength": 1, "maxLength": 200}'::jsonb,
             'job_number', '{"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"}'::jsonb,
             'description', '{"type": "string", "maxLength": 2000}'::jsonb,
             'priority', '{"type": "integer", "minimum": 1, "maximum": 5}'::jsonb,
             'due_date', '{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}'::jsonb))),
        ('update_job', 'jobs', 'Update job', 'Update job details (customer, description, priority, due date)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["job_id"]'::jsonb,
             'properties', jsonb_build_object(
             'job_id', id_of,
             'customer', '{"type": "string", "minLength": 1, "maxLength": 200}'::jsonb,
             'description', '{"type": "string", "maxLength": 2000}'::jsonb,
             'priority', '{"type": "integer", "minimum": 1, "maximum": 5}'::jsonb,
             'due_date', '{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}'::jsonb))),
        ('start_job', 'jobs', 'Start job', 'Start job execution (not_started or on_hold to in_progress)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["job_id"]'::jsonb,
             'properties', jsonb_build_object('job_id', id_of))),
        ('stop_job', 'jobs', 'Stop job', 'Stop a running job (in_progress to on_hold)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["job_id"]'::jsonb,
             'properties', jsonb_build_object('job_id', id_of))),
        ('complete_job', 'jobs', 'Complete job', 'Mark a job as complete (in_progress to completed)', false, true,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["job_id"]'::jsonb,
             'properties', jsonb_build_object('job_id', id_of))),
        ('resume_job', 'jobs', 'Resume job', 'Resume a paused job (on_hold to in_progress)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["job_id"]'::jsonb,
             'properties', jsonb_build_object('job_id', id_of))),
        ('fetch_parts', 'parts', 'Fetch parts', 'Get parts data, by job or status', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'job_id', id_of, 'status', jsonb_build_object('type', 'string', 'enum', status_enum), 'limit', lim))),
        ('update_part', 'parts', 'Update part', 'Update part progress (quantity completed, status)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["part_id"]'::jsonb,
             'properties', jsonb_build_object(
             'part_id', id_of,
             'quantity_completed', '{"type": "integer", "minimum": 0}'::jsonb,
             'status', jsonb_build_object('type', 'string', 'enum', status_enum)))),
        ('fetch_tasks', 'tasks', 'Fetch tasks', 'Query task assignments', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'status', '{"type": "string", "enum": ["assigned", "in_progress", "done", "cancelled"]}'::jsonb,
             'assignee', '{"type": "string", "maxLength": 200}'::jsonb,
             'operation_id', id_of, 'limit', lim))),
        ('update_task', 'tasks', 'Update task', 'Modify a task assignment (assignee, status, notes)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["task_id"]'::jsonb,
             'properties', jsonb_build_object(
             'task_id', id_of,
             'assignee', '{"type": "string", "minLength": 1, "maxLength": 200}'::jsonb,
             'status', '{"type": "string", "enum": ["assigned", "in_progress", "done", "cancelled"]}'::jsonb,
             'notes', '{"type": "string", "maxLength": 2000}'::jsonb))),
        ('fetch_operations', 'operations', 'Fetch operations', 'Get operation data, by part, cell or status', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'part_id', id_of, 'cell_id', id_of,
             'status', jsonb_build_object('type', 'string', 'enum', status_enum), 'limit', lim))),
        ('start_operation', 'operations', 'Start operation', 'Start an operation (not_started or on_hold to in_progress)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["operation_id"]'::jsonb,
             'properties', jsonb_build_object('operation_id', id_of))),
        ('pause_operation', 'operations', 'Pause operation', 'Pause an operation (in_progress to on_hold)', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["operation_id"]'::jsonb,
             'properties', jsonb_build_object('operation_id', id_of))),
        ('complete_operation', 'operations', 'Complete operation', 'Complete an operation (in_progress to completed)', false, true,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["operation_id"]'::jsonb,
             'properties', jsonb_build_object('operation_id', id_of))),
        ('update_operation', 'operations', 'Update operation', 'Update operation times, cell or notes', false, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'required', '["operation_id"]'::jsonb,
             'properties', jsonb_build_object(
             'operation_id', id_of, 'cell_id', id_of,
             'estimated_minutes', '{"type": "integer", "minimum": 0}'::jsonb,
             'actual_minutes', '{"type": "integer", "minimum": 0}'::jsonb,
             'notes', '{"type": "string", "maxLength": 2000}'::jsonb))),
        ('fetch_issues', 'issues', 'Fetch issues', 'View production issues', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'status', '{"type": "string", "enum": ["open", "investigating", "resolved", "closed"]}'::jsonb,
             'severity', '{"type": "string", "enum": ["low", "medium", "high", "critical"]}'::jsonb,
             'job_id', id_of, 'limit', lim))),
        ('fetch_ncrs', 'ncrs', 'Fetch NCRs', 'Get non-conformance reports', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object(
             'status', '{"type": "string", "enum": ["open", "investigating", "resolved", "closed"]}'::jsonb,
             'category', '{"type": "string", "maxLength": 100}'::jsonb, 'limit', lim))),
        ('get_dashboard_stats', 'analytics', 'Dashboard statistics', 'Retrieve dashboard metrics: counts by status, open issues and NCRs, overdue jobs', true, false,
         '{"type": "object", "additionalProperties": false, "properties": {}}'::jsonb),
        ('get_qrm_data', 'analytics', 'QRM data', 'Get Quick Response Manufacturing data: work in progress per cell against its WIP limit', true, false,
         jsonb_build_object('type', 'object', 'additionalProperties', false, 'properties', jsonb_build_object('cell_id', id_of)))
    ) v(name, domain, title, description, read_only, destructive, input_schema)
    LOOP
        PERFORM register_mcp_tool(
            p_name := t.name, p_domain := t.domain, p_description := t.description,
            p_input_schema := t.input_schema,
            p_handler := format('mes_%s(jsonb)', t.name)::regprocedure,
            p_read_only := t.read_only, p_title := t.title, p_destructive := t.destructive);
    END LOOP;
END
$tools$;

------------------------------------------------------------------------------------
-- Admins (2.3.0): their tenant's rows through column privileges and mes_delete_row.
-- A table-level INSERT, UPDATE or DELETE right would also let an admin LOCK TABLE a
-- table in a mode that stops every tenant's tools (PostgreSQL checks LOCK TABLE
-- against table-level rights only); column privileges do not.
------------------------------------------------------------------------------------
DO $admin$
DECLARE
    t text;
    cols text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cells', 'jobs', 'parts', 'operations', 'tasks', 'issues'] LOOP
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
          FROM pg_attribute WHERE attrelid = t::regclass AND attnum > 0 AND NOT attisdropped;
        EXECUTE format('GRANT SELECT (%s), INSERT (%s), UPDATE (%s) ON %I TO mcp_admin', cols, cols, cols, t);
    END LOOP;
END
$admin$;

-- Deletes one row of the caller's tenant (an admin's: mcp_current_tenant()); true
-- when there was one.
CREATE FUNCTION mes_delete_row(p_table text, p_id uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mes_tenant();
    n bigint;
BEGIN
    IF p_table IS NULL OR p_table NOT IN ('cells', 'jobs', 'parts', 'operations', 'tasks', 'issues') THEN
        RAISE EXCEPTION 'p_table: must be one of cells, jobs, parts, operations, tasks, issues'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE pg_catalog.format('DELETE FROM @extschema@.%I WHERE tenant_id = $1 AND id = $2', p_table)
        USING t, p_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
REVOKE ALL ON FUNCTION mes_delete_row(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mes_delete_row(text, uuid) TO mcp_admin;
