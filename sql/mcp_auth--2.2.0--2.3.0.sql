-- mcp_auth 2.2.0 -> 2.3.0: the ledger (see UPDATING in README.md, "Upgrading").
-- - Every call's audit entry and rate-limit charge are made durable by the
--   extension's own writer, outside the caller's transaction; the windows of the
--   limiter live in shared memory. The library must now be in
--   shared_preload_libraries (it refuses to load otherwise).
-- - mcp_key_usage_logs.xact_id: the calling transaction of a call whose tool wrote.
-- - mcp_key_usage_counters loses its foreign key to the keys (see below).
-- - mcp_rate_limit_charges replaces mcp_rate_limit_events; the last minute's
--   accepted calls carry over, so no key gets a fresh window from the upgrade.

\echo Use "ALTER EXTENSION mcp_auth UPDATE TO '2.3.0'" to load this file. \quit

ALTER TABLE @extschema@.mcp_key_usage_logs ADD COLUMN xact_id xid8;

-- Checking the counters' foreign key locked the key's row, so an admin's open
-- DELETE of a key could hold up the ledger's writer (and every tenant's calls);
-- the writer drops a deleted key's counters itself.
DO $fk$
DECLARE
    c name;
BEGIN
    FOR c IN SELECT conname FROM pg_catalog.pg_constraint
              WHERE conrelid = '@extschema@.mcp_key_usage_counters'::pg_catalog.regclass
                AND contype = 'f'
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.mcp_key_usage_counters DROP CONSTRAINT %I', c);
    END LOOP;
END
$fk$;

CREATE TABLE @extschema@.mcp_rate_limit_charges (
    tenant_id uuid        NOT NULL,
    key_id    uuid        NOT NULL,
    at        timestamptz NOT NULL,
    cost      integer     NOT NULL CHECK (cost > 0)
);
CREATE INDEX mcp_rate_limit_charges_key_at_idx ON @extschema@.mcp_rate_limit_charges (key_id, at);
CREATE INDEX mcp_rate_limit_charges_at_idx ON @extschema@.mcp_rate_limit_charges (at);
COMMENT ON TABLE @extschema@.mcp_rate_limit_charges IS
    'mcp_auth: rate-limit charges of the last minutes, durable (the windows are in shared memory)';
INSERT INTO @extschema@.mcp_rate_limit_charges (tenant_id, key_id, at, cost)
SELECT e.tenant_id, e.key_id, e.at, e.cost FROM @extschema@.mcp_rate_limit_events e
 WHERE e.at > pg_catalog.now() OPERATOR(pg_catalog.-) interval '60 seconds';
DROP TABLE @extschema@.mcp_rate_limit_events;

ALTER TABLE @extschema@.mcp_rate_limit_charges ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mcp_rate_limit_charges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON @extschema@.mcp_rate_limit_charges
    USING (tenant_id = @extschema@.mcp_current_tenant())
    WITH CHECK (tenant_id = @extschema@.mcp_current_tenant());
REVOKE ALL ON @extschema@.mcp_rate_limit_charges FROM PUBLIC;

-- Waits until the ledger has written what this database queued before the call.
CREATE FUNCTION @extschema@.mcp_ledger_sync() RETURNS void
    STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'mcp_ledger_sync_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_ledger_sync() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.mcp_ledger_sync() TO mcp_admin;
