-- rotate_mcp_key: the old row stops counting as current (freeing its name) and gets
-- its end of grace; the new row copies its settings.
-- $1 old key_id uuid, $2 new key_id uuid, $3 grace interval, $4 key_hash text,
-- $5 lookup_hash text, $6 key_prefix text.
WITH old AS (
    UPDATE @s.mcp_authentication_keys
       SET replaced_by = $2,
           expires_at = LEAST(COALESCE(expires_at, 'infinity'),
                              pg_catalog.statement_timestamp() + $3)
     WHERE id = $1
 RETURNING *)
INSERT INTO @s.mcp_authentication_keys
    (id, tenant_id, name, description, key_hash, lookup_hash, key_prefix, environment,
     allowed_tools, rate_limit, enabled, expires_at, rotated_from, created_by)
SELECT $2, tenant_id, name, description, $4, $5, $6, environment,
       allowed_tools, rate_limit, true,
       (SELECT k.expires_at FROM @s.mcp_authentication_keys k WHERE k.id = $1),
       id, created_by
  FROM old
RETURNING id
