-- mcp_auth: server configuration, health and logs. Plain SQL, as each is a small
-- query of the current tenant's rows; the tenant comes from mcp_current_tenant()
-- (a validated key, or mcp_auth.tenant_id for mcp_admin and superusers).

CREATE FUNCTION mcp_require_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_current_tenant();
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'no tenant for this session'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'validate an MCP key in this transaction, or SET mcp_auth.tenant_id (mcp_admin)';
    END IF;
    RETURN t;
END
$$;

-- The tenant's configuration; a tenant that never saved one gets the defaults.
CREATE FUNCTION get_mcp_server_config() RETURNS mcp_server_config
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    r @extschema@.mcp_server_config;
BEGIN
    SELECT * INTO r FROM @extschema@.mcp_server_config c WHERE c.tenant_id = t;
    IF NOT FOUND THEN
        -- The column defaults of mcp_server_config, evaluated: they are written
        -- only there.
        EXECUTE (SELECT 'SELECT ' || pg_catalog.string_agg(
                            COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), 'NULL'),
                            ', ' ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE a.attrelid = '@extschema@.mcp_server_config'::pg_catalog.regclass
                    AND a.attnum > 0 AND NOT a.attisdropped)
        INTO r;
        r.tenant_id := t;
    END IF;
    RETURN r;
END
$$;

-- Changes the given settings (NULL leaves one as it is) and returns the result.
CREATE FUNCTION update_mcp_server_config(
    p_server_name text DEFAULT NULL,
    p_enabled boolean DEFAULT NULL,
    p_activity_logging boolean DEFAULT NULL,
    p_health_checks boolean DEFAULT NULL,
    p_auto_reconnect boolean DEFAULT NULL
) RETURNS mcp_server_config
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    r @extschema@.mcp_server_config;
BEGIN
    IF p_server_name IS NOT NULL AND pg_catalog.length(pg_catalog.btrim(p_server_name)) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'p_server_name: must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO @extschema@.mcp_server_config AS c
        (tenant_id, server_name, enabled, activity_logging, health_checks, auto_reconnect)
    VALUES (t, COALESCE(p_server_name, 'eryxon-flow-mcp'), COALESCE(p_enabled, true),
            COALESCE(p_activity_logging, true), COALESCE(p_health_checks, true),
            COALESCE(p_auto_reconnect, true))
    ON CONFLICT (tenant_id) DO UPDATE SET
        server_name = COALESCE(p_server_name, c.server_name),
        enabled = COALESCE(p_enabled, c.enabled),
        activity_logging = COALESCE(p_activity_logging, c.activity_logging),
        health_checks = COALESCE(p_health_checks, c.health_checks),
        auto_reconnect = COALESCE(p_auto_reconnect, c.auto_reconnect),
        updated_at = pg_catalog.now()
    RETURNING * INTO r;
    RETURN r;
END
$$;

-- One health check of the tenant's MCP server. Returns NULL (and records nothing)
-- when the tenant's health checks are turned off.
CREATE FUNCTION record_mcp_server_health(
    p_status text,
    p_response_time_ms integer DEFAULT NULL,
    p_error_message text DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    id uuid;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('online', 'offline', 'degraded') THEN
        RAISE EXCEPTION 'p_status: must be online, offline or degraded (got %)', COALESCE(pg_catalog.quote_literal(p_status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_response_time_ms < 0 THEN
        RAISE EXCEPTION 'p_response_time_ms: must not be negative (got %)', p_response_time_ms
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (@extschema@.get_mcp_server_config()).health_checks THEN
        RETURN NULL;
    END IF;
    INSERT INTO @extschema@.mcp_server_health (tenant_id, status, response_time_ms, error_message, metadata)
    VALUES (t, p_status, p_response_time_ms,
            @extschema@.mcp_redact_text(p_error_message),
            @extschema@.mcp_redact_json(COALESCE(p_metadata, '{}')))
    RETURNING mcp_server_health.id INTO id;
    RETURN id;
END
$$;

-- The admin sidebar's indicator. offline: the last check said so, or the server is
-- disabled in the configuration; degraded: the last check said so, or took 1000 ms
-- or more; unknown: no check in the last 5 minutes; online otherwise.
CREATE FUNCTION get_mcp_server_status()
RETURNS TABLE (status text, last_check timestamptz, response_time_ms integer, error_message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    h @extschema@.mcp_server_health;
BEGIN
    SELECT * INTO h FROM @extschema@.mcp_server_health x
     WHERE x.tenant_id = t ORDER BY x.checked_at DESC LIMIT 1;
    status := CASE
        WHEN NOT (@extschema@.get_mcp_server_config()).enabled THEN 'offline'
        WHEN h.id IS NULL OR h.checked_at < pg_catalog.now() - interval '5 minutes' THEN 'unknown'
        WHEN h.status = 'offline' THEN 'offline'
        WHEN h.status = 'degraded' OR h.response_time_ms >= 1000 THEN 'degraded'
        ELSE 'online'
    END;
    last_check := h.checked_at;
    response_time_ms := h.response_time_ms;
    error_message := CASE WHEN NOT (@extschema@.get_mcp_server_config()).enabled
                          THEN 'MCP server is disabled in its configuration'
                          ELSE h.error_message END;
    RETURN NEXT;
END
$$;

-- One server event (startup, connection, reconnect, error...). Texts are redacted.
CREATE FUNCTION log_mcp_server_event(
    p_event_type text,
    p_message text,
    p_level text DEFAULT 'info',
    p_metadata jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    id uuid;
BEGIN
    IF p_level IS NULL OR p_level NOT IN ('debug', 'info', 'warning', 'error') THEN
        RAISE EXCEPTION 'p_level: must be debug, info, warning or error (got %)', COALESCE(pg_catalog.quote_literal(p_level), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_event_type IS NULL OR pg_catalog.length(pg_catalog.btrim(p_event_type)) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'p_event_type: must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_message IS NULL THEN
        RAISE EXCEPTION 'p_message: must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO @extschema@.mcp_server_logs (tenant_id, level, event_type, message, metadata)
    VALUES (t, p_level, p_event_type, @extschema@.mcp_redact_text(p_message),
            @extschema@.mcp_redact_json(COALESCE(p_metadata, '{}')))
    RETURNING mcp_server_logs.id INTO id;
    RETURN id;
END
$$;

-- The tenant's server logs, newest first: at least p_level severe, of p_event_type,
-- containing p_search (in message or event type, any case), since p_since.
CREATE FUNCTION get_mcp_server_logs(
    p_level text DEFAULT NULL,
    p_event_type text DEFAULT NULL,
    p_search text DEFAULT NULL,
    p_since timestamptz DEFAULT NULL,
    p_limit integer DEFAULT 100
) RETURNS SETOF mcp_server_logs
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_require_tenant();
    levels text[] := ARRAY['debug', 'info', 'warning', 'error'];
BEGIN
    IF p_level IS NOT NULL AND NOT p_level = ANY (levels) THEN
        RAISE EXCEPTION 'p_level: must be debug, info, warning or error (got %)', pg_catalog.quote_literal(p_level)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'p_limit: must be between 1 and 1000 (got %)', COALESCE(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT l.* FROM @extschema@.mcp_server_logs l
         WHERE l.tenant_id = t
           AND (p_level IS NULL OR pg_catalog.array_position(levels, l.level) >= pg_catalog.array_position(levels, p_level))
           AND (p_event_type IS NULL OR l.event_type = p_event_type)
           AND (p_search IS NULL OR l.message ILIKE '%' || p_search || '%' OR l.event_type ILIKE '%' || p_search || '%')
           AND (p_since IS NULL OR l.created_at >= p_since)
         ORDER BY l.created_at DESC
         LIMIT p_limit;
END
$$;
