-- The limiter's decision (run under the key's lock, in a fresh snapshot). At time
-- $5: the key's running total (last), the total before the window (base: before the
-- window's oldest call, or last when the window is empty); deletes the calls that
-- left the window since the previous decision; records the call when cost fits.
-- $1 key_id uuid, $2 cost integer, $3 tenant_id uuid, $4 rate_limit integer,
-- $5 now timestamptz. Returns last, used in the window, accepted.
WITH l AS (SELECT e.cum, e.window_base FROM @s.mcp_rate_limit_events e
            WHERE e.key_id = $1 ORDER BY e.cum DESC LIMIT 1),
o AS (SELECT e.cum - e.cost AS base FROM @s.mcp_rate_limit_events e
       WHERE e.key_id = $1 AND e.at > $5 - interval '60 seconds'
       ORDER BY e.at, e.cum LIMIT 1),
d AS (SELECT COALESCE(l.cum, 0) AS last,
             COALESCE(l.window_base, 0) AS previous_base,
             COALESCE(o.base, l.cum, 0) AS base
        FROM (SELECT) one LEFT JOIN l ON true LEFT JOIN o ON true),
gone AS (DELETE FROM @s.mcp_rate_limit_events e USING d
          WHERE e.key_id = $1 AND e.cum > d.previous_base AND e.cum <= d.base),
accepted AS (
    INSERT INTO @s.mcp_rate_limit_events (key_id, cum, at, cost, window_base, tenant_id)
    SELECT $1, d.last + $2, $5, $2, d.base, $3 FROM d WHERE d.last - d.base + $2 <= $4
    RETURNING 1)
SELECT d.last, d.last - d.base, EXISTS (SELECT FROM accepted) FROM d
