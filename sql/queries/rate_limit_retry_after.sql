-- When a refused call would fit: once the calls up to the first one whose running
-- total reaches last + cost - limit have left the window.
-- $1 key_id uuid, $2 now timestamptz, $3 that running total bigint. Returns ms.
SELECT GREATEST(1, ceil(extract(epoch FROM (e.at + interval '60 seconds' - $2)) * 1000))::int
  FROM @s.mcp_rate_limit_events e
 WHERE e.key_id = $1 AND e.at > $2 - interval '60 seconds' AND e.cum >= $3
 ORDER BY e.cum LIMIT 1
