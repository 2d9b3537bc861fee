-- Installing: roles and objects appear; installing again is a no-op.
CREATE EXTENSION mcp_auth;
CREATE EXTENSION IF NOT EXISTS mcp_auth;
SELECT extversion FROM pg_extension WHERE extname = 'mcp_auth';
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('mcp_admin', 'mcp_client') ORDER BY 1;
SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_auth')
   AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY 1;
-- Partitions are reached through their parents, whose policies apply: nobody but
-- their owner has any right on one (checked again for day partitions in partitions).
SELECT c.relname, c.relacl FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_auth') AND c.relispartition
 ORDER BY 1;
SHOW mcp_auth.bcrypt_cost;
-- Dropping and creating again works: the cluster-wide roles are reused, and a
-- backend that used the old installation uses the new one.
SET mcp_auth.bcrypt_cost = 4;
SELECT count(*) AS made FROM generate_mcp_key('10000000-0000-0000-0000-000000000001', 'Before');
DROP EXTENSION mcp_auth;
CREATE EXTENSION mcp_auth;
SELECT count(*) AS keys FROM mcp_authentication_keys;
SELECT api_key AS after_key FROM generate_mcp_key('10000000-0000-0000-0000-000000000001', 'After') \gset
SELECT key_name FROM validate_mcp_key(:'after_key');
DELETE FROM mcp_authentication_keys;
RESET mcp_auth.bcrypt_cost;
