//! `get_mcp_key_stats`: read from the per-slot totals and per-minute counts, never by
//! scanning the log, so it costs the same at a million requests as at ten. Only the
//! oldest, partial minute of the 24-hour window is counted from the log (through the
//! (key_id, created_at) index), which keeps "last 24 hours" exact.

use crate::access;
use crate::keys;
use crate::spi::{self, col, Statement, UUID};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};

const STATS: Statement = Statement {
    sql: "WITH bounds AS (
              SELECT pg_catalog.statement_timestamp() - interval '24 hours' AS since,
                     pg_catalog.date_trunc('minute', pg_catalog.statement_timestamp() - interval '24 hours')
                         + interval '1 minute' AS first_full_minute),
          totals AS (
              SELECT COALESCE(sum(requests), 0)::bigint AS requests,
                     COALESCE(sum(failures), 0)::bigint AS failures,
                     sum(response_ms_sum) AS ms_sum,
                     sum(response_ms_count) AS ms_count,
                     max(last_used_at) AS last_logged
                FROM @s.mcp_key_usage_totals WHERE key_id = $1),
          top_tools AS (
              SELECT COALESCE(pg_catalog.jsonb_agg(
                         pg_catalog.jsonb_build_object('tool', tool_name, 'requests', n)
                         ORDER BY n DESC, tool_name), '[]') AS tools
                FROM (SELECT tool_name, sum(requests)::bigint AS n
                        FROM @s.mcp_key_usage_totals WHERE key_id = $1
                       GROUP BY tool_name ORDER BY n DESC, tool_name LIMIT 5) t),
          day AS (
              SELECT (SELECT COALESCE(sum(m.requests), 0) FROM @s.mcp_key_usage_minutes m
                       WHERE m.key_id = $1 AND m.minute >= b.first_full_minute)
                   + (SELECT count(*) FROM @s.mcp_key_usage_logs l
                       WHERE l.key_id = $1 AND l.created_at > b.since
                         AND l.created_at < b.first_full_minute) AS n
                FROM bounds b),
          validated AS (
              SELECT max(last_used_at) AS at FROM @s.mcp_key_usage_counters WHERE key_id = $1)
          SELECT totals.requests,
                 totals.requests - totals.failures,
                 totals.failures,
                 CASE WHEN totals.ms_count > 0
                      THEN round(totals.ms_sum::numeric / totals.ms_count, 2) END,
                 day.n::bigint,
                 top_tools.tools,
                 GREATEST(totals.last_logged, validated.at)
            FROM totals, top_tools, day, validated",
    args: &[UUID],
    writes: false,
};

type Stats = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<AnyNumeric>,
    Option<i64>,
    Option<JsonB>,
    Option<TimestampWithTimeZone>,
);

/// Usage statistics of one key: totals, successes, failures, average response time,
/// requests in the last 24 hours, the five most used tools, and the last use.
// The return type spells out the contract's columns; name!() cannot be aliased.
#[allow(clippy::type_complexity)]
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn get_mcp_key_stats(
    p_key_id: Option<Uuid>,
) -> TableIterator<
    'static,
    (
        name!(total_requests, Option<i64>),
        name!(successful_requests, Option<i64>),
        name!(failed_requests, Option<i64>),
        name!(avg_response_time_ms, Option<AnyNumeric>),
        name!(last_24h_requests, Option<i64>),
        name!(most_used_tools, Option<JsonB>),
        name!(last_used_at, Option<TimestampWithTimeZone>),
    ),
> {
    let key = keys::in_scope("p_key_id", p_key_id, access::scope());
    let row: Stats = spi::run(&STATS, &[key.id.into()], |t| {
        let r = t.first();
        (
            col(&r, 1),
            col(&r, 2),
            col(&r, 3),
            col(&r, 4),
            col(&r, 5),
            col(&r, 6),
            col(&r, 7),
        )
    });
    TableIterator::once(row)
}
