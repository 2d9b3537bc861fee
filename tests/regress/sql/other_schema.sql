-- The extension installs into the schema CREATE EXTENSION names and works there,
-- whatever the caller's search_path.
CREATE DATABASE regress_mcp_schema;
\c regress_mcp_schema
CREATE SCHEMA mcp;
CREATE EXTENSION mcp_auth SCHEMA mcp;
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'mcp_auth';
SET search_path = public;
SET mcp_auth.bcrypt_cost = 4;
SELECT api_key AS key_s FROM mcp.generate_mcp_key('50000000-0000-0000-0000-000000000005', 'Schema key') \gset
BEGIN;
SELECT key_name FROM mcp.validate_mcp_key(:'key_s');
SELECT (mcp.get_tenant_info()).id;
COMMIT;
SELECT mcp.mcp_ledger_sync();
SELECT name, usage_count FROM mcp.mcp_keys;
SELECT has_schema_privilege('mcp_client', 'mcp', 'USAGE') AS client_usage,
       has_schema_privilege('mcp_client', 'mcp', 'CREATE') AS client_create,
       has_schema_privilege('mcp_admin', 'mcp', 'CREATE') AS admin_create;
DROP EXTENSION mcp_auth;
\c mcp_regress
DROP DATABASE regress_mcp_schema;
