-- mcp_auth: row-level security, the admin view, and privileges. Runs last (finalize),
-- when every function exists.

-- Direct UPDATEs (the Eryxon Flow MCP Integration Guide's `UPDATE mcp_authentication_keys SET rate_limit = ...`) obey the
-- same rules as the functions: valid tool patterns, and a revoked key stays revoked.
CREATE FUNCTION mcp_keys_before_update() RETURNS trigger
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
CREATE TRIGGER mcp_keys_before_update BEFORE UPDATE ON mcp_authentication_keys
    FOR EACH ROW EXECUTE FUNCTION mcp_keys_before_update();

-- Every table: RLS enabled and forced, one policy on the tenant. mcp_current_tenant()
-- is the key's tenant after validate_mcp_key in this transaction, else (mcp_admin and
-- superusers only) the setting mcp_auth.tenant_id, else NULL (no row).
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mcp_authentication_keys', 'mcp_key_usage_counters',
                             'mcp_key_usage_logs', 'activity_log', 'mcp_key_usage_totals',
                             'mcp_key_usage_minutes', 'mcp_rate_limit_charges',
                             'mcp_server_config', 'mcp_server_health', 'mcp_server_logs',
                             'mcp_activity_outbox', 'mcp_audit_heads', 'mcp_audit_anchors',
                             'mcp_audit_checkpoints', 'mcp_oauth_tokens']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY tenant_isolation ON @extschema@.%I
                 USING (tenant_id = @extschema@.mcp_current_tenant())
                 WITH CHECK (tenant_id = @extschema@.mcp_current_tenant())', t);
        EXECUTE pg_catalog.format('REVOKE ALL ON @extschema@.%I FROM PUBLIC', t);
    END LOOP;
END
$rls$;

-- Everything an admin may see of a key, with its usage; never the hash or lookup columns.
CREATE VIEW mcp_keys WITH (security_invoker = true, security_barrier = true) AS
SELECT k.id, k.tenant_id, k.name, k.description, k.key_prefix, k.environment,
       k.allowed_tools, k.rate_limit, k.enabled, k.expires_at, k.revoked_at,
       k.rotated_from, k.replaced_by, k.created_by, k.created_at, k.updated_at,
       COALESCE(u.usage_count, 0)::bigint AS usage_count,
       u.last_used_at,
       -- The validator's rule (src/keys/status.rs), on the same facts.
       @extschema@.mcp_key_status(k.revoked_at IS NOT NULL, k.enabled,
                                  COALESCE(k.expires_at <= pg_catalog.now(), false),
                                  k.replaced_by IS NOT NULL) AS status,
       -- The OAuth clients holding a live token of the key (revoke_mcp_oauth_client).
       ARRAY(SELECT DISTINCT c.client_name || ' (' || t.client_id || ')'
               FROM @extschema@.mcp_oauth_tokens t
               JOIN @extschema@.mcp_oauth_clients c ON c.client_id = t.client_id
              WHERE t.key_id = k.id AND t.revoked_at IS NULL AND t.kind <> 'code'
                AND t.expires_at > pg_catalog.now()
              ORDER BY 1) AS oauth_clients
FROM @extschema@.mcp_authentication_keys k
LEFT JOIN LATERAL (
    SELECT pg_catalog.sum(c.usage_count) AS usage_count, pg_catalog.max(c.last_used_at) AS last_used_at
    FROM @extschema@.mcp_key_usage_counters c
    WHERE c.key_id = k.id
) u ON true;
COMMENT ON VIEW mcp_keys IS 'mcp_auth: keys of the current tenant with usage_count, last_used_at and status';

-- Nobody but the owner gets anything by default.
REVOKE ALL ON mcp_keys FROM PUBLIC;
DO $revoke$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT d.objid::regprocedure
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
        WHERE e.extname = 'mcp_auth'
          AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND d.deptype = 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$revoke$;

GRANT USAGE ON SCHEMA @extschema@ TO mcp_admin, mcp_client;

-- mcp_client: the MCP entry points only. No table at all.
GRANT EXECUTE ON FUNCTION
    @extschema@.validate_mcp_key(text),
    @extschema@.check_mcp_tool_permission(uuid, text),
    @extschema@.get_tenant_info(),
    @extschema@.mcp_current_tenant(),
    @extschema@.log_mcp_key_usage(uuid, uuid, text, jsonb, boolean, text, integer, inet, text),
    @extschema@.check_mcp_rate_limit(uuid, integer),
    @extschema@.get_mcp_key_stats(uuid),
    @extschema@.get_mcp_server_config(),
    @extschema@.record_mcp_server_health(text, integer, text, jsonb),
    @extschema@.log_mcp_server_event(text, text, text, jsonb),
    @extschema@.list_tools(text),
    @extschema@.call_tool(text, text, jsonb, jsonb)
TO mcp_client, mcp_admin;
-- The OAuth authorization server's entry points (mcp-auth serve --oauth-issuer):
-- each answers in OAuth's terms, and grants no more than the key consenting has.
GRANT EXECUTE ON FUNCTION
    @extschema@.mcp_oauth_register_client(text, text[], inet, integer),
    @extschema@.mcp_oauth_describe_client(text, text, text[]),
    @extschema@.mcp_oauth_client(text),
    @extschema@.mcp_oauth_consent(text),
    @extschema@.mcp_oauth_authorize(text, text, text, text, text, text[]),
    @extschema@.mcp_oauth_token(text, text, text, text, text, text),
    @extschema@.mcp_oauth_revoke(text, text)
TO mcp_client;

-- Tool handlers run as mcp_tool_runner: it needs the tenant of the validated key,
-- and the EXECUTE right on each handler (granted by register_mcp_tool).
GRANT USAGE ON SCHEMA @extschema@ TO mcp_tool_runner;
GRANT EXECUTE ON FUNCTION @extschema@.mcp_current_tenant() TO mcp_tool_runner;
REVOKE ALL ON mcp_tools FROM PUBLIC;
GRANT SELECT ON mcp_tools TO mcp_admin;

-- mcp_admin: its own tenant's keys (RLS), never the hash or lookup columns.
-- (mcp_check_allowed_tools: the update trigger checks an admin's new tool list with it.)
GRANT EXECUTE ON FUNCTION
    @extschema@.mcp_check_allowed_tools(jsonb, text),
    @extschema@.generate_mcp_key(uuid, text, text, text, jsonb, uuid, integer, timestamptz),
    @extschema@.rotate_mcp_key(uuid, interval),
    @extschema@.disable_mcp_key(uuid),
    @extschema@.enable_mcp_key(uuid),
    @extschema@.revoke_mcp_key(uuid),
    @extschema@.delete_mcp_key(uuid),
    @extschema@.update_mcp_server_config(text, boolean, boolean, boolean, boolean),
    @extschema@.get_mcp_server_status(),
    @extschema@.get_mcp_server_logs(text, text, text, timestamptz, integer),
    @extschema@.purge_mcp_usage_logs(interval),
    @extschema@.purge_activity_log(interval),
    @extschema@.mcp_ledger_sync(),
    @extschema@.verify_mcp_audit(uuid, timestamptz, timestamptz),
    @extschema@.revoke_mcp_oauth_client(text)
TO mcp_admin;
-- For mcp_keys.oauth_clients: its tenant's tokens (RLS), never their digests; and
-- the clients' names (no tenant's data: any user of any tenant may consent to one).
GRANT SELECT (tenant_id, key_id, client_id, kind, family, resource, tools, created_at,
              expires_at, used_at, revoked_at) ON mcp_oauth_tokens TO mcp_admin;
GRANT SELECT (client_id, client_name, kind, created_at) ON mcp_oauth_clients TO mcp_admin;
GRANT SELECT (id, tenant_id, name, description, key_prefix, environment, allowed_tools,
              rate_limit, enabled, expires_at, revoked_at, rotated_from, replaced_by,
              created_by, created_at, updated_at)
    ON mcp_authentication_keys TO mcp_admin;
GRANT UPDATE (name, description, allowed_tools, rate_limit, enabled, expires_at)
    ON mcp_authentication_keys TO mcp_admin;
-- (No DELETE: delete_mcp_key. Column rights do not allow LOCK TABLE; a table-level
-- DELETE would, in every mode, against every tenant's validations.)
GRANT SELECT ON mcp_key_usage_counters, mcp_keys TO mcp_admin;
GRANT EXECUTE ON FUNCTION @extschema@.mcp_key_status(boolean, boolean, boolean, boolean) TO mcp_admin;
-- The audit trail and server data: read-only for admins (their tenant, by RLS); the
-- application may add its own activity rows for its tenant, outside the chain (the
-- chain's columns are the ledger's), dated when it adds them: a row it could date
-- would pass for one from before the chain began.
GRANT SELECT ON mcp_key_usage_logs, activity_log, mcp_key_usage_totals, mcp_key_usage_minutes,
               mcp_server_config, mcp_server_health, mcp_server_logs,
               mcp_audit_heads, mcp_audit_anchors, mcp_audit_checkpoints, mcp_audit_upgraded TO mcp_admin;
GRANT INSERT (id, tenant_id, user_id, user_name, action, entity_type, entity_id, entity_name,
              description, metadata) ON activity_log TO mcp_admin;
