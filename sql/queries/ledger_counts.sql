-- The ledger writer's validation counts (ledger/counts.rs), slot 0 being the
-- writer's. Keys it cannot see (deleted since, or not yet committed) are skipped.
-- $1 jsonb: [{key_id, tenant_id, count, last (µs since 2000-01-01 UTC)}, ...]
INSERT INTO @s.mcp_key_usage_counters AS c (key_id, slot, tenant_id, usage_count, last_used_at)
SELECT p.key_id, 0, p.tenant_id, p.count,
       timestamptz '2000-01-01 00:00:00+00' + p.last * interval '1 microsecond'
  FROM pg_catalog.jsonb_to_recordset($1) AS p(key_id uuid, tenant_id uuid, count bigint, last bigint)
 WHERE EXISTS (SELECT FROM @s.mcp_authentication_keys k WHERE k.id = p.key_id AND k.tenant_id = p.tenant_id)
ON CONFLICT ON CONSTRAINT mcp_key_usage_counters_pkey DO UPDATE
   SET usage_count = c.usage_count + EXCLUDED.usage_count,
       last_used_at = GREATEST(c.last_used_at, EXCLUDED.last_used_at)
