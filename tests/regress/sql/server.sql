-- Server configuration, health and logs of a tenant.
\set tenant '''a3000000-0000-0000-0000-0000000000a3'''
SELECT * FROM get_mcp_server_config();
SET mcp_auth.tenant_id = :tenant;
-- Defaults before anything is saved.
SELECT server_name, server_version = mcp_auth_version() AS installed_version,
       enabled, activity_logging, health_checks, auto_reconnect
  FROM get_mcp_server_config();
SELECT server_name, enabled FROM update_mcp_server_config(p_server_name := 'shop-floor-mcp');
SELECT server_name, health_checks FROM update_mcp_server_config(p_health_checks := true);
SELECT * FROM update_mcp_server_config(p_server_name := '  ');

-- The sidebar indicator and its thresholds.
SELECT status, last_check, response_time_ms, error_message FROM get_mcp_server_status();
SELECT record_mcp_server_health('online', 45) IS NOT NULL AS recorded;
SELECT status, last_check IS NOT NULL AS checked, response_time_ms, error_message FROM get_mcp_server_status();
SELECT record_mcp_server_health('online', 1500) IS NOT NULL AS recorded;
SELECT status, response_time_ms FROM get_mcp_server_status();
SELECT record_mcp_server_health('degraded', 80, 'database slow') IS NOT NULL AS recorded;
SELECT status, error_message FROM get_mcp_server_status();
SELECT record_mcp_server_health('offline', NULL, 'connection refused') IS NOT NULL AS recorded;
SELECT status, error_message FROM get_mcp_server_status();
UPDATE mcp_server_health SET checked_at = checked_at - interval '6 minutes' WHERE tenant_id = :tenant;
SELECT status, error_message FROM get_mcp_server_status();
SELECT enabled FROM update_mcp_server_config(p_enabled := false);
SELECT record_mcp_server_health('online', 10) IS NOT NULL AS recorded;
SELECT status, error_message FROM get_mcp_server_status();
SELECT enabled FROM update_mcp_server_config(p_enabled := true);
-- Health checks off: nothing recorded.
SELECT health_checks FROM update_mcp_server_config(p_health_checks := false);
SELECT record_mcp_server_health('online', 10) AS recorded;
SELECT health_checks FROM update_mcp_server_config(p_health_checks := true);
SELECT record_mcp_server_health('sleeping');
SELECT record_mcp_server_health('online', -5);

-- Server logs: filter by level, type, text; keys never kept.
SELECT log_mcp_server_event('startup', 'MCP server started', 'info', '{"version": "2.1.0"}') IS NOT NULL;
SELECT log_mcp_server_event('connection', 'connected to database') IS NOT NULL;
SELECT log_mcp_server_event('reconnect', 'lost connection, reconnecting', 'warning') IS NOT NULL;
SELECT log_mcp_server_event('error', 'tool failed for key mcp_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab',
                            'error', '{"token": "t0k3n", "tool": "fetch_jobs"}') IS NOT NULL;
SELECT level, event_type, message, metadata FROM get_mcp_server_logs() ORDER BY created_at;
SELECT event_type FROM get_mcp_server_logs(p_level := 'warning');
SELECT event_type FROM get_mcp_server_logs(p_search := 'CONNECT');
SELECT event_type FROM get_mcp_server_logs(p_event_type := 'startup');
SELECT count(*) FROM get_mcp_server_logs(p_since := now() + interval '1 minute');
SELECT * FROM get_mcp_server_logs(p_level := 'loud');
SELECT * FROM get_mcp_server_logs(p_limit := 0);
SELECT log_mcp_server_event('x', 'y', 'shout');
SELECT log_mcp_server_event('', 'y');
RESET mcp_auth.tenant_id;
