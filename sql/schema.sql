-- mcp_auth: roles, tables and indexes. Runs first (bootstrap); functions are
-- created from Rust afterwards, and security.sql (finalize) adds the policies
-- and grants that refer to them.

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
SELECT @extschema@.mcp_assert_private_schema('@extschema@', 'mcp_auth');

-- Group roles are cluster-wide, so they may already exist from another database.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mcp_client') THEN
        CREATE ROLE mcp_client NOLOGIN;
        COMMENT ON ROLE mcp_client IS 'mcp_auth: MCP servers; may only call the MCP entry points, tenant only from a validated key';
    END IF;
    -- Tool handlers run as this role: never a superuser, never a table owner, never
    -- BYPASSRLS, so row-level security confines them to the key's tenant.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mcp_tool_runner') THEN
        CREATE ROLE mcp_tool_runner NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        COMMENT ON ROLE mcp_tool_runner IS 'mcp_auth: the role tool handlers run as (RLS applies)';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mcp_admin') THEN
        CREATE ROLE mcp_admin NOLOGIN;
        COMMENT ON ROLE mcp_admin IS 'mcp_auth: application admin connections; tenant from SET mcp_auth.tenant_id';
    END IF;
END
$roles$;

CREATE TABLE mcp_authentication_keys (
    id            uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id     uuid        NOT NULL,
    name          text        NOT NULL,
    description   text,
    -- bcrypt verifier (key_hash, as the Eryxon Flow MCP Integration Guide names it) and hex SHA-256 lookup value; owner-only columns.
    key_hash      text        NOT NULL,
    lookup_hash   text        NOT NULL,
    key_prefix    text        NOT NULL,
    environment   text        NOT NULL DEFAULT 'live',
    allowed_tools jsonb       NOT NULL DEFAULT '["*"]',
    rate_limit    integer     NOT NULL DEFAULT 100,
    enabled       boolean     NOT NULL DEFAULT true,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- Rotation history: plain ids, not foreign keys, so that an old key can be deleted
    -- (the Integration Guide's "delete old key after 30 days") and dumps need no ordering.
    rotated_from  uuid,
    replaced_by   uuid,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT mcp_keys_name_not_blank CHECK (pg_catalog.length(pg_catalog.btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT mcp_keys_environment CHECK (environment IN ('live', 'test')),
    CONSTRAINT mcp_keys_rate_limit_positive CHECK (rate_limit > 0),
    CONSTRAINT mcp_keys_allowed_tools_array CHECK (
        pg_catalog.jsonb_typeof(allowed_tools) = 'array'
        AND NOT pg_catalog.jsonb_path_exists(allowed_tools, '$[*] ? (@.type() != "string")')),
    CONSTRAINT mcp_keys_lookup_hash_format CHECK (lookup_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT mcp_keys_prefix_format CHECK (key_prefix ~ '^mcp_(live|test)_[0-9A-Za-z]{7}$'),
    -- Every key constraint includes tenant_id (Citus's rule for distributed tables).
    PRIMARY KEY (id, tenant_id)
);
COMMENT ON TABLE mcp_authentication_keys IS
    'mcp_auth: per-tenant MCP keys. The key itself is never stored: key_hash is its bcrypt verifier, lookup_hash its SHA-256.';

-- Validation finds a key by lookup_hash alone (the leading column).
CREATE UNIQUE INDEX mcp_keys_lookup_hash_key ON mcp_authentication_keys (lookup_hash, tenant_id);
-- Names are unique among a tenant's current keys; a rotated or revoked key frees its name.
CREATE UNIQUE INDEX mcp_keys_tenant_name_key ON mcp_authentication_keys (tenant_id, name)
    WHERE replaced_by IS NULL AND revoked_at IS NULL;
CREATE INDEX mcp_keys_tenant_idx ON mcp_authentication_keys (tenant_id, created_at);

-- usage_count / last_used_at live in per-backend slots so that concurrent calls of one
-- key never wait on one row lock; the view mcp_keys sums them.
CREATE TABLE mcp_key_usage_counters (
    key_id       uuid        NOT NULL,
    slot         integer     NOT NULL,
    tenant_id    uuid        NOT NULL,
    usage_count  bigint      NOT NULL DEFAULT 0,
    last_used_at timestamptz,
    -- No foreign key to the key: checking one locks the key's row, so an admin
    -- holding that row (an open DELETE) would hold up the ledger's writer, and with
    -- it every tenant's calls. The writer drops the rows of deleted keys instead.
    PRIMARY KEY (key_id, slot, tenant_id)
);
COMMENT ON TABLE mcp_key_usage_counters IS
    'mcp_auth: validation counters of each key, one row per backend slot (sum them; see view mcp_keys)';

-- The one-row answer of get_tenant_info(): a composite, so (get_tenant_info()).id works.
CREATE TYPE mcp_tenant_info AS (
    id          uuid,
    key_id      uuid,
    key_name    text,
    environment text,
    source      text
);

-- Data survives pg_dump/pg_restore (only hashes are stored, never a key).
SELECT pg_catalog.pg_extension_config_dump('mcp_authentication_keys', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_key_usage_counters', '');
