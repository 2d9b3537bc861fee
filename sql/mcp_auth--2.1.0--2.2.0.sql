-- mcp_auth 2.1.0 -> 2.2.0 (hardening; see "Upgrading" in README.md):
-- - functions that pinned search_path (every SECURITY DEFINER one) resolve names in
--   pg_catalog only (pg_catalog, pg_temp) and name the extension's own objects with its schema, so
--   nothing another role creates in that schema can be picked instead;
-- - mcp_assert_private_schema, which install scripts use to refuse a schema that
--   others may create in;
-- - a rotated-out key's expiry can only be shortened; mcp_admin may change a key's
--   allowed_tools (the update trigger's check was not executable for it);
-- - mcp_tools_changed, the trigger that invalidates each backend's registry copy.
-- The limiter, the notifier and key-name uniqueness no longer use advisory locks;
-- that is in the library, which this version's scripts and 2.1.0's share.

\echo Use "ALTER EXTENSION mcp_auth UPDATE TO '2.2.0'" to load this file. \quit

DO $definer$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
          JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'mcp_auth' AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND 'search_path=pg_catalog, ' || pg_catalog.quote_ident(n.nspname) || ', pg_temp'
               = ANY (p.proconfig)
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$definer$;

-- A schema must accept new objects from superusers only before an extension of
-- ours goes into it: an object planted there by anyone else could shadow what the
-- extension's functions use, and those functions run as the extension's owner (a
-- superuser) or, for tool handlers, as mcp_tool_runner in a caller's tenant. Raises
-- otherwise, naming the roles that may create there. mcp_mes calls it too.
CREATE FUNCTION mcp_assert_private_schema(p_schema regnamespace, p_extension text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    writers text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                WHERE n.oid = p_schema::pg_catalog.oid AND a.grantee = 0
                  AND a.privilege_type = 'CREATE') THEN
        writers := 'PUBLIC';
    ELSE
        -- Login roles that may create there, directly or through a role they belong to.
        SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(l.rolname), ', ')
          INTO writers
          FROM pg_catalog.pg_roles l
          JOIN pg_catalog.pg_roles g ON pg_catalog.pg_has_role(l.oid, g.oid, 'MEMBER')
         WHERE l.rolcanlogin AND NOT l.rolsuper
           AND pg_catalog.has_schema_privilege(g.oid, p_schema::pg_catalog.oid, 'CREATE');
    END IF;
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION '% cannot be installed in schema %: roles other than superusers may create objects in it (%)',
                        p_extension, p_schema, writers
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its functions run with more rights than those roles have; an object planted in their schema could run with those rights.',
                  HINT = pg_catalog.format('Install it in a schema only superusers can create in (CREATE SCHEMA mcp; CREATE EXTENSION %s SCHEMA mcp;), or REVOKE CREATE ON SCHEMA %s from those roles first.',
                                           p_extension, p_schema);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION mcp_assert_private_schema(regnamespace, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mcp_keys_before_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.allowed_tools IS DISTINCT FROM OLD.allowed_tools THEN
        PERFORM @extschema@.mcp_check_allowed_tools(NEW.allowed_tools, 'allowed_tools');
    END IF;
    -- A rotated-out key's grace period can end sooner, never later: otherwise an
    -- UPDATE of expires_at would bring a replaced key back to life.
    IF OLD.replaced_by IS NOT NULL
       AND NEW.expires_at IS DISTINCT FROM OLD.expires_at
       AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at) THEN
        RAISE EXCEPTION 'expires_at: the key was rotated; its grace period can only be shortened'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND NEW.enabled THEN
        RAISE EXCEPTION 'enabled: the key is revoked and cannot be enabled again'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

GRANT EXECUTE ON FUNCTION mcp_check_allowed_tools(jsonb, text) TO mcp_admin;

-- Each backend keeps the tool registry with compiled schemas; this trigger tells every
-- backend when to drop its copy.
CREATE FUNCTION mcp_tools_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mcp_tools_changed_wrapper';
REVOKE ALL ON FUNCTION mcp_tools_changed() FROM PUBLIC;
CREATE TRIGGER mcp_tools_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mcp_tools
    FOR EACH STATEMENT EXECUTE FUNCTION mcp_tools_changed();

-- 2.2.0, production size (see "Scaling out" in README.md).

-- Every primary key, unique constraint and foreign key of a tenant's table includes
-- tenant_id: Citus's rule for distributed tables.
ALTER TABLE mcp_key_usage_counters DROP CONSTRAINT mcp_key_usage_counters_key_id_fkey;
ALTER TABLE mcp_authentication_keys DROP CONSTRAINT mcp_authentication_keys_pkey,
    ADD PRIMARY KEY (id, tenant_id);
DROP INDEX mcp_keys_lookup_hash_key;
-- Validation finds a key by lookup_hash alone (the leading column).
CREATE UNIQUE INDEX mcp_keys_lookup_hash_key ON mcp_authentication_keys (lookup_hash, tenant_id);
ALTER TABLE mcp_key_usage_counters DROP CONSTRAINT mcp_key_usage_counters_pkey,
    ADD PRIMARY KEY (key_id, slot, tenant_id),
    ADD FOREIGN KEY (key_id, tenant_id) REFERENCES mcp_authentication_keys (id, tenant_id) ON DELETE CASCADE;
ALTER TABLE mcp_key_usage_totals DROP CONSTRAINT mcp_key_usage_totals_pkey,
    ADD PRIMARY KEY (key_id, tool_name, slot, tenant_id);
ALTER TABLE mcp_key_usage_minutes DROP CONSTRAINT mcp_key_usage_minutes_pkey,
    ADD PRIMARY KEY (key_id, minute, slot, tenant_id);
ALTER TABLE mcp_rate_limit_events DROP CONSTRAINT mcp_rate_limit_events_pkey,
    ADD PRIMARY KEY (key_id, cum, tenant_id);
ALTER TABLE mcp_server_health DROP CONSTRAINT mcp_server_health_pkey, ADD PRIMARY KEY (id, tenant_id);
ALTER TABLE mcp_server_logs DROP CONSTRAINT mcp_server_logs_pkey, ADD PRIMARY KEY (id, tenant_id);

-- The two logs become partitioned by day. Each 2.1.0 table, as it is (no row is
-- copied), becomes the partition of everything before tomorrow (UTC), named
-- <log>_untilYYYYMMDD; like the day partitions it leaves the extension (pg_dump dumps
-- it with its rows), and purge drops it whole once that day is past its cutoff.
ALTER TABLE mcp_key_usage_logs RENAME TO mcp_key_usage_logs_2_1;
ALTER TABLE mcp_key_usage_logs_2_1
    RENAME CONSTRAINT mcp_key_usage_logs_response_time_ms_check TO mcp_key_usage_logs_2_1_response_time_ms_check;
ALTER INDEX mcp_usage_logs_key_time_idx RENAME TO mcp_key_usage_logs_2_1_key_time_idx;
ALTER INDEX mcp_usage_logs_tenant_time_idx RENAME TO mcp_key_usage_logs_2_1_tenant_time_idx;
ALTER TABLE activity_log RENAME TO activity_log_2_1;
ALTER INDEX activity_log_tenant_time_idx RENAME TO activity_log_2_1_tenant_time_idx;
ALTER INDEX activity_log_tenant_action_idx RENAME TO activity_log_2_1_tenant_action_idx;

CREATE TABLE mcp_key_usage_logs (
    id               uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id        uuid        NOT NULL,
    key_id           uuid,
    tool_name        text        NOT NULL,
    tool_arguments   jsonb,
    success          boolean     NOT NULL,
    error_message    text,
    response_time_ms integer     CHECK (response_time_ms >= 0),
    ip_address       inet,
    user_agent       text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
) PARTITION BY RANGE (created_at);
CREATE TABLE mcp_key_usage_logs_default PARTITION OF mcp_key_usage_logs DEFAULT;
COMMENT ON TABLE mcp_key_usage_logs IS
    'mcp_auth: audit trail of MCP requests (arguments redacted); purge with purge_mcp_usage_logs()';
CREATE INDEX mcp_usage_logs_key_time_idx ON mcp_key_usage_logs_default (key_id, created_at);
CREATE INDEX mcp_usage_logs_tenant_time_idx ON mcp_key_usage_logs_default (tenant_id, created_at);

CREATE TABLE activity_log (
    id          uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id   uuid        NOT NULL,
    user_id     uuid,
    user_name   text,
    action      text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text,
    entity_name text,
    description text,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
) PARTITION BY RANGE (created_at);
CREATE TABLE activity_log_default PARTITION OF activity_log DEFAULT;
COMMENT ON TABLE activity_log IS 'Unified audit trail; MCP requests appear as mcp_execute / mcp_error on entity mcp_tool';
CREATE INDEX activity_log_tenant_time_idx ON activity_log_default (tenant_id, created_at DESC);
CREATE INDEX activity_log_tenant_action_idx ON activity_log_default (tenant_id, action, created_at DESC);

-- Its created_at index finds past days that landed in the default partition.
CREATE INDEX mcp_usage_logs_default_time_idx ON mcp_key_usage_logs_default (created_at);
CREATE INDEX activity_log_default_time_idx ON activity_log_default (created_at);

DO $history$
DECLARE
    until date := (pg_catalog.now() AT TIME ZONE 'UTC')::date + 1;
    t text;
    history text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mcp_key_usage_logs', 'activity_log'] LOOP
        history := t || '_until' || pg_catalog.to_char(until, 'YYYYMMDD');
        EXECUTE pg_catalog.format('ALTER EXTENSION mcp_auth DROP TABLE %I', t || '_2_1');
        EXECUTE pg_catalog.format('ALTER TABLE %I RENAME TO %I', t || '_2_1', history);
        -- Reached through the parent only, as every partition.
        EXECUTE pg_catalog.format('REVOKE ALL ON %I FROM PUBLIC, mcp_admin', history);
        IF t = 'mcp_key_usage_logs' THEN
            -- A partition has its parent's CHECK constraints under their names.
            EXECUTE pg_catalog.format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', history,
                                      'mcp_key_usage_logs_2_1_response_time_ms_check',
                                      'mcp_key_usage_logs_response_time_ms_check');
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                                  t, history, until::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END
$history$;

ALTER TABLE mcp_key_usage_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_key_usage_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_key_usage_logs
    USING (tenant_id = @extschema@.mcp_current_tenant())
    WITH CHECK (tenant_id = @extschema@.mcp_current_tenant());
REVOKE ALL ON mcp_key_usage_logs FROM PUBLIC;
ALTER TABLE activity_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE activity_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON activity_log
    USING (tenant_id = @extschema@.mcp_current_tenant())
    WITH CHECK (tenant_id = @extschema@.mcp_current_tenant());
REVOKE ALL ON activity_log FROM PUBLIC;
GRANT SELECT ON mcp_key_usage_logs, activity_log TO mcp_admin;
GRANT INSERT ON activity_log TO mcp_admin;
SELECT pg_catalog.pg_extension_config_dump('mcp_key_usage_logs_default', '');
SELECT pg_catalog.pg_extension_config_dump('activity_log_default', '');

-- Rows in each log partition whose time is over ("closed"), so that a purge drops
-- whole days without reading them: the count taken when the day closed
-- (maintain_mcp_log_partitions), then one row per change (+1 or -1 a row from the
-- partition's triggers, a delete's total per partition), their sum the partition's
-- rows. Appended, never updated in place: a bulk write into a closed day costs an
-- insert a row, not an ever longer chain of versions of one row; maintenance folds
-- each partition's rows into one. A partition without rows here is not counted (it
-- is counted when purged). Derived data: not dumped, counted again after a restore.
CREATE TABLE mcp_log_partition_rows (
    partition text   NOT NULL,
    rows      bigint NOT NULL
);
CREATE INDEX mcp_log_partition_rows_partition_idx ON mcp_log_partition_rows (partition);
REVOKE ALL ON mcp_log_partition_rows FROM PUBLIC;

-- The day partitions of a log (and 2.1.0's history partition), with when each ends.
CREATE FUNCTION mcp_log_partitions(p_parent text) RETURNS TABLE (partition text, ends timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.relname::text,
           -- A day partition ends the day after its date; 2.1.0's history on its date.
           (pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD')
            + CASE WHEN c.relname ~ '_p[0-9]{8}$' THEN 1 ELSE 0 END)::timestamp AT TIME ZONE 'UTC'
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = pg_catalog.format('@extschema@.%I', p_parent)::pg_catalog.regclass
       AND c.relname ~ ('^' || p_parent || '_(p|until)[0-9]{8}$')
$$;

-- Keeps a closed partition's count: +1 or -1 a row (inserted late, deleted, moved in
-- or out by an UPDATE of created_at), minus all on TRUNCATE; nothing for a partition
-- not counted (yet, or again after a restore). Rows deleted through mcp_log_delete
-- skip it (session_replication_role = replica) and are counted there.
CREATE FUNCTION mcp_log_partition_rows_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO @extschema@.mcp_log_partition_rows (partition, rows)
    SELECT TG_TABLE_NAME, CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1
                                     ELSE -(SELECT pg_catalog.sum(r.rows) FROM @extschema@.mcp_log_partition_rows r
                                             WHERE r.partition = TG_TABLE_NAME) END
     WHERE EXISTS (SELECT FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = TG_TABLE_NAME);
    RETURN NULL;
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
    -- A count left by a dropped partition of that name is not this one's.
    DELETE FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = part;
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

-- Counts a closed partition (unless it is counted) and puts the count triggers on it,
-- under a lock that waits for the writers still in flight: every row is either in the
-- count (committed before it) or seen by a trigger (written after it). Read committed
-- only, so that the count's snapshot is taken after the lock; false, with a WARNING,
-- otherwise or when the lock is not granted within lock_timeout (tried again next time).
CREATE FUNCTION mcp_log_partition_close(p_part text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    n bigint;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE WARNING 'mcp_auth: log partition % not counted: needs read committed, not %',
            p_part, pg_catalog.current_setting('transaction_isolation');
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('LOCK TABLE @extschema@.%I IN SHARE ROW EXCLUSIVE MODE', p_part);
    IF EXISTS (SELECT FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = p_part) THEN
        RETURN true; -- by another maintenance, while this one waited
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM @extschema@.%I', p_part) INTO n;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE TRIGGER mcp_log_partition_rows AFTER INSERT OR DELETE ON @extschema@.%I
         FOR EACH ROW EXECUTE FUNCTION @extschema@.mcp_log_partition_rows_change()', p_part);
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE TRIGGER mcp_log_partition_truncated AFTER TRUNCATE ON @extschema@.%I
         FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.mcp_log_partition_rows_change()', p_part);
    INSERT INTO @extschema@.mcp_log_partition_rows (partition, rows) VALUES (p_part, n);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'mcp_auth: could not count log partition %: %', p_part, SQLERRM;
    RETURN false;
END
$$;

-- The logs' day partitions (UTC): mcp_key_usage_logs and activity_log get one for
-- each of the next p_days_ahead days, and one for every past day that has rows in
-- their default partition, whose rows move into it; then every day partition whose
-- day is over is counted (mcp_log_partition_close), and purged partitions are dropped
-- (mcp_drop_purged_logs). Returns how many partitions it made.
-- Never for the current day (nor within a minute of its ends): a call routed to the
-- default partition while a partition for its own day is attached would fail. So
-- after installation, the first day's rows stay in the default partition until the
-- day is over. A partition it cannot make or count is a WARNING, tried again next
-- time; calls meanwhile land in the default partition. Superusers only. The notifier
-- worker runs it when it starts and hourly while it runs.
CREATE FUNCTION maintain_mcp_log_partitions(p_days_ahead integer DEFAULT 7) RETURNS integer
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

-- Deletes one log's rows older than p_before, of one tenant or (p_tenant NULL) of all,
-- and returns how many. The counted partitions' counts get one row per partition
-- here, with their per-row triggers skipped: a tenant's purge of a million rows
-- costs one insert per day, not one per row.
CREATE FUNCTION mcp_log_delete(p_parent text, p_before timestamptz, p_tenant uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE pg_catalog.format(
        'WITH gone AS (DELETE FROM @extschema@.%I WHERE created_at < $1 AND ($2 IS NULL OR tenant_id = $2)
                       RETURNING tableoid),
              per_partition AS (SELECT tableoid, pg_catalog.count(*) AS n FROM gone GROUP BY tableoid),
              counted AS (INSERT INTO @extschema@.mcp_log_partition_rows (partition, rows)
                          SELECT c.relname, -p.n FROM per_partition p JOIN pg_catalog.pg_class c ON c.oid = p.tableoid
                           WHERE EXISTS (SELECT FROM @extschema@.mcp_log_partition_rows r
                                          WHERE r.partition = c.relname))
         SELECT COALESCE(pg_catalog.sum(n), 0)::bigint FROM per_partition', p_parent)
        INTO n USING p_before, p_tenant;
    RETURN n;
END
$$;

-- Everything older than p_before in one log (mcp_key_usage_logs or activity_log), for
-- every tenant: partitions that end by then are detached whole (no row by row delete,
-- no dead rows left, and no read of a counted partition), then the older rows of the
-- partition p_before falls in (and of the default partition) are deleted. Returns the
-- number of rows removed. The detached partitions, renamed <partition>_purged and
-- reachable by their owner only, are dropped by the notifier worker after the commit
-- (mcp_drop_purged_logs): the file system's release of their files (about a second
-- for a gigabyte here) then costs the caller nothing.
CREATE FUNCTION mcp_purge_log(p_parent text, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    part text;
    n bigint := 0;
    m bigint;
BEGIN
    FOR part IN
        SELECT p.partition FROM @extschema@.mcp_log_partitions(p_parent) p WHERE p.ends <= p_before ORDER BY 1
    LOOP
        -- Locked first, so that no late row changes the count between reading and detaching.
        EXECUTE pg_catalog.format('LOCK TABLE @extschema@.%I IN ACCESS EXCLUSIVE MODE', part);
        SELECT pg_catalog.sum(r.rows) INTO m FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = part;
        IF m IS NULL THEN
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM @extschema@.%I', part) INTO m;
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I DETACH PARTITION @extschema@.%I', p_parent, part);
        -- The same day purged before, and not dropped yet.
        IF pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I', part || '_purged')) IS NOT NULL THEN
            EXECUTE pg_catalog.format('DROP TABLE @extschema@.%I', part || '_purged');
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I RENAME TO %I', part, part || '_purged');
        -- (A row a concurrent fold adds is left behind, and removed by the next maintenance.)
        DELETE FROM @extschema@.mcp_log_partition_rows r WHERE r.partition = part;
        n := n + m;
    END LOOP;
    IF FOUND THEN -- a partition was detached
        PERFORM @extschema@.mcp_wake_notifier();
    END IF;
    RETURN n + @extschema@.mcp_log_delete(p_parent, p_before, NULL);
END
$$;

-- Drops the partitions purges detached; run by the notifier worker (within a second
-- of a purge) and by maintain_mcp_log_partitions. One it cannot drop now (a lock not
-- granted within lock_timeout) is a WARNING, tried again next time. Returns how many.
CREATE FUNCTION mcp_drop_purged_logs() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    t text;
    n integer := 0;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_catalog.pg_class c
         WHERE c.relnamespace = '@extschema@'::pg_catalog.regnamespace AND c.relkind = 'r'
           AND NOT c.relispartition
           AND c.relname ~ '^(mcp_key_usage_logs|activity_log)_(p|until)[0-9]{8}_purged$'
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('DROP TABLE @extschema@.%I', t);
            n := n + 1;
        EXCEPTION
            WHEN undefined_table THEN NULL; -- dropped meanwhile by the worker (or another call)
            WHEN OTHERS THEN
                RAISE WARNING 'mcp_auth: could not drop purged log partition %: %', t, SQLERRM;
        END;
    END LOOP;
    RETURN n;
END
$$;

-- Removes usage log rows older than p_older_than (at least 1 day: the last 24 hours
-- feed get_mcp_key_stats) and per-minute counts older than 25 hours; returns the
-- number of log rows removed. Totals, and so all-time statistics, are kept.
-- Superusers without mcp_auth.tenant_id purge every tenant, dropping whole days
-- (mcp_purge_log); others delete their own tenant's rows.
CREATE OR REPLACE FUNCTION purge_mcp_usage_logs(p_older_than interval) RETURNS bigint
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
        n := @extschema@.mcp_log_delete('mcp_key_usage_logs', pg_catalog.now() - p_older_than, t);
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
BEGIN
    IF p_older_than IS NULL OR p_older_than <= interval '0' THEN
        RAISE EXCEPTION 'p_older_than: must be positive (got %)', COALESCE(p_older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF @extschema@.mcp_current_tenant() IS NULL AND @extschema@.mcp_caller_kind() = 'superuser' THEN
        RETURN @extschema@.mcp_purge_log('activity_log', pg_catalog.now() - p_older_than);
    END IF;
    RETURN @extschema@.mcp_log_delete('activity_log', pg_catalog.now() - p_older_than,
                                      @extschema@.mcp_require_tenant());
END
$$;

REVOKE ALL ON FUNCTION maintain_mcp_log_partitions(integer), mcp_log_day_partition(text, date),
    mcp_log_partitions(text), mcp_log_partition_rows_change(), mcp_log_partition_close(text),
    mcp_log_delete(text, timestamptz, uuid), mcp_purge_log(text, timestamptz), mcp_drop_purged_logs(),
    purge_activity_log(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_activity_log(interval) TO mcp_admin;

-- This backend's slot, for the per-slot counters of extensions built on this one.
CREATE  FUNCTION "mcp_backend_slot"() RETURNS INT /* i32 */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_backend_slot_wrapper';
REVOKE ALL ON FUNCTION mcp_backend_slot() FROM PUBLIC;

-- Starts the notifier worker after the commit (a purge's detached partitions).
CREATE  FUNCTION "mcp_wake_notifier"() RETURNS void
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_wake_notifier_wrapper';
REVOKE ALL ON FUNCTION mcp_wake_notifier() FROM PUBLIC;
