-- As a real login role in mcp_client, and one in mcp_admin: audit data of another
-- tenant can be neither written nor read.
SET mcp_auth.bcrypt_cost = 4;
CREATE ROLE regress_audit_server LOGIN IN ROLE mcp_client;
CREATE ROLE regress_audit_admin LOGIN IN ROLE mcp_admin;
SELECT grant_mcp_tenant_admin('regress_audit_admin', 'a4000000-0000-0000-0000-0000000000a4') AS bound_to_a;
SELECT key_id AS ka, api_key AS kav FROM generate_mcp_key('a4000000-0000-0000-0000-0000000000a4', 'Tenant A') \gset
SELECT key_id AS kb, api_key AS kbv FROM generate_mcp_key('b4000000-0000-0000-0000-0000000000b4', 'Tenant B') \gset
SELECT log_mcp_key_usage('b4000000-0000-0000-0000-0000000000b4', :'kb', 'fetch_jobs') IS NOT NULL AS b_logged;
SET mcp_auth.tenant_id = 'b4000000-0000-0000-0000-0000000000b4';
SELECT record_mcp_server_health('online', 5) IS NOT NULL AS b_health;
SELECT log_mcp_server_event('startup', 'B started') IS NOT NULL AS b_event;
RESET mcp_auth.tenant_id;

\c - regress_audit_server
-- Without a validated key: nothing at all.
SELECT log_mcp_key_usage('a4000000-0000-0000-0000-0000000000a4', :'ka', 'fetch_jobs');
SELECT * FROM check_mcp_rate_limit(:'ka');
SELECT record_mcp_server_health('online', 5);
SELECT * FROM get_mcp_key_stats(:'ka');
-- With tenant A's key: its own key only.
BEGIN;
SELECT key_name FROM validate_mcp_key(:'kav');
SELECT log_mcp_key_usage('a4000000-0000-0000-0000-0000000000a4', :'ka', 'fetch_jobs', '{}', true, NULL, 7) IS NOT NULL AS own_logged;
SELECT allowed FROM check_mcp_rate_limit(:'ka');
SELECT total_requests FROM get_mcp_key_stats(:'ka');
SELECT record_mcp_server_health('online', 5) IS NOT NULL AS own_health;
SELECT log_mcp_server_event('startup', 'A started') IS NOT NULL AS own_event;
SELECT server_name FROM get_mcp_server_config();
COMMIT;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'kav');
SELECT log_mcp_key_usage('b4000000-0000-0000-0000-0000000000b4', :'kb', 'fetch_jobs');
ROLLBACK;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'kav');
SELECT log_mcp_key_usage('b4000000-0000-0000-0000-0000000000b4', :'ka', 'fetch_jobs');
ROLLBACK;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'kav');
SELECT * FROM check_mcp_rate_limit(:'kb');
ROLLBACK;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'kav');
SELECT * FROM get_mcp_key_stats(:'kb');
ROLLBACK;
-- No table is readable, and the admin functions are out of reach.
SELECT * FROM mcp_key_usage_logs;
SELECT * FROM activity_log;
SELECT * FROM mcp_server_health;
SELECT * FROM mcp_server_logs;
SELECT * FROM mcp_key_usage_totals;
SELECT * FROM mcp_rate_limit_charges;
-- Nor can a toast be read before it is sent, or forged for another tenant.
SELECT * FROM mcp_activity_outbox;
INSERT INTO mcp_activity_outbox (tenant_id, payload) VALUES ('b4000000-0000-0000-0000-0000000000b4', '{"tool": "forged"}');
SELECT * FROM get_mcp_server_status();
SELECT * FROM get_mcp_server_logs();
SELECT purge_mcp_usage_logs('1 day');
SELECT * FROM update_mcp_server_config(p_enabled := false);

\c - regress_audit_admin
SET mcp_auth.tenant_id = 'a4000000-0000-0000-0000-0000000000a4';
-- Tenant A's admin sees A's rows only, and cannot write audit rows for B.
SELECT tool_name, response_time_ms FROM mcp_key_usage_logs;
SELECT action, entity_name FROM activity_log;
SELECT status FROM mcp_server_health;
SELECT message FROM mcp_server_logs;
SELECT count(*) AS b_rows FROM mcp_key_usage_logs WHERE tenant_id = 'b4000000-0000-0000-0000-0000000000b4';
SELECT log_mcp_key_usage('b4000000-0000-0000-0000-0000000000b4', :'kb', 'fetch_jobs');
SELECT * FROM get_mcp_key_stats(:'kb');
SELECT * FROM check_mcp_rate_limit(:'kb');
INSERT INTO activity_log (tenant_id, action, entity_type) VALUES ('b4000000-0000-0000-0000-0000000000b4', 'x', 'y');
INSERT INTO activity_log (tenant_id, user_name, action, entity_type)
VALUES ('a4000000-0000-0000-0000-0000000000a4', 'Ada', 'job_created', 'job');
INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success) VALUES ('a4000000-0000-0000-0000-0000000000a4', 'forged', true);
DELETE FROM mcp_key_usage_logs;
SELECT * FROM mcp_activity_outbox;
INSERT INTO mcp_activity_outbox (tenant_id, payload) VALUES ('a4000000-0000-0000-0000-0000000000a4', '{"tool": "forged"}');
SELECT total_requests FROM get_mcp_key_stats(:'ka');
SELECT status FROM get_mcp_server_status();

\c - postgres
SELECT tenant_id, count(*) FROM mcp_key_usage_logs
 WHERE tenant_id IN ('a4000000-0000-0000-0000-0000000000a4', 'b4000000-0000-0000-0000-0000000000b4')
 GROUP BY 1 ORDER BY 1;
DROP ROLE regress_audit_server;
DROP ROLE regress_audit_admin;
