-- Every SECURITY DEFINER function pins search_path, and no function of the extension
-- is executable by PUBLIC.
SELECT p.proname,
       p.proconfig AS settings
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_auth')
   AND p.prosecdef
 ORDER BY 1;
SELECT count(*) AS executable_by_public
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_auth')
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.prorettype <> 'trigger'::regtype;
SELECT grantee, privilege_type, count(*)
  FROM information_schema.role_routine_grants
 WHERE routine_schema = 'public' AND grantee IN ('mcp_client', 'mcp_admin', 'PUBLIC')
 GROUP BY 1, 2 ORDER BY 1, 2;

-- An attacker's objects earlier in search_path are never used by the extension.
SET mcp_auth.bcrypt_cost = 4;
CREATE ROLE regress_evil LOGIN IN ROLE mcp_client;
CREATE SCHEMA evil AUTHORIZATION regress_evil;
SELECT api_key AS key_e FROM generate_mcp_key('eeeeeeee-0000-0000-0000-00000000000e', 'Evil target') \gset
SELECT key_id AS gone_id, api_key AS key_gone
  FROM generate_mcp_key('eeeeeeee-0000-0000-0000-00000000000e', 'Expired target') \gset
UPDATE mcp_authentication_keys SET expires_at = now() - interval '1 hour' WHERE id = :'gone_id';
\c - regress_evil
-- Were these used, the expired key would pass (now() = -infinity) ...
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '-infinity'::timestamptz $$;
CREATE FUNCTION evil.statement_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '-infinity'::timestamptz $$;
-- ... and these would hide or replace the key table.
CREATE TABLE evil.mcp_authentication_keys (lookup_hash text, id uuid);
CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE sql AS $$ SELECT 'evil' $$;
CREATE TEMP TABLE mcp_authentication_keys (lookup_hash text, id uuid);
SET search_path = evil, pg_temp, public;
BEGIN;
SELECT key_name FROM public.validate_mcp_key(:'key_e');
SELECT (public.get_tenant_info()).key_name;
COMMIT;
SELECT * FROM public.validate_mcp_key(:'key_gone');
SELECT * FROM public.validate_mcp_key('mcp_live_000000000000000000000000000000003teN4T');
\c - postgres
DROP SCHEMA evil CASCADE;
DROP ROLE regress_evil;
