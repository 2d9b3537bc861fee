-- mcp_auth: retention of the logs (mcp_key_usage_logs, activity_log), partitioned by
-- UTC day: the closed days' row counts, the days made ahead and moved out of the
-- default partition (maintain_mcp_log_partitions, run by the notifier worker, see
-- src/audit/partitions.rs), and the purges. See docs/retention.md.

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

-- Takes a lock without ever waiting in the table's lock queue (LOCK ... NOWAIT,
-- tried again every 10 ms for up to p_for); false when it could not. A request that
-- waits holds up every later one behind it, tenants' inserts included, and any login
-- can hold a lock on these tables (a PREPAREd statement locks a table before its
-- rights are checked): maintenance and purges give way instead of queueing.
CREATE FUNCTION mcp_lock_without_queue(p_table text, p_mode text, p_for interval) RETURNS boolean
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

-- One day partition (UTC) of a log, with the day's rows from the default partition
-- and its own indexes; false, with a WARNING, when it cannot be made (a lock held
-- by another session for a second, say): it is tried again next time.
CREATE FUNCTION mcp_log_day_partition(p_parent text, p_day date) RETURNS boolean
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

-- Counts a closed partition (unless it is counted) and puts the count triggers on it,
-- under a lock no writer holds: every row is either in the count (committed before
-- it) or seen by a trigger (written after it). Read committed only, so that the
-- count's snapshot is taken after the lock; false, with a WARNING, otherwise or
-- while a writer is still in flight there (tried again next time).
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

-- The logs' day partitions (UTC): mcp_key_usage_logs and activity_log get one for
-- each of the next p_days_ahead days, and one for each past day of the last 62 that
-- has rows in their default partition, whose rows move into it (at most 16 such days
-- per log and run, the oldest first: a burst of back-dated rows cannot make hundreds
-- of relations at once). Older rows, and rows at -infinity or infinity, stay in the
-- default partition, where purges still find them. Then every day partition whose
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

-- Deletes one log's rows older than p_before, of one tenant or (p_tenant NULL) of all,
-- and returns how many. The counted partitions' counts get one row per partition
-- here, with their per-row triggers skipped: a tenant's purge of a million rows
-- costs one insert per day, not one per row.
CREATE FUNCTION mcp_log_delete(p_parent text, p_before timestamptz, p_tenant uuid) RETURNS bigint
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

-- Everything older than p_before in one log (mcp_key_usage_logs or activity_log), for
-- every tenant: partitions that end by then are detached whole (no row by row delete,
-- no dead rows left, and no read of a counted partition), then the older rows of the
-- partition p_before falls in (and of the default partition) are deleted. Returns the
-- number of rows removed. The detached partitions, renamed <partition>_purged and
-- reachable by their owner only, are dropped by the notifier worker after the commit
-- (mcp_drop_purged_logs): the file system's release of their files (about a second
-- for a gigabyte here) then costs the caller nothing. The detach needs the log to
-- itself for a moment: while another session holds a lock on it for two seconds,
-- the whole days are skipped with a WARNING naming them (call again later), and only
-- the default partition's older rows are deleted.
CREATE FUNCTION mcp_purge_log(p_parent text, p_before timestamptz) RETURNS bigint
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
