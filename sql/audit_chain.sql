-- mcp_auth: the audit trail's hash chains (docs/audit-chain.md). Each tenant has two:
-- its usage-log rows ('usage') and the activity_log rows the ledger writes for its
-- MCP calls ('activity'), linked by the ledger's writer (src/ledger/chain.rs) as it
-- writes them: seq, prev_hash, hash (crates/core/src/audit_chain.rs defines the
-- hash). Only the extension's owner writes these tables; admins read their tenant's.

-- The head of each tenant's chains: a row's seq, hash and time that the chain has
-- reached, at most a second behind its last row (src/ledger/chain.rs). Written by
-- the ledger's writer and by no one else, so calls never wait on it (they wait for
-- the writer's commit in any case).
CREATE TABLE mcp_audit_heads (
    tenant_id uuid        NOT NULL,
    -- Which chain: 'usage' (mcp_key_usage_logs) or 'activity' (activity_log).
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    -- The head row's created_at: a later row's time is never earlier (so that a
    -- purge by time removes a prefix of every chain).
    at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, log)
);
COMMENT ON TABLE mcp_audit_heads IS 'mcp_auth: the last link of each tenant''s audit chain';

-- What purges removed: per tenant and chain, the last purged row's seq and hash,
-- where verification of what is left starts.
CREATE TABLE mcp_audit_anchors (
    tenant_id uuid        NOT NULL,
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    -- The purged row's time: a row outside the chain dated after it was inserted.
    at        timestamptz NOT NULL,
    purged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, log, seq)
);
COMMENT ON TABLE mcp_audit_anchors IS 'mcp_auth: where each tenant''s audit chain goes on after a purge';

-- Heads as they were at a time: written hourly by the notifier worker while calls
-- come in, and by mcp_audit_checkpoint(). A checkpoint kept only here proves little
-- (whoever edits the log can edit it); `mcp-auth audit checkpoint --sign` signs one
-- for the operator to keep elsewhere.
CREATE TABLE mcp_audit_checkpoints (
    tenant_id uuid        NOT NULL,
    log       text        NOT NULL CHECK (log IN ('usage', 'activity')),
    seq       bigint      NOT NULL,
    hash      bytea       NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, log, seq)
);
COMMENT ON TABLE mcp_audit_checkpoints IS 'mcp_auth: past heads of the audit chains';

-- When the chains began, in a database upgraded to them (the upgrade to 2.4.0 adds
-- the row): rows outside the chain dated before are the older rows, any other was
-- inserted. A database installed with the chains has no row here, and no row
-- outside them.
CREATE TABLE mcp_audit_upgraded (
    began timestamptz NOT NULL,
    one   boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (one)
);
COMMENT ON TABLE mcp_audit_upgraded IS 'mcp_auth: when the audit chains began, in a database upgraded to them';

SELECT pg_catalog.pg_extension_config_dump('mcp_audit_heads', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_audit_anchors', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_audit_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_audit_upgraded', '');

-- How far each chain has come, for the tenants in p_tenants (NULL: every tenant with a
-- recorded head): per tenant and log, the furthest (by seq; a row before an anchor
-- before a head of the same seq) of its recorded head, its last chained row after
-- that head, and the last anchor a purge left. The ledger's writer records heads up
-- to a second late, and one that ended abruptly leaves them further behind. The rows
-- are searched from the head's time when the head's row is there at that time;
-- otherwise (an edited head, or its row purged) from the start. A time after now
-- (only an edit makes one) counts as now, and a hash that is not 32 bytes (the same)
-- is no link. For checkpoints, and for a writer that may find the recorded heads
-- behind (src/ledger/chain.rs). No row for a tenant with none of these. (No JIT:
-- compiling it would cost more than running it.)
CREATE FUNCTION mcp_audit_reached(p_tenants uuid[])
RETURNS TABLE (tenant_id uuid, log text, seq bigint, hash bytea, at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    WITH t AS (SELECT u.tenant_id FROM pg_catalog.unnest(p_tenants) AS u(tenant_id)
                WHERE p_tenants IS NOT NULL
               UNION
               SELECT h.tenant_id FROM @extschema@.mcp_audit_heads h WHERE p_tenants IS NULL),
         g AS (SELECT t.tenant_id, v.log FROM t CROSS JOIN (VALUES ('usage'::text), ('activity'::text)) AS v(log)),
         h AS (SELECT g.tenant_id, g.log, h.seq, h.hash, h.at,
                      CASE WHEN g.log = 'usage' AND EXISTS (
                               SELECT FROM @extschema@.mcp_key_usage_logs l
                                WHERE l.tenant_id = g.tenant_id AND l.created_at = h.at
                                  AND l.seq = h.seq AND l.hash = h.hash)
                             OR g.log = 'activity' AND EXISTS (
                               SELECT FROM @extschema@.activity_log l
                                WHERE l.tenant_id = g.tenant_id AND l.created_at = h.at
                                  AND l.seq = h.seq AND l.hash = h.hash)
                           THEN h.at ELSE '-infinity'::timestamptz END AS since
                 FROM g LEFT JOIN @extschema@.mcp_audit_heads h
                   ON h.tenant_id = g.tenant_id AND h.log = g.log
                  AND pg_catalog.length(h.hash) = 32)
    SELECT h.tenant_id, h.log, r.seq, r.hash, r.at
      FROM h
     CROSS JOIN LATERAL (
           SELECT c.seq, c.hash, c.at FROM (
               SELECT h.seq, h.hash, LEAST(h.at, pg_catalog.now()) AS at, 3 AS rank WHERE h.seq IS NOT NULL
               UNION ALL
               (SELECT l.seq, l.hash, LEAST(l.created_at, pg_catalog.now()), 1 FROM @extschema@.mcp_key_usage_logs l
                 WHERE h.log = 'usage' AND l.tenant_id = h.tenant_id AND l.seq IS NOT NULL
                   AND l.created_at >= h.since AND pg_catalog.length(l.hash) = 32
                 ORDER BY l.created_at DESC, l.seq DESC LIMIT 1)
               UNION ALL
               (SELECT l.seq, l.hash, LEAST(l.created_at, pg_catalog.now()), 1 FROM @extschema@.activity_log l
                 WHERE h.log = 'activity' AND l.tenant_id = h.tenant_id AND l.seq IS NOT NULL
                   AND l.created_at >= h.since AND pg_catalog.length(l.hash) = 32
                 ORDER BY l.created_at DESC, l.seq DESC LIMIT 1)
               UNION ALL
               (SELECT a.seq, a.hash, LEAST(a.at, pg_catalog.now()), 2 FROM @extschema@.mcp_audit_anchors a
                 WHERE a.tenant_id = h.tenant_id AND a.log = h.log AND pg_catalog.length(a.hash) = 32
                 ORDER BY a.seq DESC LIMIT 1)
           ) c ORDER BY c.seq DESC, c.rank LIMIT 1) r
$$;

-- Records how far every chain has come as a checkpoint and returns it (hash in hex).
-- For the operator (`mcp-auth audit checkpoint`) and the notifier worker's schedule.
CREATE FUNCTION mcp_audit_checkpoint()
RETURNS TABLE (tenant_id uuid, log text, seq bigint, hash text, taken_at timestamptz)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH heads AS (SELECT r.tenant_id, r.log, r.seq, r.hash FROM @extschema@.mcp_audit_reached(NULL) r
                    WHERE r.seq IS NOT NULL),
         kept AS (INSERT INTO @extschema@.mcp_audit_checkpoints AS c (tenant_id, log, seq, hash)
                  SELECT h.tenant_id, h.log, h.seq, h.hash FROM heads h
                  ON CONFLICT ON CONSTRAINT mcp_audit_checkpoints_pkey DO NOTHING)
    SELECT h.tenant_id, h.log, h.seq, pg_catalog.encode(h.hash, 'hex'), pg_catalog.now()
      FROM heads h ORDER BY h.tenant_id, h.log DESC
$$;

-- The statement that records anchors for rows about to be removed from one partition
-- of a log (or the whole log; p_table names either, and so the chain), $1 the time
-- they are older than and $2 the tenant (NULL: all): per tenant with a chain there,
-- its last chained row older than $1, found through the (tenant_id, created_at)
-- index of each partition. A DELETE that runs in the same statement (mcp_log_delete)
-- sees the same rows, so what it removes is exactly the chain up to the anchor.
CREATE FUNCTION mcp_audit_anchor_sql(p_table text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.format(
        'INSERT INTO @extschema@.mcp_audit_anchors (tenant_id, log, seq, hash, at)
         SELECT h.tenant_id, h.log, l.seq, l.hash, l.created_at
           FROM @extschema@.mcp_audit_heads h
           CROSS JOIN LATERAL (SELECT l.seq, l.hash, l.created_at FROM @extschema@.%I l
                                WHERE l.tenant_id = h.tenant_id AND l.created_at < $1
                                  AND l.seq IS NOT NULL
                                ORDER BY l.created_at DESC, l.seq DESC LIMIT 1) l
          WHERE h.log = %L AND ($2 IS NULL OR h.tenant_id = $2)
         ON CONFLICT ON CONSTRAINT mcp_audit_anchors_pkey DO NOTHING',
        p_table, CASE WHEN p_table LIKE 'activity_log%' THEN 'activity' ELSE 'usage' END)
$$;

-- Records those anchors, for a purge that holds the log to itself (mcp_purge_log).
CREATE FUNCTION mcp_audit_anchor(p_table text, p_before timestamptz, p_tenant uuid)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE @extschema@.mcp_audit_anchor_sql(p_table) USING p_before, p_tenant;
END
$$;
