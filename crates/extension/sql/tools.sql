-- mcp_auth: the tool registry. Tools are SQL functions `(p_args jsonb) RETURNS jsonb`
-- that call_tool runs for a validated key, as the role mcp_tool_runner (subject to RLS).

CREATE TABLE mcp_tools (
    name         text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,128}$'),
    domain       text        NOT NULL,
    title        text,
    description  text        NOT NULL,
    input_schema jsonb       NOT NULL DEFAULT '{"type": "object"}',
    handler      regprocedure NOT NULL,
    read_only    boolean     NOT NULL DEFAULT false,
    destructive  boolean     NOT NULL DEFAULT false,
    -- The extension that registered the tool (its CREATE EXTENSION registers it again
    -- on restore); NULL for tools registered by hand, which pg_dump keeps.
    extension    text,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE mcp_tools IS 'mcp_auth: MCP tools, their JSON Schemas and their SQL handlers';
SELECT pg_catalog.pg_extension_config_dump('mcp_tools', 'WHERE extension IS NULL');
