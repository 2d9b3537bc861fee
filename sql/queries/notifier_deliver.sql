-- The notifier worker's delivery: deletes up to $1 queued toasts of transactions
-- from xid $2 on and NOTIFYs them, oldest first (pg_notify runs after the sort).
-- $1 batch bigint, $2 from xid bigint. Returns the number sent and this snapshot's
-- xmin: every transaction before it has ended.
WITH batch AS (
    SELECT ctid FROM @s.mcp_activity_outbox
     WHERE xid >= $2::text::pg_catalog.xid8
     ORDER BY xid LIMIT $1 FOR UPDATE),
sent AS (
    DELETE FROM @s.mcp_activity_outbox o USING batch WHERE o.ctid = batch.ctid
    RETURNING o.queued_at, o.payload),
n AS (
    SELECT pg_catalog.count(*)::bigint AS sent FROM (
        SELECT pg_catalog.pg_notify('mcp_activity', payload) FROM sent ORDER BY queued_at) x)
SELECT n.sent,
       pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint
  FROM n
