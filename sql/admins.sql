-- mcp_auth: which tenants each mcp_admin role acts for (src/admins.rs). Written only
-- by superusers, through grant_mcp_tenant_admin, grant_mcp_jwt_tenant_admin,
-- grant_mcp_all_tenants_admin and revoke_mcp_tenant_admin; no role has any right on
-- it. A binding applies to the role and to every role that has its rights.
CREATE TABLE mcp_tenant_admins (
    role       regrole     NOT NULL,
    -- 'tenant': tenant_id only; 'jwt': the tenant of request.jwt.claims; 'all': every tenant.
    scope      text        NOT NULL CHECK (scope IN ('tenant', 'jwt', 'all')),
    tenant_id  uuid,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL)),
    UNIQUE NULLS NOT DISTINCT (role, scope, tenant_id)
);
COMMENT ON TABLE mcp_tenant_admins IS
    'mcp_auth: the tenants each mcp_admin role may act for (superusers bind them)';
REVOKE ALL ON mcp_tenant_admins FROM PUBLIC;
-- No policy: only superusers (who bypass RLS) read or write it.
ALTER TABLE mcp_tenant_admins ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_tenant_admins FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('mcp_tenant_admins', '');
