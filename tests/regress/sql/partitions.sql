-- The logs are partitioned by day (UTC). maintain_mcp_log_partitions makes the days
-- ahead and moves past days out of the default partition; purge drops whole days and
-- deletes only the older rows of the day the cutoff falls in. (The notifier worker
-- may run maintain_mcp_log_partitions at any time too; nothing below depends on who
-- made a partition.)
SET mcp_auth.bcrypt_cost = 4;
SELECT key_id AS k FROM generate_mcp_key('c1000000-0000-4000-8000-0000000000c1', 'Partitioned') \gset
SELECT key_id AS other FROM generate_mcp_key('c2000000-0000-4000-8000-0000000000c2', 'Other tenant') \gset
-- Three calls logged now: the statistics must not change when the log is purged.
SELECT count(log_mcp_key_usage('c1000000-0000-4000-8000-0000000000c1', :'k', 'fetch_jobs', '{}', g > 1))
  FROM generate_series(1, 3) g;
SELECT total_requests, failed_requests, last_24h_requests FROM get_mcp_key_stats(:'k');
-- 40 days of history, one row an hour for each tenant, written as a restore or an
-- upgrade would (into the parent; they land in the default partition first).
INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, created_at)
SELECT k.tenant_id, k.id, 'fetch_jobs', true, date_trunc('hour', now()) - g * interval '1 hour'
  FROM mcp_authentication_keys k, generate_series(1, 24 * 40) g
 WHERE k.id IN (:'k', :'other');
INSERT INTO activity_log (tenant_id, action, entity_type, created_at)
SELECT 'c1000000-0000-4000-8000-0000000000c1', 'login', 'user', date_trunc('hour', now()) - g * interval '1 hour'
  FROM generate_series(1, 24 * 40) g;
-- 40 past days: three runs (each makes at most 16 past days per log).
SELECT bool_and(maintain_mcp_log_partitions() >= 0) AS maintained FROM generate_series(1, 3);
-- Past days left the default partition; the days ahead exist; every day is UTC.
SELECT count(*) = 0 AS no_past_day_in_default FROM ONLY mcp_key_usage_logs_default
 WHERE created_at < (now() AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC'
   AND now() - interval '1 minute' > (now() AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC';
SELECT count(*) AS days_ahead FROM generate_series(2, 7) g
 WHERE to_regclass('mcp_key_usage_logs_p' || to_char((now() AT TIME ZONE 'UTC')::date + g, 'YYYYMMDD')) IS NOT NULL
   AND to_regclass('activity_log_p' || to_char((now() AT TIME ZONE 'UTC')::date + g, 'YYYYMMDD')) IS NOT NULL;
SET TimeZone = 'UTC'; -- the session that made them was not
SET DateStyle = 'ISO';
SELECT pg_get_expr(c.relpartbound, c.oid) AS not_a_utc_day
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'mcp_key_usage_logs'::regclass AND c.relname <> 'mcp_key_usage_logs_default'
   AND pg_get_expr(c.relpartbound, c.oid) !~ '^FOR VALUES FROM \(''\d{4}-\d\d-\d\d 00:00:00\+00''\) TO \(''\d{4}-\d\d-\d\d 00:00:00\+00''\)$';
-- Nobody but the owner has a right on a partition, and no partition is part of the
-- extension (pg_dump dumps them with their rows).
SELECT count(*) AS partitions_with_grants FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN ('mcp_key_usage_logs'::regclass, 'activity_log'::regclass) AND c.relacl IS NOT NULL;
SELECT count(*) AS day_partitions_in_extension FROM pg_inherits i JOIN pg_depend d ON d.objid = i.inhrelid AND d.deptype = 'e'
 WHERE i.inhparent IN ('mcp_key_usage_logs'::regclass, 'activity_log'::regclass)
   AND i.inhrelid::regclass::text !~ '_default$';
-- A row for a day without a partition still lands (in the default partition).
INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, created_at)
VALUES ('c1000000-0000-4000-8000-0000000000c1', :'k', 'fetch_jobs', true, now() + interval '400 days');
SELECT count(*) AS far_future_in_default FROM ONLY mcp_key_usage_logs_default WHERE created_at > now() + interval '399 days';
DELETE FROM mcp_key_usage_logs WHERE created_at > now() + interval '399 days';

-- A day is counted once it is over, and the count is kept exact by triggers on its
-- partition, so that a purge drops the day without reading it.
CREATE FUNCTION pg_temp.counts_off() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (SELECT partition, sum(rows) AS rows FROM mcp_log_partition_rows GROUP BY 1) r
     WHERE r.rows <> (xpath('/row/n/text()', query_to_xml(
               format('SELECT count(*) AS n FROM %s', to_regclass(r.partition)), false, true, '')))[1]::text::bigint
$$;
SELECT count(*) AS past_days_not_counted
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN ('mcp_key_usage_logs'::regclass, 'activity_log'::regclass)
   AND c.relname ~ '_p\d{8}$'
   -- (Not yesterday: the day may have ended since the maintenance above.)
   AND to_date(right(c.relname, 8), 'YYYYMMDD') < (now() AT TIME ZONE 'UTC')::date - 1
   AND NOT EXISTS (SELECT FROM mcp_log_partition_rows r WHERE r.partition = c.relname);
SELECT count(DISTINCT partition) >= 2 * 39 AS days_counted, pg_temp.counts_off() AS counts_off FROM mcp_log_partition_rows;
-- Rows written into counted days: late inserts, an activity entry for an old
-- day, deletes, a row moved to another day, a day truncated.
INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, created_at)
SELECT 'c1000000-0000-4000-8000-0000000000c1', :'k', 'fetch_jobs', true, now() - interval '20 days'
  FROM generate_series(1, 5);
DELETE FROM mcp_key_usage_logs WHERE id IN (SELECT id FROM mcp_key_usage_logs
 WHERE key_id = :'other' AND created_at < now() - interval '35 days' ORDER BY created_at LIMIT 3);
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '2 days'
 WHERE id = (SELECT id FROM mcp_key_usage_logs WHERE created_at < now() - interval '15 days'
              ORDER BY created_at DESC LIMIT 1);
DO $t$ BEGIN
    EXECUTE format('TRUNCATE %I', 'mcp_key_usage_logs_p' || to_char((now() AT TIME ZONE 'UTC')::date - 35, 'YYYYMMDD'));
END $t$;
-- SET ROLE mcp_admin acts as the group role itself: bound for the test's tenants.
SELECT grant_mcp_tenant_admin('mcp_admin', t::uuid) AS bound
  FROM unnest(ARRAY['c1000000-0000-4000-8000-0000000000c1', 'c2000000-0000-4000-8000-0000000000c2']) t;
INSERT INTO activity_log (tenant_id, action, entity_type, created_at)
VALUES ('c1000000-0000-4000-8000-0000000000c1', 'import', 'job', now() - interval '5 days');
SELECT pg_temp.counts_off() AS counts_off_after_late_writes;
-- Changes are rows of their own, folded into one a partition by maintenance.
SELECT maintain_mcp_log_partitions() >= 0 AS maintained;
SELECT count(*) = count(DISTINCT partition) AS folded, pg_temp.counts_off() AS counts_off_after_fold
  FROM mcp_log_partition_rows;

-- A tenant's admin deletes only its own rows, row by row.
SELECT count(*) AS other_older FROM mcp_key_usage_logs
 WHERE key_id = :'other' AND created_at < now() - interval '30 days' \gset
SET ROLE mcp_admin;
SET mcp_auth.tenant_id = 'c2000000-0000-4000-8000-0000000000c2';
SELECT purge_mcp_usage_logs('30 days') = :other_older AS other_purged_exactly;
RESET mcp_auth.tenant_id;
RESET ROLE;
SELECT count(*) FILTER (WHERE created_at < now() - interval '30 days') AS other_older_left,
       count(*) >= 24 * 29 AS other_newer_kept
  FROM mcp_key_usage_logs WHERE key_id = :'other';
SELECT count(*) AS k_rows FROM mcp_key_usage_logs WHERE key_id = :'k';
SELECT pg_temp.counts_off() AS counts_off_after_admin_purge;

-- The superuser's purge: whole days dropped, the boundary day's older rows deleted,
-- nothing newer than asked removed, and the count returned exact.
SELECT count(*) AS older FROM mcp_key_usage_logs WHERE created_at < now() - interval '30 days 5 hours' \gset
SELECT count(*) AS newer FROM mcp_key_usage_logs WHERE created_at >= now() - interval '30 days 5 hours' \gset
SELECT count(*) AS days_before FROM pg_inherits WHERE inhparent = 'mcp_key_usage_logs'::regclass \gset
SELECT purge_mcp_usage_logs('30 days 5 hours') = :older AS purged_exactly_the_older_rows;
SELECT count(*) = :newer AS newer_rows_all_kept,
       count(*) FILTER (WHERE created_at < now() - interval '30 days 5 hours') AS older_left
  FROM mcp_key_usage_logs;
SELECT :days_before - count(*) >= 9 AS whole_days_dropped FROM pg_inherits WHERE inhparent = 'mcp_key_usage_logs'::regclass;
-- The days were detached, not dropped, in the purge: the notifier worker it woke
-- drops them after its commit, so the caller does not wait for the file system.
DO $wait$ BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_class WHERE relname ~ '^mcp_key_usage_logs_p\d{8}_purged$');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $wait$;
SELECT count(*) AS purged_days_left FROM pg_class WHERE relname ~ '^mcp_key_usage_logs_p\d{8}_purged$';
SELECT pg_temp.counts_off() AS counts_off_after_purge,
       count(*) FILTER (WHERE to_regclass(partition) IS NULL) AS counts_of_dropped_days
  FROM mcp_log_partition_rows;
-- Statistics come from the rollups, not the log: unchanged by the purge.
SELECT total_requests, failed_requests, last_24h_requests FROM get_mcp_key_stats(:'k');
-- activity_log: the same, with its own purge.
SELECT count(*) AS act_older FROM activity_log WHERE created_at < now() - interval '10 days' \gset
-- What a purge returns for a counted day is its count: tampered with here, to show
-- that the day is not read.
INSERT INTO mcp_log_partition_rows
VALUES ('activity_log_p' || to_char((now() AT TIME ZONE 'UTC')::date - 20, 'YYYYMMDD'), 1000);
SELECT purge_activity_log('10 days') - :act_older AS returned_beyond_the_rows;
SELECT count(*) FILTER (WHERE created_at < now() - interval '10 days') AS act_older_left,
       count(*) > 0 AS act_newer_kept FROM activity_log;
SELECT purge_activity_log('0 days');
-- TRUNCATE of the parent empties every counted day.
TRUNCATE activity_log;
SELECT pg_temp.counts_off() AS counts_off_after_truncate;
-- Counts lost (not dumped, so after a restore; or deleted on purpose) are taken
-- again by the next maintenance.
DELETE FROM mcp_log_partition_rows;
SELECT maintain_mcp_log_partitions() >= 0 AS maintained;
SELECT count(*) > 0 AS recounted, pg_temp.counts_off() AS counts_off_after_recount FROM mcp_log_partition_rows;
SELECT purge_mcp_usage_logs('1 hour');
SELECT revoke_mcp_tenant_admin('mcp_admin') AS unbound;
