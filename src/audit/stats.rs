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
    sql: include_str!("../../sql/queries/key_stats.sql"),
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

/// This backend's slot, for the per-slot counter rows of extensions built on this one
/// (mcp_mes's dashboard counts): unique among running backends, so that two
/// concurrent writers never update one row.
#[pg_extern(stable, parallel_safe)]
fn mcp_backend_slot() -> i32 {
    spi::backend_slot()
}
