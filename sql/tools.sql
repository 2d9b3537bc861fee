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

-- A dropped handler takes its tool along (DROP EXTENSION mcp_mes, DROP FUNCTION):
-- the registry would otherwise keep rows naming a function that no longer exists
-- (or, once its oid is reused, another function).
CREATE FUNCTION mcp_tools_forget_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM @extschema@.mcp_tools t
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND t.handler::pg_catalog.oid = d.objid;
END $$;
REVOKE ALL ON FUNCTION mcp_tools_forget_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER mcp_tools_forget_dropped ON sql_drop
    EXECUTE FUNCTION mcp_tools_forget_dropped();
