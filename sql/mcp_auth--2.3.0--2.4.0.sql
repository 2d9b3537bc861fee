-- mcp_auth 2.3.0 -> 2.4.0: each tenant stands alone (see README.md, "Upgrading").
-- - An mcp_admin login acts only for the tenants a superuser bound it to
--   (mcp_tenant_admins, grant_mcp_tenant_admin and the others below). Membership in
--   mcp_admin alone gives no tenant any more: bind your admin logins after the
--   update (the NOTICE at the end lists the members of mcp_admin).
-- - maintain_mcp_log_partitions makes partitions only for the last 62 days, at most
--   16 past days per log and run; -infinity and far-off rows stay in the default
--   partition instead of breaking maintenance.

\echo Use "ALTER EXTENSION mcp_auth UPDATE TO '2.4.0'" to load this file. \quit

CREATE TABLE @extschema@.mcp_tenant_admins (
    role       regrole     NOT NULL,
    -- 'tenant': tenant_id only; 'jwt': the tenant of request.jwt.claims; 'all': every tenant.
    scope      text        NOT NULL CHECK (scope IN ('tenant', 'jwt', 'all')),
    tenant_id  uuid,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL)),
    UNIQUE NULLS NOT DISTINCT (role, scope, tenant_id)
);
COMMENT ON TABLE @extschema@.mcp_tenant_admins IS
    'mcp_auth: the tenants each mcp_admin role may act for (superusers bind them)';
REVOKE ALL ON @extschema@.mcp_tenant_admins FROM PUBLIC;
-- No policy: only superusers (who bypass RLS) read or write it.
ALTER TABLE @extschema@.mcp_tenant_admins ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mcp_tenant_admins FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_tenant_admins', '');

CREATE FUNCTION @extschema@."mcp_tenant_admins_changed"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'mcp_tenant_admins_changed_wrapper';
CREATE TRIGGER mcp_tenant_admins_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.mcp_tenant_admins FOR EACH STATEMENT
    EXECUTE FUNCTION @extschema@.mcp_tenant_admins_changed();

CREATE FUNCTION @extschema@."grant_mcp_tenant_admin"(
	"p_role" TEXT,
	"p_tenant_id" uuid
) RETURNS bool
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'grant_mcp_tenant_admin_wrapper';

CREATE FUNCTION @extschema@."grant_mcp_jwt_tenant_admin"(
	"p_role" TEXT
) RETURNS bool
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'grant_mcp_jwt_tenant_admin_wrapper';

CREATE FUNCTION @extschema@."grant_mcp_all_tenants_admin"(
	"p_role" TEXT
) RETURNS bool
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'grant_mcp_all_tenants_admin_wrapper';

CREATE FUNCTION @extschema@."revoke_mcp_tenant_admin"(
	"p_role" TEXT,
	"p_tenant_id" uuid DEFAULT NULL
) RETURNS INT
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_mcp_tenant_admin_wrapper';

REVOKE ALL ON FUNCTION
    @extschema@.mcp_tenant_admins_changed(),
    @extschema@.grant_mcp_tenant_admin(text, uuid),
    @extschema@.grant_mcp_jwt_tenant_admin(text),
    @extschema@.grant_mcp_all_tenants_admin(text),
    @extschema@.revoke_mcp_tenant_admin(text, uuid)
FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.maintain_mcp_log_partitions(p_days_ahead integer DEFAULT 7) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    parent text;
    part text;
    d date;
    today date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    -- Past days ended a minute ago or earlier; future days begin a minute from now or later.
    past_before timestamptz :=
        ((pg_catalog.now() - interval '1 minute') AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC';
    future_from date := ((pg_catalog.now() + interval '1 minute') AT TIME ZONE 'UTC')::date + 1;
    made integer := 0;
    made_past integer;
BEGIN
    IF p_days_ahead IS NULL OR p_days_ahead NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'p_days_ahead: must be between 0 and 366 (got %)', COALESCE(p_days_ahead::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH parent IN ARRAY ARRAY['mcp_key_usage_logs', 'activity_log'] LOOP
        -- Past days in the default partition, oldest first (found on its created_at index).
        made_past := 0;
        LOOP
            EXIT WHEN made_past >= 16;
            EXECUTE pg_catalog.format(
                'SELECT (pg_catalog.min(created_at) AT TIME ZONE ''UTC'')::date FROM @extschema@.%I
                  WHERE created_at < $1 AND created_at >= $1 - interval ''62 days''', parent || '_default')
                INTO d USING past_before;
            EXIT WHEN d IS NULL OR NOT @extschema@.mcp_log_day_partition(parent, d);
            made := made + 1;
            made_past := made_past + 1;
        END LOOP;
        FOR d IN SELECT future_from + g FROM pg_catalog.generate_series(0, today + p_days_ahead - future_from) g LOOP
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I',
                                                 parent || '_p' || pg_catalog.to_char(d, 'YYYYMMDD'))) IS NOT NULL;
            IF @extschema@.mcp_log_day_partition(parent, d) THEN
                made := made + 1;
            END IF;
        END LOOP;
        FOR part IN
            SELECT p.partition FROM @extschema@.mcp_log_partitions(parent) p
             WHERE p.ends <= pg_catalog.now()
               -- Days only: 2.1.0's whole history is counted when it is purged, once,
               -- rather than in the notifier's transaction.
               AND p.partition ~ '_p[0-9]{8}$'
               AND NOT EXISTS (SELECT FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = p.partition)
             ORDER BY p.partition
        LOOP
            PERFORM @extschema@.mcp_log_partition_close(part);
        END LOOP;
    END LOOP;
    PERFORM @extschema@.mcp_drop_purged_logs();
    -- Counts of partitions dropped by hand.
    DELETE FROM @extschema@.mcp_log_partition_rows r
     WHERE pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I', r.partition)) IS NULL;
    -- Each partition's count into one row (the sum stays: rows added meanwhile are not
    -- seen, so not deleted).
    WITH several AS (SELECT r.partition FROM @extschema@.mcp_log_partition_rows r
                      GROUP BY r.partition HAVING pg_catalog.count(*) > 1),
         folded AS (DELETE FROM @extschema@.mcp_log_partition_rows r USING several
                     WHERE r.partition = several.partition RETURNING r.partition, r.rows)
    INSERT INTO @extschema@.mcp_log_partition_rows (partition, rows)
    SELECT f.partition, pg_catalog.sum(f.rows) FROM folded f GROUP BY f.partition;
    RETURN made;
END
$$;

DO $members$
DECLARE
    m text;
BEGIN
    SELECT pg_catalog.string_agg(r.rolname::text, ', ' ORDER BY r.rolname) INTO m
      FROM pg_catalog.pg_auth_members a
      JOIN pg_catalog.pg_roles r ON r.oid = a.member
     WHERE a.roleid = 'mcp_admin'::pg_catalog.regrole AND NOT r.rolsuper;
    IF m IS NOT NULL THEN
        RAISE NOTICE 'mcp_auth 2.4.0: members of mcp_admin now act only for the tenants they are bound to; bind them: %', m
            USING HINT = 'SELECT grant_mcp_tenant_admin(''<role>'', ''<tenant uuid>''), or grant_mcp_all_tenants_admin(''<role>'') for an application that serves every tenant';
    END IF;
END
$members$;
