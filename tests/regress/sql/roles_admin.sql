-- A real login role in mcp_admin: its tenant comes from mcp_auth.tenant_id, and RLS
-- confines it to that tenant's keys. It never sees hash or lookup columns.
SET mcp_auth.bcrypt_cost = 4;
CREATE ROLE regress_admin_app LOGIN IN ROLE mcp_admin;
SELECT key_id AS id_a FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'Admin A') \gset
SELECT key_id AS id_b FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-0000000000b2', 'Admin B') \gset
\c - regress_admin_app

-- No tenant set: nothing visible, nothing to manage.
SELECT count(*) FROM mcp_keys;
SELECT * FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'No tenant yet');
SET mcp_auth.tenant_id = 'not-a-uuid';
SELECT count(*) FROM mcp_keys;

SET mcp_auth.tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a2';
SELECT id, source FROM get_tenant_info();
SELECT name FROM mcp_keys ORDER BY name;
SELECT name FROM mcp_authentication_keys ORDER BY name;
SELECT key_hash FROM mcp_authentication_keys;
SELECT lookup_hash FROM mcp_authentication_keys;
SELECT * FROM mcp_authentication_keys;

-- The Integration Guide's update snippet: its own key changes, another tenant's does not.
UPDATE mcp_authentication_keys
SET rate_limit = 500
WHERE id = :'id_a'
AND tenant_id = (get_tenant_info()).id;
SELECT :ROW_COUNT AS own_key_updated;
UPDATE mcp_authentication_keys
SET rate_limit = 500
WHERE id = :'id_b'
AND tenant_id = (get_tenant_info()).id;
SELECT :ROW_COUNT AS other_key_updated;
-- Even without the tenant condition, RLS hides the other tenant's row.
UPDATE mcp_authentication_keys SET rate_limit = 501 WHERE id = :'id_b';
SELECT :ROW_COUNT AS other_key_updated;
DELETE FROM mcp_authentication_keys WHERE id = :'id_b';
SELECT :ROW_COUNT AS other_key_deleted;
UPDATE mcp_authentication_keys SET tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b2' WHERE id = :'id_a';
INSERT INTO mcp_authentication_keys (tenant_id, name, key_hash, lookup_hash, key_prefix)
VALUES ('aaaaaaaa-0000-0000-0000-0000000000a2', 'forged', 'x', repeat('0', 64), 'mcp_live_0000000');

-- Keys of its own tenant only.
SELECT count(*) AS own FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'Admin A2');
SELECT * FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-0000000000b2', 'Planted');
SELECT disable_mcp_key(:'id_b');
SELECT * FROM rotate_mcp_key(:'id_b');
SELECT revoke_mcp_key(:'id_b');
SELECT check_mcp_tool_permission(:'id_b', 'anything') AS other_tenant;
SELECT check_mcp_tool_permission(:'id_a', 'anything') AS own_key;
SELECT disable_mcp_key(:'id_a') AS disabled_own;
SELECT name, rate_limit, enabled FROM mcp_keys ORDER BY name;
-- Superuser-only setting and functions stay out of reach.
SET mcp_auth.bcrypt_cost = 4;
SELECT mcp_auth_reset_cache();

\c - postgres
SELECT tenant_id, name, rate_limit, enabled FROM mcp_authentication_keys
 WHERE name IN ('Admin A', 'Admin B') ORDER BY name;
DROP ROLE regress_admin_app;
