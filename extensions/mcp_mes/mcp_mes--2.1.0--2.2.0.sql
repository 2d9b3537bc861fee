-- mcp_mes 2.1.0 -> 2.2.0: MCP servers (mcp_client) lose every table right (tools
-- only, through call_tool), and create_job numbers from a per-tenant counter row
-- instead of an advisory lock that any role could hold.

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
        -- follows the jobs it already has (counted once); numbers already taken (by
        -- hand or by mes_seed_demo) are skipped.
        UPDATE job_numbers SET last_number = last_number + 1 WHERE tenant_id = t
        RETURNING last_number INTO n;
        IF NOT FOUND THEN
            INSERT INTO job_numbers AS c (tenant_id, last_number)
            VALUES (t, 1001 + (SELECT count(*) FROM jobs))
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
ALTER FUNCTION mes_create_job(jsonb) SET plan_cache_mode = force_generic_plan;
