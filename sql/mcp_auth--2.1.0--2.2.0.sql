-- mcp_auth 2.1.0 -> 2.2.0 (hardening; see "Upgrading" in README.md):
-- - functions that pinned search_path (every SECURITY DEFINER one) resolve names in
--   pg_catalog only (pg_catalog, pg_temp) and name the extension's own objects with its schema, so
--   nothing another role creates in that schema can be picked instead;
-- - mcp_assert_private_schema, which install scripts use to refuse a schema that
--   others may create in;
-- - a rotated-out key's expiry can only be shortened; mcp_admin may change a key's
--   allowed_tools (the update trigger's check was not executable for it);
-- - mcp_tools_changed, the trigger that invalidates each backend's registry copy.
-- The limiter, the notifier and key-name uniqueness no longer use advisory locks;
-- that is in the library, which this version's scripts and 2.1.0's share.

\echo Use "ALTER EXTENSION mcp_auth UPDATE TO '2.2.0'" to load this file. \quit

DO $definer$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
          JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'mcp_auth' AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND 'search_path=pg_catalog, ' || pg_catalog.quote_ident(n.nspname) || ', pg_temp'
               = ANY (p.proconfig)
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$definer$;

-- A schema must accept new objects from superusers only before an extension of
-- ours goes into it: an object planted there by anyone else could shadow what the
-- extension's functions use, and those functions run as the extension's owner (a
-- superuser) or, for tool handlers, as mcp_tool_runner in a caller's tenant. Raises
-- otherwise, naming the roles that may create there. mcp_mes calls it too.
CREATE FUNCTION mcp_assert_private_schema(p_schema regnamespace, p_extension text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    writers text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                WHERE n.oid = p_schema::pg_catalog.oid AND a.grantee = 0
                  AND a.privilege_type = 'CREATE') THEN
        writers := 'PUBLIC';
    ELSE
        -- Login roles that may create there, directly or through a role they belong to.
        SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(l.rolname), ', ')
          INTO writers
          FROM pg_catalog.pg_roles l
          JOIN pg_catalog.pg_roles g ON pg_catalog.pg_has_role(l.oid, g.oid, 'MEMBER')
         WHERE l.rolcanlogin AND NOT l.rolsuper
           AND pg_catalog.has_schema_privilege(g.oid, p_schema::pg_catalog.oid, 'CREATE');
    END IF;
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION '% cannot be installed in schema %: roles other than superusers may create objects in it (%)',
                        p_extension, p_schema, writers
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its functions run with more rights than those roles have; an object planted in their schema could run with those rights.',
                  HINT = pg_catalog.format('Install it in a schema only superusers can create in (CREATE SCHEMA mcp; CREATE EXTENSION %s SCHEMA mcp;), or REVOKE CREATE ON SCHEMA %s from those roles first.',
                                           p_extension, p_schema);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION mcp_assert_private_schema(regnamespace, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mcp_keys_before_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.allowed_tools IS DISTINCT FROM OLD.allowed_tools THEN
        PERFORM @extschema@.mcp_check_allowed_tools(NEW.allowed_tools, 'allowed_tools');
    END IF;
    -- A rotated-out key's grace period can end sooner, never later: otherwise an
    -- UPDATE of expires_at would bring a replaced key back to life.
    IF OLD.replaced_by IS NOT NULL
       AND NEW.expires_at IS DISTINCT FROM OLD.expires_at
       AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at) THEN
        RAISE EXCEPTION 'expires_at: the key was rotated; its grace period can only be shortened'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND NEW.enabled THEN
        RAISE EXCEPTION 'enabled: the key is revoked and cannot be enabled again'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

GRANT EXECUTE ON FUNCTION mcp_check_allowed_tools(jsonb, text) TO mcp_admin;

-- Each backend keeps the tool registry with compiled schemas; this trigger tells every
-- backend when to drop its copy.
CREATE FUNCTION mcp_tools_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mcp_tools_changed_wrapper';
REVOKE ALL ON FUNCTION mcp_tools_changed() FROM PUBLIC;
CREATE TRIGGER mcp_tools_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mcp_tools
    FOR EACH STATEMENT EXECUTE FUNCTION mcp_tools_changed();
