-- mcp_mes 2.2.0 -> 2.3.0: admins manage their tenant's rows through column privileges
-- and mes_delete_row instead of table-level rights, which let any admin LOCK TABLE
-- jobs (or another MES table) and stop every tenant's tools.

\echo Use "ALTER EXTENSION mcp_mes UPDATE TO '2.3.0'" to load this file. \quit

REVOKE SELECT, INSERT, UPDATE, DELETE ON cells, jobs, parts, operations, tasks, issues FROM mcp_admin;

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
