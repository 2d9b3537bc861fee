-- A real login role that is only a member of mcp_client: it can authenticate with a
-- key and nothing else. It never obtains a tenant without a valid key.
SET mcp_auth.bcrypt_cost = 4;
CREATE ROLE regress_mcp_server LOGIN IN ROLE mcp_client;
SELECT api_key AS key_a, key_id AS id_a
  FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-000000000001', 'Client A') \gset
SELECT api_key AS key_b, key_id AS id_b
  FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-000000000002', 'Client B',
                        p_allowed_tools := '["fetch_*"]') \gset
SELECT key_id AS id_a2 FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-000000000001', 'Client A2') \gset
\c - regress_mcp_server
SELECT current_user, session_user;

-- No table, no management function, no internal function.
SELECT * FROM mcp_authentication_keys;
SELECT key_hash FROM mcp_authentication_keys;
SELECT * FROM mcp_keys;
SELECT * FROM mcp_key_usage_counters;
SELECT * FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-000000000001', 'Mine now');
SELECT disable_mcp_key(:'id_a');
SELECT * FROM rotate_mcp_key(:'id_a');
SELECT mcp_auth_reset_cache();
SELECT * FROM mcp_auth_backend_stats();
SELECT mcp_check_allowed_tools('["*"]');
SET ROLE mcp_admin;
SET mcp_auth.bcrypt_cost = 4;

-- No tenant without a key, whatever it sets.
SELECT * FROM get_tenant_info();
SET mcp_auth.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SELECT * FROM get_tenant_info();
SELECT mcp_current_tenant() IS NULL AS no_tenant;
SELECT set_config('mcp_auth.tenant_id', 'bbbbbbbb-0000-0000-0000-000000000002', false) IS NOT NULL AS set;
SELECT (get_tenant_info()).source;
BEGIN;
SET LOCAL mcp_auth.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002';
SELECT (get_tenant_info()).source;
COMMIT;
RESET mcp_auth.tenant_id;
-- A failed key gives nothing either.
BEGIN;
SELECT * FROM validate_mcp_key(left(:'key_a', 46) || CASE WHEN right(:'key_a', 1) = 'x' THEN 'y' ELSE 'x' END);
ROLLBACK;
SELECT (get_tenant_info()).source;

-- A valid key gives its tenant, for the rest of that transaction only.
BEGIN;
SELECT key_name FROM validate_mcp_key(:'key_a');
SELECT id = 'aaaaaaaa-0000-0000-0000-000000000001' AS tenant_a, key_name, environment, source
  FROM get_tenant_info();
SELECT check_mcp_tool_permission(:'id_a', 'create_job') AS own_key;
-- Another tenant's key id reveals nothing, even a real one.
SELECT check_mcp_tool_permission(:'id_b', 'fetch_jobs') AS other_tenants_key;
-- Nor does another key of its own tenant: a key holder asks about its own key only.
SELECT check_mcp_tool_permission(:'id_a2', 'fetch_jobs') AS same_tenants_other_key;
-- The setting cannot switch the tenant while a key is in force.
SET LOCAL mcp_auth.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002';
SELECT (get_tenant_info()).key_name;
COMMIT;
SELECT (get_tenant_info()).source AS next_transaction;
-- Outside a transaction block the context lasts one statement.
SELECT count(*) FROM validate_mcp_key(:'key_a');
SELECT (get_tenant_info()).source AS next_statement;

-- Savepoints: a key validated inside a rolled-back savepoint is forgotten...
BEGIN;
SAVEPOINT s1;
SELECT key_name FROM validate_mcp_key(:'key_b');
ROLLBACK TO SAVEPOINT s1;
SELECT (get_tenant_info()).source AS after_rollback_to;
-- ...one validated before it is kept, and a released savepoint keeps its key.
SELECT key_name FROM validate_mcp_key(:'key_a');
SAVEPOINT s2;
SELECT key_name FROM validate_mcp_key(:'key_b');
SELECT (get_tenant_info()).key_name AS inside_s2;
ROLLBACK TO SAVEPOINT s2;
SELECT (get_tenant_info()).key_name AS after_s2;
SAVEPOINT s3;
SELECT key_name FROM validate_mcp_key(:'key_b');
RELEASE SAVEPOINT s3;
SELECT (get_tenant_info()).key_name AS after_release;
ROLLBACK;
SELECT (get_tenant_info()).source AS after_rollback;
-- An error after validation aborts the transaction and its tenant with it.
BEGIN;
SELECT key_name FROM validate_mcp_key(:'key_a');
SELECT 1 / 0;
ROLLBACK;
SELECT (get_tenant_info()).source AS after_error;
-- RESET ALL and DISCARD ALL change nothing.
RESET ALL;
DISCARD ALL;
SELECT (get_tenant_info()).source AS after_discard;
\c - postgres
DROP ROLE regress_mcp_server;
