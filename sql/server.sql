-- mcp_auth: per-tenant MCP server configuration, health checks and server logs.

-- The installed version of mcp_auth (what CREATE or ALTER EXTENSION last made it):
-- a configuration's server_version by default.
CREATE FUNCTION mcp_auth_version() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'mcp_auth'
$$;

CREATE TABLE mcp_server_config (
    tenant_id         uuid        PRIMARY KEY,
    server_name       text        NOT NULL DEFAULT 'eryxon-flow-mcp'
                                  CHECK (pg_catalog.length(pg_catalog.btrim(server_name)) BETWEEN 1 AND 100),
    server_version    text        NOT NULL DEFAULT @extschema@.mcp_auth_version(),
    enabled           boolean     NOT NULL DEFAULT true,
    activity_logging  boolean     NOT NULL DEFAULT true,
    health_checks     boolean     NOT NULL DEFAULT true,
    auto_reconnect    boolean     NOT NULL DEFAULT true,
    last_connected_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE mcp_server_config IS
    'mcp_auth: MCP server settings per tenant; a tenant without a row has the defaults';

CREATE TABLE mcp_server_health (
    id               uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id        uuid        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('online', 'offline', 'degraded')),
    response_time_ms integer     CHECK (response_time_ms >= 0),
    error_message    text,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    checked_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (id, tenant_id)
);
CREATE INDEX mcp_server_health_tenant_time_idx ON mcp_server_health (tenant_id, checked_at DESC);

CREATE TABLE mcp_server_logs (
    id         uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id  uuid        NOT NULL,
    level      text        NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warning', 'error')),
    event_type text        NOT NULL,
    message    text        NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (id, tenant_id)
);
CREATE INDEX mcp_server_logs_tenant_time_idx ON mcp_server_logs (tenant_id, created_at DESC);

SELECT pg_catalog.pg_extension_config_dump('mcp_server_config', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_server_health', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_server_logs', '');
