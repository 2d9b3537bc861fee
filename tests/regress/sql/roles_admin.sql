-- A real login role in mcp_admin acts only for the tenants a superuser bound it to
-- (issue 18: before 2.4.0 any admin could SET any tenant, or validate another
-- tenant's key, and manage that tenant). RLS confines it to that tenant's keys. It
-- never sees hash or lookup columns.
SET mcp_auth.bcrypt_cost = 4;
CREATE ROLE regress_admin_app LOGIN IN ROLE mcp_admin;
SELECT key_id AS id_a FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'Admin A') \gset
SELECT key_id AS id_b, api_key AS key_b
  FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-0000000000b2', 'Admin B', p_allowed_tools := '["fetch_jobs"]') \gset
\c - regress_admin_app

-- Not bound: membership in mcp_admin reaches no tenant, with or without the setting.
SELECT count(*) FROM mcp_keys;
SELECT * FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'No tenant yet');
SET mcp_auth.tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a2';
SELECT count(*) FROM mcp_keys;
SELECT id, source FROM get_tenant_info();
SELECT * FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'Not bound yet');
-- Only a superuser binds.
SELECT grant_mcp_tenant_admin('regress_admin_app', 'aaaaaaaa-0000-0000-0000-0000000000a2');
\c - postgres
SELECT grant_mcp_tenant_admin('regress_admin_app', 'aaaaaaaa-0000-0000-0000-0000000000a2') AS bound;
SELECT grant_mcp_tenant_admin('regress_admin_app', 'aaaaaaaa-0000-0000-0000-0000000000a2') AS bound_again;
SELECT grant_mcp_tenant_admin('regress_no_such_role', 'aaaaaaaa-0000-0000-0000-0000000000a2');
SELECT role, scope, tenant_id FROM mcp_tenant_admins;
\c - regress_admin_app
-- The bindings are read as a superuser: a temporary type of the caller's named like
-- one the read uses (types are looked up in pg_temp first) must not run its code
-- there (found by an attacker helper: it made itself SUPERUSER and bound itself to
-- every tenant).
CREATE FUNCTION pg_temp.evil() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    IF current_user <> session_user THEN
        RAISE NOTICE 'evil ran as %', current_user;
        EXECUTE 'ALTER ROLE regress_admin_app SUPERUSER';
    END IF;
    RETURN true;
END $f$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil());
CREATE DOMAIN pg_temp.oid AS pg_catalog.oid CHECK (pg_temp.evil());
CREATE DOMAIN pg_temp.uuid AS pg_catalog.uuid CHECK (pg_temp.evil());
SELECT id, source FROM get_tenant_info();
\c - postgres
SELECT rolsuper AS made_superuser FROM pg_roles WHERE rolname = 'regress_admin_app';
SELECT role, scope, tenant_id FROM mcp_tenant_admins;
\c - regress_admin_app

-- Bound to one tenant: that one, without a setting.
SELECT id, source FROM get_tenant_info();
SELECT name FROM mcp_keys ORDER BY name;
SET mcp_auth.tenant_id = 'not-a-uuid';
SELECT count(*) FROM mcp_keys;
-- Another tenant in the setting gives nothing: no rows, no keys made or changed.
SET mcp_auth.tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b2';
SELECT id, source FROM get_tenant_info();
SELECT count(*) FROM mcp_keys;
SELECT * FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-0000000000b2', 'Planted through the setting');
-- Validating B's key, a narrow one, does not make this login B's admin either.
RESET mcp_auth.tenant_id;
\set ON_ERROR_ROLLBACK on
BEGIN;
SELECT key_name FROM validate_mcp_key(:'key_b');
SELECT id, source FROM get_tenant_info();
SELECT name FROM mcp_keys ORDER BY name;
SELECT * FROM generate_mcp_key('bbbbbbbb-0000-0000-0000-0000000000b2', 'Planted through a key');
SELECT disable_mcp_key(:'id_b');
UPDATE mcp_authentication_keys SET rate_limit = 1 WHERE id = :'id_b';
SELECT :ROW_COUNT AS b_key_updated;
COMMIT;
\set ON_ERROR_ROLLBACK off

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
-- No table right lets it stop other tenants: LOCK TABLE needs a table-level right it
-- does not have (column rights only; keys are deleted by delete_mcp_key).
BEGIN;
LOCK TABLE mcp_authentication_keys IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE mcp_authentication_keys IN ROW EXCLUSIVE MODE;
ROLLBACK;
SELECT delete_mcp_key(:'id_b');
SELECT key_id AS id_gone FROM generate_mcp_key('aaaaaaaa-0000-0000-0000-0000000000a2', 'Short-lived') \gset
SELECT delete_mcp_key(:'id_gone') AS deleted_own;
SELECT delete_mcp_key(:'id_gone') AS deleted_again;
-- Superuser-only setting and functions stay out of reach.
SET mcp_auth.bcrypt_cost = 4;
SELECT mcp_auth_reset_cache();

\c - postgres
SELECT tenant_id, name, rate_limit, enabled FROM mcp_authentication_keys
 WHERE name IN ('Admin A', 'Admin B') ORDER BY name;

-- An application that serves every tenant says so: any tenant, chosen by the setting.
CREATE ROLE regress_admin_all LOGIN IN ROLE mcp_admin;
SELECT grant_mcp_all_tenants_admin('regress_admin_all') AS all_tenants;
-- PostgREST/Supabase: the tenant is the verified JWT's claim, for a NOLOGIN role
-- that the authenticator switches to; a role that can log in is refused.
CREATE ROLE regress_web_admin NOLOGIN IN ROLE mcp_admin;
CREATE ROLE regress_authenticator LOGIN NOINHERIT IN ROLE regress_web_admin;
SELECT grant_mcp_jwt_tenant_admin('regress_web_admin') AS jwt;
SELECT grant_mcp_jwt_tenant_admin('regress_admin_app');
\c - regress_admin_all
SELECT count(*) AS no_setting_no_tenant FROM mcp_keys;
SET mcp_auth.tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b2';
SELECT name FROM mcp_keys ORDER BY name;
\c - regress_authenticator
SELECT count(*) AS before_set_role FROM mcp_keys;
SET ROLE regress_web_admin;
SELECT count(*) AS no_claims FROM mcp_keys;
SELECT set_config('request.jwt.claims', '{"sub": "u1", "tenant_id": "aaaaaaaa-0000-0000-0000-0000000000a2"}', false) IS NOT NULL AS claims;
SELECT id, source FROM get_tenant_info();
SELECT name FROM mcp_keys ORDER BY name;
-- The setting cannot take it out of the claim's tenant.
SET mcp_auth.tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b2';
SELECT count(*) AS other_tenant FROM mcp_keys;
RESET mcp_auth.tenant_id;
-- Only a superuser says where the claim is.
SET mcp_auth.jwt_tenant_claim = 'app_metadata.tenant_id';
SELECT set_config('request.jwt.claims', '{"sub": "u2", "app_metadata": {"tenant_id": "bbbbbbbb-0000-0000-0000-0000000000b2"}}', false) IS NOT NULL AS claims;
SELECT count(*) AS claim_elsewhere FROM mcp_keys;
\c - postgres
ALTER ROLE regress_authenticator SET mcp_auth.jwt_tenant_claim = 'app_metadata.tenant_id';
\c - regress_authenticator
SET ROLE regress_web_admin;
SELECT set_config('request.jwt.claims', '{"sub": "u2", "app_metadata": {"tenant_id": "bbbbbbbb-0000-0000-0000-0000000000b2"}}', false) IS NOT NULL AS claims;
SELECT name FROM mcp_keys ORDER BY name;
\c - postgres
-- Revoked: nothing again.
SELECT revoke_mcp_tenant_admin('regress_admin_app') AS revoked;
\c - regress_admin_app
SELECT count(*) AS after_revoke FROM mcp_keys;
\c - postgres
SELECT revoke_mcp_tenant_admin(r) FROM unnest(ARRAY['regress_admin_all', 'regress_web_admin']) r;
DROP ROLE regress_admin_app, regress_admin_all, regress_authenticator, regress_web_admin;
