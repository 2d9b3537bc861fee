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
        -- The column defaults of mcp_server_config.
        r := ROW(t, 'eryxon-flow-mcp', '2.1.0', true, true, true, true, NULL,
                 pg_catalog.now(), pg_catalog.now())::@extschema@.mcp_server_config;
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

-- One day partition (UTC) of a log, with the day's rows from the default partition
-- and its own indexes; false, with a WARNING, when it cannot be made (a lock not
-- granted within lock_timeout, say): it is tried again next time.
CREATE FUNCTION mcp_log_day_partition(p_parent text, p_day date) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' SET TimeZone = 'UTC' AS $$
DECLARE
    part text := p_parent || '_p' || pg_catalog.to_char(p_day, 'YYYYMMDD');
    lo timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    -- Nothing may land in the default partition between the move and the attach.
    EXECUTE pg_catalog.format('LOCK TABLE @extschema@.%I IN ACCESS EXCLUSIVE MODE', p_parent || '_default');
    EXECUTE pg_catalog.format(
        'CREATE TABLE @extschema@.%I (LIKE @extschema@.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
        part, p_parent);
    EXECUTE pg_catalog.format(
        'WITH moved AS (DELETE FROM @extschema@.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *)
         INSERT INTO @extschema@.%I SELECT * FROM moved', p_parent || '_default', part)
        USING lo, hi;
    IF p_parent = 'mcp_key_usage_logs' THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON @extschema@.%I (key_id, created_at)', part);
        EXECUTE pg_catalog.format('CREATE INDEX ON @extschema@.%I (tenant_id, created_at)', part);
    ELSE
        EXECUTE pg_catalog.format('CREATE INDEX ON @extschema@.%I (tenant_id, created_at DESC)', part);
        EXECUTE pg_catalog.format('CREATE INDEX ON @extschema@.%I (tenant_id, action, created_at DESC)', part);
    END IF;
    EXECUTE pg_catalog.format(
        'ALTER TABLE @extschema@.%I ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
        p_parent, part, lo, hi);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'mcp_auth: could not create log partition %: %', part, SQLERRM;
    RETURN false;
END
$$;

-- The logs' day partitions (UTC): mcp_key_usage_logs and activity_log get one for
-- each of the next p_days_ahead days, and one for every past day that has rows in
-- their default partition, whose rows move into it. Returns how many it made.
-- Never for the current day (nor within a minute of its ends): a call routed to the
-- default partition while a partition for its own day is attached would fail. So
-- after installation, the first day's rows stay in the default partition until the
-- day is over. A partition it cannot make is a WARNING, tried again next time; calls
-- meanwhile land in the default partition. Superusers only. The notifier worker runs
-- it when it starts and hourly while it runs.
CREATE FUNCTION maintain_mcp_log_partitions(p_days_ahead integer DEFAULT 7) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    parent text;
    d date;
    today date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    -- Past days ended a minute ago or earlier; future days begin a minute from now or later.
    past_before timestamptz :=
        ((pg_catalog.now() - interval '1 minute') AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC';
    future_from date := ((pg_catalog.now() + interval '1 minute') AT TIME ZONE 'UTC')::date + 1;
    made integer := 0;
BEGIN
    IF p_days_ahead IS NULL OR p_days_ahead NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'p_days_ahead: must be between 0 and 366 (got %)', COALESCE(p_days_ahead::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH parent IN ARRAY ARRAY['mcp_key_usage_logs', 'activity_log'] LOOP
        -- Past days in the default partition, oldest first (found on its created_at index).
        LOOP
            EXECUTE pg_catalog.format(
                'SELECT (pg_catalog.min(created_at) AT TIME ZONE ''UTC'')::date FROM @extschema@.%I
                  WHERE created_at < $1', parent || '_default') INTO d USING past_before;
            EXIT WHEN d IS NULL OR NOT @extschema@.mcp_log_day_partition(parent, d);
            made := made + 1;
        END LOOP;
        FOR d IN SELECT future_from + g FROM pg_catalog.generate_series(0, today + p_days_ahead - future_from) g LOOP
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I',
                                                 parent || '_p' || pg_catalog.to_char(d, 'YYYYMMDD'))) IS NOT NULL;
            IF @extschema@.mcp_log_day_partition(parent, d) THEN
                made := made + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;

-- Everything older than p_before in one log (mcp_key_usage_logs or activity_log), for
-- every tenant: day partitions (and 2.1.0's history partition) that end by then are
-- dropped whole (no row by row delete, no dead rows left), then the older rows of the
-- partition p_before falls in (and of the default partition) are deleted. Returns the
-- number of rows removed.
CREATE FUNCTION mcp_purge_log(p_parent text, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    part text;
    n bigint := 0;
    m bigint;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = pg_catalog.format('@extschema@.%I', p_parent)::pg_catalog.regclass
           AND c.relname ~ ('^' || p_parent || '_(p|until)[0-9]{8}$')
           -- A day partition ends the day after its date; 2.1.0's history on its date.
           AND (pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD')
                + CASE WHEN c.relname ~ '_p[0-9]{8}$' THEN 1 ELSE 0 END)::timestamp
               AT TIME ZONE 'UTC' <= p_before
         ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM @extschema@.%I', part) INTO m;
        EXECUTE pg_catalog.format('DROP TABLE @extschema@.%I', part);
        n := n + m;
    END LOOP;
    EXECUTE pg_catalog.format('DELETE FROM @extschema@.%I WHERE created_at < $1', p_parent) USING p_before;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;

-- Removes usage log rows older than p_older_than (at least 1 day: the last 24 hours
-- feed get_mcp_key_stats) and per-minute counts older than 25 hours; returns the
-- number of log rows removed. Totals, and so all-time statistics, are kept.
-- Superusers without mcp_auth.tenant_id purge every tenant, dropping whole days
-- (mcp_purge_log); others delete their own tenant's rows.
CREATE FUNCTION purge_mcp_usage_logs(p_older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_current_tenant();
    everyone boolean := t IS NULL AND @extschema@.mcp_caller_kind() = 'superuser';
    n bigint;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 day' THEN
        RAISE EXCEPTION 'p_older_than: must be at least 1 day (got %)', COALESCE(p_older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the last 24 hours of the log feed get_mcp_key_stats';
    END IF;
    IF everyone THEN
        n := @extschema@.mcp_purge_log('mcp_key_usage_logs', pg_catalog.now() - p_older_than);
    ELSE
        t := @extschema@.mcp_require_tenant();
        DELETE FROM @extschema@.mcp_key_usage_logs l
         WHERE l.created_at < pg_catalog.now() - p_older_than AND l.tenant_id = t;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    DELETE FROM @extschema@.mcp_key_usage_minutes m
     WHERE m.minute < pg_catalog.now() - interval '25 hours' AND (everyone OR m.tenant_id = t);
    RETURN n;
END
$$;

-- The same for activity_log (any positive age): superusers without
-- mcp_auth.tenant_id drop whole days of every tenant, others delete their own rows.
CREATE FUNCTION purge_activity_log(p_older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t uuid := @extschema@.mcp_current_tenant();
    n bigint;
BEGIN
    IF p_older_than IS NULL OR p_older_than <= interval '0' THEN
        RAISE EXCEPTION 'p_older_than: must be positive (got %)', COALESCE(p_older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t IS NULL AND @extschema@.mcp_caller_kind() = 'superuser' THEN
        RETURN @extschema@.mcp_purge_log('activity_log', pg_catalog.now() - p_older_than);
    END IF;
    t := @extschema@.mcp_require_tenant();
    DELETE FROM @extschema@.activity_log a
     WHERE a.created_at < pg_catalog.now() - p_older_than AND a.tenant_id = t;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
