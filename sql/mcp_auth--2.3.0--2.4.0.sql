-- mcp_auth 2.3.0 -> 2.4.0: each tenant stands alone (see README.md, "Upgrading").
-- - An mcp_admin login acts only for the tenants a superuser bound it to
--   (mcp_tenant_admins, grant_mcp_tenant_admin and the others below). Membership in
--   mcp_admin alone gives no tenant any more: bind your admin logins after the
--   update (the NOTICE at the end lists the members of mcp_admin).

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
