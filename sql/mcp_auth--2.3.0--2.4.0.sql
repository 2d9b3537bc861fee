-- mcp_auth 2.3.0 -> 2.4.0: each tenant stands alone (see UPDATING.md).
-- - An mcp_admin login acts only for the tenants a superuser bound it to
--   (mcp_tenant_admins, grant_mcp_tenant_admin and the others below). Membership in
--   mcp_admin alone gives no tenant any more: bind your admin logins after the
--   update (the NOTICE at the end lists the members of mcp_admin).
-- - maintain_mcp_log_partitions makes partitions only for the last 62 days, at most
--   16 past days per log and run; -infinity and far-off rows stay in the default
--   partition instead of breaking maintenance.
-- - Maintenance and purges never wait in a log's lock queue (where tenants' inserts
--   would wait behind them): mcp_lock_without_queue; a purge that cannot have the
--   log skips its whole days with a WARNING.
-- - mcp_admin loses DELETE on mcp_authentication_keys (which let it LOCK the table
--   against every tenant's validations): delete_mcp_key instead.
-- - mcp_keys.status comes from mcp_key_status, the validator's own rule.
-- - A configuration's server_version defaults to the installed version
--   (mcp_auth_version()); rows already saved keep theirs. get_mcp_server_config
--   evaluates the column defaults for a tenant that never saved one.
-- - The usage log is hash-chained per tenant, with anchors kept by purges,
--   checkpoints and verify_mcp_audit (docs/audit-chain.md).
-- - OAuth 2.1 for `mcp-auth serve --oauth-issuer` (docs/oauth.md): mcp_oauth_clients,
--   mcp_oauth_tokens (digests only, RLS), the mcp_oauth_* functions for the server,
--   revoke_mcp_oauth_client for admins, and mcp_keys.oauth_clients.

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
            -- A log another session holds now is tried again next time.
            EXIT WHEN NOT @extschema@.mcp_log_day_partition(parent, d);
            made := made + 1;
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

CREATE FUNCTION @extschema@.mcp_lock_without_queue(p_table text, p_mode text, p_for interval) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    until timestamptz := pg_catalog.clock_timestamp() + p_for;
BEGIN
    IF p_mode NOT IN ('ACCESS EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE ROW EXCLUSIVE') THEN
        RAISE EXCEPTION 'p_mode: not a mode this function takes (got %)', p_mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE @extschema@.%I IN %s MODE NOWAIT', p_table, p_mode);
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            IF pg_catalog.clock_timestamp() >= until THEN
                RETURN false;
            END IF;
        END;
        PERFORM pg_catalog.pg_sleep(0.01);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION @extschema@.mcp_lock_without_queue(text, text, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.mcp_log_day_partition(p_parent text, p_day date) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' SET TimeZone = 'UTC' AS $$
DECLARE
    part text := p_parent || '_p' || pg_catalog.to_char(p_day, 'YYYYMMDD');
    lo timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    -- Nothing may land in the default partition between the move and the attach
    -- (and the attach's own lock on the parent is taken first, not queued for).
    -- Briefly: whatever this transaction made before holds the default partitions,
    -- which the ledger's writer inserts into, until it ends.
    IF NOT (@extschema@.mcp_lock_without_queue(p_parent, 'SHARE UPDATE EXCLUSIVE', interval '100 milliseconds')
            AND @extschema@.mcp_lock_without_queue(p_parent || '_default', 'ACCESS EXCLUSIVE', interval '100 milliseconds')) THEN
        RAISE WARNING 'mcp_auth: log partition % not made now: another session holds a lock on %', part, p_parent
            USING HINT = 'maintenance tries again at its next run';
        RETURN false;
    END IF;
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

CREATE OR REPLACE FUNCTION @extschema@.mcp_log_partition_close(p_part text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    n bigint;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE WARNING 'mcp_auth: log partition % not counted: needs read committed, not %',
            p_part, pg_catalog.current_setting('transaction_isolation');
        RETURN false;
    END IF;
    IF NOT @extschema@.mcp_lock_without_queue(p_part, 'SHARE ROW EXCLUSIVE', interval '100 milliseconds') THEN
        RAISE WARNING 'mcp_auth: log partition % not counted now: another session holds a lock on it', p_part;
        RETURN false;
    END IF;
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

CREATE OR REPLACE FUNCTION @extschema@.mcp_purge_log(p_parent text, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    part text;
    n bigint := 0;
    m bigint;
    skipped text;
BEGIN
    IF NOT @extschema@.mcp_lock_without_queue(p_parent, 'ACCESS EXCLUSIVE', interval '2 seconds') THEN
        SELECT pg_catalog.string_agg(p.partition, ', ' ORDER BY p.partition) INTO skipped
          FROM @extschema@.mcp_log_partitions(p_parent) p WHERE p.ends <= p_before;
        RAISE WARNING 'mcp_auth: purge of % skipped whole days (%): another session holds a lock on the log',
            p_parent, COALESCE(skipped, 'none due')
            USING HINT = 'call the purge again once that session has ended its transaction';
        RETURN @extschema@.mcp_log_delete(p_parent || '_default', p_before, NULL);
    END IF;
    -- Where each tenant's audit chain goes on once these days are gone.
    PERFORM @extschema@.mcp_audit_anchor(p_parent, p_before, NULL);
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

CREATE FUNCTION @extschema@."delete_mcp_key"(
	"p_key_id" uuid
) RETURNS bool
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'delete_mcp_key_wrapper';
REVOKE ALL ON FUNCTION @extschema@.delete_mcp_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.delete_mcp_key(uuid) TO mcp_admin;
REVOKE DELETE ON @extschema@.mcp_authentication_keys FROM mcp_admin;

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

-- A key's status: the validator's rule (src/keys/status.rs), for the view too.
CREATE FUNCTION @extschema@."mcp_key_status"(
	"revoked" bool, /* bool */
	"enabled" bool, /* bool */
	"expired" bool, /* bool */
	"replaced" bool /* bool */
) RETURNS TEXT /* & '_ str */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_key_status_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_key_status(boolean, boolean, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.mcp_key_status(boolean, boolean, boolean, boolean) TO mcp_admin;
CREATE OR REPLACE VIEW @extschema@.mcp_keys WITH (security_invoker = true, security_barrier = true) AS
SELECT k.id, k.tenant_id, k.name, k.description, k.key_prefix, k.environment,
       k.allowed_tools, k.rate_limit, k.enabled, k.expires_at, k.revoked_at,
       k.rotated_from, k.replaced_by, k.created_by, k.created_at, k.updated_at,
       COALESCE(u.usage_count, 0)::bigint AS usage_count,
       u.last_used_at,
       -- The validator's rule (src/keys/status.rs), on the same facts.
       @extschema@.mcp_key_status(k.revoked_at IS NOT NULL, k.enabled,
                                  COALESCE(k.expires_at <= pg_catalog.now(), false),
                                  k.replaced_by IS NOT NULL) AS status
FROM @extschema@.mcp_authentication_keys k
LEFT JOIN LATERAL (
    SELECT pg_catalog.sum(c.usage_count) AS usage_count, pg_catalog.max(c.last_used_at) AS last_used_at
    FROM @extschema@.mcp_key_usage_counters c
    WHERE c.key_id = k.id
) u ON true;
COMMENT ON VIEW @extschema@.mcp_keys IS 'mcp_auth: keys of the current tenant with usage_count, last_used_at and status';

-- The installed version, a configuration's server_version by default.
CREATE FUNCTION @extschema@.mcp_auth_version() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'mcp_auth'
$$;
REVOKE ALL ON FUNCTION @extschema@.mcp_auth_version() FROM PUBLIC;
ALTER TABLE @extschema@.mcp_server_config
    ALTER COLUMN server_version SET DEFAULT @extschema@.mcp_auth_version();
CREATE OR REPLACE FUNCTION @extschema@.get_mcp_server_config() RETURNS @extschema@.mcp_server_config
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


-- The tamper-evident audit (docs/audit-chain.md): the ledger's writer links each
-- tenant's usage-log rows, and the activity rows it writes, into hash chains. Rows written before this update have
-- no seq: they are outside the chain, and verify_mcp_audit says how many.
ALTER TABLE @extschema@.mcp_key_usage_logs
    ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;
-- And the activity rows the ledger writes for MCP calls, in a chain of their own.
ALTER TABLE @extschema@.activity_log
    ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

CREATE FUNCTION @extschema@."mcp_audit_chain_step"(
	"state" bytea, /* core::option::Option<&[u8]> */
	"head" bytea, /* core::option::Option<&[u8]> */
	"fields" TEXT[] /* core::option::Option<pgrx::datum::array::Array<&str>> */
) RETURNS bytea /* alloc::vec::Vec<u8> */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_audit_chain_step_wrapper';

-- The head of each tenant's chains: a row's seq, hash and time that the chain has
-- reached, at most a second behind its last row (src/ledger/chain.rs). Written by
-- the ledger's writer and by no one else, so calls never wait on it (they wait for
-- the writer's commit in any case).
CREATE TABLE @extschema@.mcp_audit_heads (
    tenant_id uuid        NOT NULL,
    -- Which chain: 'usage' (mcp_key_usage_logs) or 'activity' (activity_log).
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    -- The head row's created_at: a later row's time is never earlier (so that a
    -- purge by time removes a prefix of every chain).
    at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, log)
);
COMMENT ON TABLE mcp_audit_heads IS 'mcp_auth: the last link of each tenant''s audit chain';

-- What purges removed: per tenant and chain, the last purged row's seq and hash,
-- where verification of what is left starts.
CREATE TABLE @extschema@.mcp_audit_anchors (
    tenant_id uuid        NOT NULL,
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    -- The purged row's time: a row outside the chain dated after it was inserted.
    at        timestamptz NOT NULL,
    purged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, log, seq)
);
COMMENT ON TABLE mcp_audit_anchors IS 'mcp_auth: where each tenant''s audit chain goes on after a purge';

-- Heads as they were at a time: written hourly by the notifier worker while calls
-- come in, and by mcp_audit_checkpoint(). A checkpoint kept only here proves little
-- (whoever edits the log can edit it); `mcp-auth audit checkpoint --sign` signs one
-- for the operator to keep elsewhere.
CREATE TABLE @extschema@.mcp_audit_checkpoints (
    tenant_id uuid        NOT NULL,
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, log, seq)
);
COMMENT ON TABLE mcp_audit_checkpoints IS 'mcp_auth: past heads of the audit chains';

-- When the chains began, in a database upgraded to them (the upgrade to 2.4.0 adds
-- the row): rows outside the chain dated before are the older rows, any other was
-- inserted. A database installed with the chains has no row here, and no row
-- outside them.
CREATE TABLE @extschema@.mcp_audit_upgraded (
    began timestamptz NOT NULL,
    one   boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (one)
);
COMMENT ON TABLE @extschema@.mcp_audit_upgraded IS 'mcp_auth: when the audit chains began, in a database upgraded to them';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_audit_heads', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_audit_anchors', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_audit_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_audit_upgraded', '');

-- How far each chain has come, for the tenants in p_tenants (NULL: every tenant with a
-- recorded head): per tenant and log, the furthest (by seq; a row before an anchor
-- before a head of the same seq) of its recorded head, its last chained row after
-- that head, and the last anchor a purge left. The ledger's writer records heads up
-- to a second late, and one that ended abruptly leaves them further behind. The rows
-- are searched from the head's time when the head's row is there at that time;
-- otherwise (an edited head, or its row purged) from the start. A time after now
-- (only an edit makes one) counts as now, and a hash that is not 32 bytes (the same)
-- is no link. For checkpoints, and for a writer that may find the recorded heads
-- behind (src/ledger/chain.rs). No row for a tenant with none of these. (No JIT:
-- compiling it would cost more than running it.)
CREATE FUNCTION @extschema@.mcp_audit_reached(p_tenants uuid[])
RETURNS TABLE (tenant_id uuid, log text, seq bigint, hash bytea, at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH t AS (SELECT u.tenant_id FROM pg_catalog.unnest(p_tenants) AS u(tenant_id)
                WHERE p_tenants IS NOT NULL
               UNION
               SELECT h.tenant_id FROM @extschema@.mcp_audit_heads h WHERE p_tenants IS NULL),
         g AS (SELECT t.tenant_id, v.log FROM t CROSS JOIN (VALUES ('usage'::text), ('activity'::text)) AS v(log)),
         h AS (SELECT g.tenant_id, g.log, h.seq, h.hash, h.at,
                      CASE WHEN g.log = 'usage' AND EXISTS (
                               SELECT FROM @extschema@.mcp_key_usage_logs l
                                WHERE l.tenant_id = g.tenant_id AND l.created_at = h.at
                                  AND l.seq = h.seq AND l.hash = h.hash)
                             OR g.log = 'activity' AND EXISTS (
                               SELECT FROM @extschema@.activity_log l
                                WHERE l.tenant_id = g.tenant_id AND l.created_at = h.at
                                  AND l.seq = h.seq AND l.hash = h.hash)
                           THEN h.at ELSE '-infinity'::timestamptz END AS since
                 FROM g LEFT JOIN @extschema@.mcp_audit_heads h
                   ON h.tenant_id = g.tenant_id AND h.log = g.log
                  AND pg_catalog.length(h.hash) = 32)
    SELECT h.tenant_id, h.log, r.seq, r.hash, r.at
      FROM h
     CROSS JOIN LATERAL (
           SELECT c.seq, c.hash, c.at FROM (
               SELECT h.seq, h.hash, LEAST(h.at, pg_catalog.now()) AS at, 3 AS rank WHERE h.seq IS NOT NULL
               UNION ALL
               (SELECT l.seq, l.hash, LEAST(l.created_at, pg_catalog.now()), 1 FROM @extschema@.mcp_key_usage_logs l
                 WHERE h.log = 'usage' AND l.tenant_id = h.tenant_id AND l.seq IS NOT NULL
                   AND l.created_at >= h.since AND pg_catalog.length(l.hash) = 32
                 ORDER BY l.created_at DESC, l.seq DESC LIMIT 1)
               UNION ALL
               (SELECT l.seq, l.hash, LEAST(l.created_at, pg_catalog.now()), 1 FROM @extschema@.activity_log l
                 WHERE h.log = 'activity' AND l.tenant_id = h.tenant_id AND l.seq IS NOT NULL
                   AND l.created_at >= h.since AND pg_catalog.length(l.hash) = 32
                 ORDER BY l.created_at DESC, l.seq DESC LIMIT 1)
               UNION ALL
               (SELECT a.seq, a.hash, LEAST(a.at, pg_catalog.now()), 2 FROM @extschema@.mcp_audit_anchors a
                 WHERE a.tenant_id = h.tenant_id AND a.log = h.log AND pg_catalog.length(a.hash) = 32
                 ORDER BY a.seq DESC LIMIT 1)
           ) c ORDER BY c.seq DESC, c.rank LIMIT 1) r
$$;

-- Records how far every chain has come as a checkpoint and returns it (hash in hex).
-- For the operator (`mcp-auth audit checkpoint`) and the notifier worker's schedule.
CREATE FUNCTION @extschema@.mcp_audit_checkpoint()
RETURNS TABLE (tenant_id uuid, log text, seq bigint, hash text, taken_at timestamptz)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH heads AS (SELECT r.tenant_id, r.log, r.seq, r.hash FROM @extschema@.mcp_audit_reached(NULL) r
                    WHERE r.seq IS NOT NULL),
         kept AS (INSERT INTO @extschema@.mcp_audit_checkpoints AS c (tenant_id, log, seq, hash)
                  SELECT h.tenant_id, h.log, h.seq, h.hash FROM heads h
                  ON CONFLICT ON CONSTRAINT mcp_audit_checkpoints_pkey DO NOTHING)
    SELECT h.tenant_id, h.log, h.seq, pg_catalog.encode(h.hash, 'hex'), pg_catalog.now()
      FROM heads h ORDER BY h.tenant_id, h.log DESC
$$;

-- The statement that records anchors for rows about to be removed from one partition
-- of a log (or the whole log; p_table names either, and so the chain), $1 the time
-- they are older than and $2 the tenant (NULL: all): per tenant with a chain there,
-- its last chained row older than $1, found through the (tenant_id, created_at)
-- index of each partition. A DELETE that runs in the same statement (mcp_log_delete)
-- sees the same rows, so what it removes is exactly the chain up to the anchor.
CREATE FUNCTION @extschema@.mcp_audit_anchor_sql(p_table text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.format(
        'INSERT INTO @extschema@.mcp_audit_anchors (tenant_id, log, seq, hash, at)
         SELECT h.tenant_id, h.log, l.seq, l.hash, l.created_at
           FROM @extschema@.mcp_audit_heads h
           CROSS JOIN LATERAL (SELECT l.seq, l.hash, l.created_at FROM @extschema@.%I l
                                WHERE l.tenant_id = h.tenant_id AND l.created_at < $1
                                  AND l.seq IS NOT NULL
                                ORDER BY l.created_at DESC, l.seq DESC LIMIT 1) l
          WHERE h.log = %L AND ($2 IS NULL OR h.tenant_id = $2)
         ON CONFLICT ON CONSTRAINT mcp_audit_anchors_pkey DO NOTHING',
        p_table, CASE WHEN p_table LIKE 'activity_log%' THEN 'activity' ELSE 'usage' END)
$$;

-- Records those anchors, for a purge that holds the log to itself (mcp_purge_log).
CREATE FUNCTION @extschema@.mcp_audit_anchor(p_table text, p_before timestamptz, p_tenant uuid)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE @extschema@.mcp_audit_anchor_sql(p_table) USING p_before, p_tenant;
END
$$;

CREATE FUNCTION @extschema@."verify_mcp_audit"(
	"p_tenant" uuid DEFAULT NULL, /* core::option::Option<pgrx::datum::uuid::Uuid> */
	"p_from" timestamp with time zone DEFAULT NULL, /* core::option::Option<pgrx::datum::time_stamp_with_timezone::TimestampWithTimeZone> */
	"p_to" timestamp with time zone DEFAULT NULL /* core::option::Option<pgrx::datum::time_stamp_with_timezone::TimestampWithTimeZone> */
) RETURNS TABLE (
	"tenant_id" uuid,  /* pgrx::datum::uuid::Uuid */
	"log" TEXT,  /* &str */
	"verified" bool,  /* bool */
	"first_seq" bigint,  /* core::option::Option<i64> */
	"last_seq" bigint,  /* core::option::Option<i64> */
	"rows_checked" bigint,  /* i64 */
	"covered" TEXT,  /* alloc::string::String */
	"broken_seq" bigint,  /* core::option::Option<i64> */
	"problem" TEXT  /* core::option::Option<alloc::string::String> */
)
SECURITY DEFINER
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_mcp_audit_wrapper';

DO $chain$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mcp_audit_heads', 'mcp_audit_anchors', 'mcp_audit_checkpoints'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY tenant_isolation ON @extschema@.%I
                 USING (tenant_id = @extschema@.mcp_current_tenant())
                 WITH CHECK (tenant_id = @extschema@.mcp_current_tenant())', t);
        EXECUTE pg_catalog.format('REVOKE ALL ON @extschema@.%I FROM PUBLIC', t);
    END LOOP;
END
$chain$;
REVOKE ALL ON FUNCTION @extschema@.mcp_audit_chain_step(bytea, bytea, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.mcp_audit_checkpoint() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.mcp_audit_reached(uuid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.mcp_audit_anchor_sql(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.mcp_audit_anchor(text, timestamptz, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_mcp_audit(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_mcp_audit(uuid, timestamptz, timestamptz) TO mcp_admin;
GRANT SELECT ON @extschema@.mcp_audit_heads, @extschema@.mcp_audit_anchors,
                @extschema@.mcp_audit_checkpoints, @extschema@.mcp_audit_upgraded TO mcp_admin;
-- The application's own activity rows stay outside the chain: its columns are the ledger's.
REVOKE INSERT ON @extschema@.activity_log FROM mcp_admin;
GRANT INSERT (id, tenant_id, user_id, user_name, action, entity_type, entity_id, entity_name,
              description, metadata) ON @extschema@.activity_log TO mcp_admin;

-- Purges record where each chain goes on (mcp_audit_anchor; mcp_purge_log above too).
CREATE OR REPLACE FUNCTION @extschema@.mcp_log_delete(p_parent text, p_before timestamptz, p_tenant uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET session_replication_role = replica AS $$
DECLARE
    n bigint;
    whole text := pg_catalog.regexp_replace(p_parent, '_default$', '');
BEGIN
    -- Maintenance moves past days out of the default partition into partitions of
    -- their own: held off until this transaction ends (it tries again at its next
    -- run), so that the delete below sees the partitions as they are, and removes
    -- every row it anchors.
    EXECUTE pg_catalog.format('LOCK TABLE @extschema@.%I IN ROW EXCLUSIVE MODE', whole || '_default');
    IF p_parent <> whole THEN
        -- The default partition alone (a purge that skipped whole days): only its
        -- rows older than every day partition, so that what goes is the oldest of
        -- each chain, never newer rows while older days stay.
        SELECT LEAST(p_before, pg_catalog.min(CASE WHEN p.partition ~ '_p[0-9]{8}$'
                                                   THEN p.ends - interval '24 hours' ELSE '-infinity' END))
          INTO p_before FROM @extschema@.mcp_log_partitions(whole) p;
    END IF;
    -- Where each tenant's audit chain goes on once these rows are gone: in the
    -- statement that deletes them (one snapshot), so that a row the ledger commits
    -- meanwhile is neither deleted nor behind the anchor.
    EXECUTE pg_catalog.format(
        'WITH anchored AS (%s),
              gone AS (DELETE FROM @extschema@.%I WHERE created_at < $1 AND ($2 IS NULL OR tenant_id = $2)
                       RETURNING tableoid),
              per_partition AS (SELECT tableoid, pg_catalog.count(*) AS n FROM gone GROUP BY tableoid),
              counted AS (INSERT INTO @extschema@.mcp_log_partition_rows (partition, rows)
                          SELECT c.relname, -p.n FROM per_partition p JOIN pg_catalog.pg_class c ON c.oid = p.tableoid
                           WHERE EXISTS (SELECT FROM @extschema@.mcp_log_partition_rows r
                                          WHERE r.partition = c.relname))
         SELECT COALESCE(pg_catalog.sum(n), 0)::bigint FROM per_partition',
        @extschema@.mcp_audit_anchor_sql(p_parent), p_parent)
        INTO n USING p_before, p_tenant;
    RETURN n;
END
$$;

-- Last: when the chains began. A call made before now was written outside them (the
-- ledger's writer sees the chain's tables once this commits); rows outside the chain
-- dated later were inserted.
INSERT INTO @extschema@.mcp_audit_upgraded (began) VALUES (pg_catalog.clock_timestamp());

-- OAuth 2.1 for `mcp-auth serve --oauth-issuer` (docs/oauth.md): clients, codes and
-- tokens (digests only), the functions of src/oauth, and mcp_keys.oauth_clients.
-- The clients the authorization server knows: registered (RFC 7591; client_id made
-- here) or described by a Client ID Metadata Document (client_id is its https URL,
-- fetched by the server). Not tenant data: a client serves any tenant's users.
CREATE TABLE @extschema@.mcp_oauth_clients (
    client_id       text        PRIMARY KEY,
    client_name     text        NOT NULL,
    redirect_uris   text[]      NOT NULL,
    -- 'registered' (dynamic registration) or 'metadata' (metadata document).
    kind            text        NOT NULL CHECK (kind IN ('registered', 'metadata')),
    -- Where a registration came from: registrations are capped per address.
    registered_from inet,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- When a metadata document was last read.
    fetched_at      timestamptz,
    CONSTRAINT mcp_oauth_clients_name CHECK (pg_catalog.length(client_name) BETWEEN 1 AND 200),
    CONSTRAINT mcp_oauth_clients_redirects CHECK (
        pg_catalog.cardinality(redirect_uris) BETWEEN 1 AND 10)
);
CREATE INDEX mcp_oauth_clients_from_idx ON @extschema@.mcp_oauth_clients (registered_from, created_at);
COMMENT ON TABLE @extschema@.mcp_oauth_clients IS
    'mcp_auth: OAuth clients (registered, or by metadata document); see revoke_mcp_oauth_client()';

-- Codes, access and refresh tokens, by digest. A family is one consent: its code and
-- every token that came from it, revoked together when a used code or refresh token
-- comes back (a sign that one was stolen).
CREATE TABLE @extschema@.mcp_oauth_tokens (
    digest         text        NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    kind           text        NOT NULL CHECK (kind IN ('code', 'access', 'refresh')),
    family         uuid        NOT NULL,
    tenant_id      uuid        NOT NULL,
    key_id         uuid        NOT NULL,
    client_id      text        NOT NULL,
    -- The audience (RFC 8707): the MCP endpoint's URL.
    resource       text        NOT NULL,
    -- The tools chosen at consent; NULL: every tool the key may call.
    tools          text[],
    -- A code's redirect_uri and PKCE challenge (S256).
    redirect_uri   text,
    code_challenge text,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at     timestamptz NOT NULL,
    -- A code or refresh token is used once.
    used_at        timestamptz,
    revoked_at     timestamptz,
    -- Found by digest alone (the leading column); tenant_id in the key, as every
    -- key of a tenant table has it (Citus's rule for distributed tables).
    PRIMARY KEY (digest, tenant_id)
);
CREATE INDEX mcp_oauth_tokens_family_idx ON @extschema@.mcp_oauth_tokens (family);
-- A key's live tokens (mcp_keys.oauth_clients); a client's, live or not (revocation,
-- and whether an unused registration can be forgotten).
CREATE INDEX mcp_oauth_tokens_key_idx ON @extschema@.mcp_oauth_tokens (key_id) WHERE revoked_at IS NULL;
CREATE INDEX mcp_oauth_tokens_client_idx ON @extschema@.mcp_oauth_tokens (client_id);
-- Expired rows are deleted as new ones are made.
CREATE INDEX mcp_oauth_tokens_expiry_idx ON @extschema@.mcp_oauth_tokens (expires_at);
COMMENT ON TABLE @extschema@.mcp_oauth_tokens IS
    'mcp_auth: OAuth codes and tokens (SHA-256 digests only), bound to a key, a client, a resource and tools';

SELECT pg_catalog.pg_extension_config_dump('mcp_oauth_clients', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_oauth_tokens', '');

ALTER TABLE @extschema@.mcp_oauth_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mcp_oauth_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON @extschema@.mcp_oauth_tokens
    USING (tenant_id = @extschema@.mcp_current_tenant())
    WITH CHECK (tenant_id = @extschema@.mcp_current_tenant());
REVOKE ALL ON @extschema@.mcp_oauth_tokens FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_register_client"(
	"p_client_name" TEXT, /* Option < & str > */
	"p_redirect_uris" TEXT[], /* :: std :: option :: Option < Vec < String > > */
	"p_from" inet DEFAULT NULL, /* Option < Inet > */
	"p_max_per_address" INT DEFAULT 20 /* i32 */
) RETURNS jsonb /* JsonB */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_register_client_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_register_client(text, text[], inet, integer) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_describe_client"(
	"p_client_id" TEXT, /* Option < & str > */
	"p_client_name" TEXT, /* Option < & str > */
	"p_redirect_uris" TEXT[] /* :: std :: option :: Option < Vec < String > > */
) RETURNS jsonb /* JsonB */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_describe_client_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_describe_client(text, text, text[]) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_client"(
	"p_client_id" TEXT /* Option < & str > */
) RETURNS jsonb /* Option < JsonB > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_client_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_client(text) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_consent"(
	"p_api_key" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_consent_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_consent(text) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_authorize"(
	"p_api_key" TEXT, /* Option < & str > */
	"p_client_id" TEXT, /* Option < & str > */
	"p_redirect_uri" TEXT, /* Option < & str > */
	"p_code_challenge" TEXT, /* Option < & str > */
	"p_resource" TEXT, /* Option < & str > */
	"p_tools" TEXT[] DEFAULT NULL /* :: std :: option :: Option < Vec < String > > */
) RETURNS jsonb /* JsonB */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_authorize_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_authorize(text, text, text, text, text, text[]) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_token"(
	"p_grant_type" TEXT, /* Option < & str > */
	"p_secret" TEXT, /* Option < & str > */
	"p_client_id" TEXT, /* Option < & str > */
	"p_code_verifier" TEXT DEFAULT NULL, /* Option < & str > */
	"p_redirect_uri" TEXT DEFAULT NULL, /* Option < & str > */
	"p_resource" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_token_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_token(text, text, text, text, text, text) FROM PUBLIC;
CREATE FUNCTION @extschema@."mcp_oauth_revoke"(
	"p_token" TEXT, /* Option < & str > */
	"p_client_id" TEXT /* Option < & str > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mcp_oauth_revoke_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_revoke(text, text) FROM PUBLIC;
CREATE FUNCTION @extschema@."revoke_mcp_oauth_client"(
	"p_client_id" TEXT /* Option < & str > */
) RETURNS INT /* i32 */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_mcp_oauth_client_wrapper';
REVOKE ALL ON FUNCTION @extschema@.revoke_mcp_oauth_client(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.mcp_oauth_register_client(text, text[], inet, integer),
    @extschema@.mcp_oauth_describe_client(text, text, text[]),
    @extschema@.mcp_oauth_client(text),
    @extschema@.mcp_oauth_consent(text),
    @extschema@.mcp_oauth_authorize(text, text, text, text, text, text[]),
    @extschema@.mcp_oauth_token(text, text, text, text, text, text),
    @extschema@.mcp_oauth_revoke(text, text)
TO mcp_client;
GRANT EXECUTE ON FUNCTION @extschema@.revoke_mcp_oauth_client(text) TO mcp_admin;
GRANT SELECT (tenant_id, key_id, client_id, kind, family, resource, tools, created_at,
              expires_at, used_at, revoked_at) ON @extschema@.mcp_oauth_tokens TO mcp_admin;
GRANT SELECT (client_id, client_name, kind, created_at) ON @extschema@.mcp_oauth_clients TO mcp_admin;
CREATE OR REPLACE VIEW @extschema@.mcp_keys WITH (security_invoker = true, security_barrier = true) AS
SELECT k.id, k.tenant_id, k.name, k.description, k.key_prefix, k.environment,
       k.allowed_tools, k.rate_limit, k.enabled, k.expires_at, k.revoked_at,
       k.rotated_from, k.replaced_by, k.created_by, k.created_at, k.updated_at,
       COALESCE(u.usage_count, 0)::bigint AS usage_count,
       u.last_used_at,
       -- The validator's rule (src/keys/status.rs), on the same facts.
       @extschema@.mcp_key_status(k.revoked_at IS NOT NULL, k.enabled,
                                  COALESCE(k.expires_at <= pg_catalog.now(), false),
                                  k.replaced_by IS NOT NULL) AS status,
       -- The OAuth clients holding a live token of the key (revoke_mcp_oauth_client).
       ARRAY(SELECT DISTINCT c.client_name || ' (' || t.client_id || ')'
               FROM @extschema@.mcp_oauth_tokens t
               JOIN @extschema@.mcp_oauth_clients c ON c.client_id = t.client_id
              WHERE t.key_id = k.id AND t.revoked_at IS NULL AND t.kind <> 'code'
                AND t.expires_at > pg_catalog.now()
              ORDER BY 1) AS oauth_clients
FROM @extschema@.mcp_authentication_keys k
LEFT JOIN LATERAL (
    SELECT pg_catalog.sum(c.usage_count) AS usage_count, pg_catalog.max(c.last_used_at) AS last_used_at
    FROM @extschema@.mcp_key_usage_counters c
    WHERE c.key_id = k.id
) u ON true;
COMMENT ON VIEW @extschema@.mcp_keys IS 'mcp_auth: keys of the current tenant with usage_count, last_used_at and status';
