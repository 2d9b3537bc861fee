-- Issue 18, item 4, as the tenant admin found it: one activity_log row at
-- -infinity made maintenance fail for good ("could not create log partition
-- <NULL>"), and one INSERT of 300 rows on distinct past days made 300 partitions.
-- Now only the last 62 days get partitions, at most 16 past days per log and run;
-- the rest stays in the default partition, nothing is lost, nothing breaks.
\set t '''b9000000-0000-4000-8000-0000000000b9'''
CREATE ROLE regress_bp_admin LOGIN IN ROLE mcp_admin;
SELECT grant_mcp_tenant_admin('regress_bp_admin', :t) AS bound;
SELECT maintain_mcp_log_partitions() >= 0 AS maintained_before;
SELECT count(*) AS parts_before FROM pg_inherits WHERE inhparent = 'activity_log'::regclass \gset

-- Since 2.4.0 an admin's rows are dated when added (a back-dated row would pass for
-- one from before the audit chain began), so the rows are the owner's here.
\c - regress_bp_admin
INSERT INTO activity_log (tenant_id, action, entity_type, created_at)
VALUES (:t, 'import', 'job', '-infinity');
\c - postgres
INSERT INTO activity_log (tenant_id, action, entity_type, created_at)
VALUES (:t, 'import', 'job', '-infinity'), (:t, 'import', 'job', 'infinity');
INSERT INTO activity_log (tenant_id, action, entity_type, created_at)
SELECT :t, 'import', 'job', now() - g * interval '1 day' - interval '2 hours'
  FROM generate_series(2, 301) g;
SELECT count(*) AS rows_written FROM activity_log WHERE tenant_id = :t;

-- The first run: no failure, and no more than 16 past days.
SELECT maintain_mcp_log_partitions() >= 0 AS maintained;
SELECT count(*) - :parts_before BETWEEN 1 AND 16 AS first_run_capped
  FROM pg_inherits WHERE inhparent = 'activity_log'::regclass;
-- More runs finish the last 62 days and stop there.
SELECT bool_and(maintain_mcp_log_partitions() >= 0) AS maintained_again FROM generate_series(1, 5);
SELECT count(*) - :parts_before <= 62 AS at_most_62_days
  FROM pg_inherits WHERE inhparent = 'activity_log'::regclass;
SELECT count(*) AS rows_kept,
       count(*) FILTER (WHERE created_at BETWEEN now() - interval '61 days' AND now()
                          AND tableoid = 'activity_log_default'::regclass) AS recent_left_in_default,
       count(*) FILTER (WHERE created_at < now() - interval '64 days'
                          AND tableoid <> 'activity_log_default'::regclass) AS old_partitioned
  FROM activity_log WHERE tenant_id = :t;
SELECT tableoid::regclass AS partition, created_at FROM activity_log
 WHERE tenant_id = :t AND created_at IN ('-infinity', 'infinity') ORDER BY created_at;
-- Purges still reach the rows left in the default partition.
SET mcp_auth.tenant_id = :t;
SELECT purge_activity_log('30 days') AS purged;
SELECT count(*) AS left_after_purge FROM activity_log WHERE tenant_id = :t;
RESET mcp_auth.tenant_id;
SELECT revoke_mcp_tenant_admin('regress_bp_admin') AS unbound;
DROP ROLE regress_bp_admin;
