//! `check_mcp_rate_limit`: an exact sliding 60-second window per key.
//!
//! A call is accepted when the cost of the calls accepted in the last 60 seconds
//! plus its own cost fits the key's `rate_limit`, so no 60-second window ever holds
//! more than `rate_limit` accepted units, and a client at or under its limit is never
//! refused. Deciders of one key are serialised by a transaction-level lock in a
//! space no SQL can name (see `locks`), so no other session can hold a key's
//! calls up, and read each other's committed calls in a fresh snapshot; keys never
//! wait on each other.
//!
//! `call_tool` decides after its handler ran (so one key's slow call holds the
//! key's next calls up only from its decision to its commit, not for the handler's
//! whole run), and before the handler it asks `full`, which reads the committed
//! window without a lock or a write: a key over its limit is refused at once and
//! runs no handler.

use crate::access;
use crate::errors;
use crate::keys;
use crate::locks;
use crate::spi::{self, col, Statement, INT4, INT8, UUID};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::Uuid;

/// The outcome of one check.
pub struct Decision {
    pub allowed: bool,
    pub rate_limit: i32,
    pub remaining: i32,
    pub retry_after_ms: i32,
}

// Read-write, so the snapshot is taken after the lock and sees every earlier decision.
const DECIDE: Statement = Statement {
    sql: include_str!("../sql/queries/rate_limit_decide.sql"),
    args: &[UUID, INT4, UUID, INT4, spi::TIMESTAMPTZ],
    writes: true,
};

const RETRY_AFTER: Statement = Statement {
    sql: include_str!("../sql/queries/rate_limit_retry_after.sql"),
    args: &[UUID, spi::TIMESTAMPTZ, INT8],
    writes: true,
};

// The same window as DECIDE reads, from committed calls only, changing nothing:
// the key's running total and the units used in the window at $2.
const PEEK: Statement = Statement {
    sql: "WITH l AS (SELECT e.cum FROM @s.mcp_rate_limit_events e
                      WHERE e.key_id = $1 ORDER BY e.cum DESC LIMIT 1),
          o AS (SELECT e.cum - e.cost AS base FROM @s.mcp_rate_limit_events e
                 WHERE e.key_id = $1 AND e.at > $2 - interval '60 seconds'
                 ORDER BY e.at, e.cum LIMIT 1)
          SELECT COALESCE(l.cum, 0), COALESCE(l.cum, 0) - COALESCE(o.base, l.cum, 0)
            FROM (SELECT) one LEFT JOIN l ON true LEFT JOIN o ON true",
    args: &[UUID, spi::TIMESTAMPTZ],
    writes: false,
};

fn now() -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(unsafe { pg_sys::GetCurrentTimestamp() })
        .expect("the clock is within timestamptz range")
}

fn refused(
    key: &keys::KeyInfo,
    cost: i32,
    now: TimestampWithTimeZone,
    last: i64,
    used: i64,
) -> Decision {
    let (cost64, limit64) = (i64::from(cost), i64::from(key.rate_limit));
    let retry = spi::one::<i32>(
        &RETRY_AFTER,
        &[key.id.into(), now.into(), (last + cost64 - limit64).into()],
    )
    .unwrap_or(60_000);
    Decision {
        allowed: false,
        rate_limit: key.rate_limit,
        remaining: (limit64 - used).max(0) as i32,
        retry_after_ms: retry,
    }
}

/// The refusal `decide` would give now if the key's committed calls already fill its
/// window; None when the call may fit. Takes no lock and writes nothing.
pub fn full(key: &keys::KeyInfo, cost: i32) -> Option<Decision> {
    let now = now();
    let (last, used): (i64, i64) = spi::run(&PEEK, &[key.id.into(), now.into()], |t| {
        let r = t.first();
        (col(&r, 1).unwrap_or(0), col(&r, 2).unwrap_or(0))
    });
    (used + i64::from(cost) > i64::from(key.rate_limit))
        .then(|| refused(key, cost, now, last, used))
}

/// Decides one call of `key` costing `cost` units, consuming them when allowed.
pub fn decide(key: &keys::KeyInfo, cost: i32) -> Decision {
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        errors::wrong_state(
            "check_mcp_rate_limit needs READ COMMITTED isolation (it must see other sessions' calls)",
        );
    }
    let limit = key.rate_limit;
    locks::xact_lock(locks::Purpose::RateLimit, locks::uuid_id(&key.id));
    // The clock is read after the lock, so decisions of one key are in time order.
    let now = now();
    let (last, used, allowed): (i64, i64, bool) = spi::run(
        &DECIDE,
        &[
            key.id.into(),
            cost.into(),
            key.tenant_id.into(),
            limit.into(),
            now.into(),
        ],
        |t| {
            let r = t.first();
            (
                col(&r, 1).unwrap_or(0),
                col(&r, 2).unwrap_or(0),
                col(&r, 3).unwrap_or(false),
            )
        },
    );
    if !allowed {
        return refused(key, cost, now, last, used);
    }
    Decision {
        allowed,
        rate_limit: limit,
        remaining: (i64::from(limit) - used - i64::from(cost)) as i32,
        retry_after_ms: 0,
    }
}

/// Checks the key's per-minute budget and consumes `p_cost` units of it when the call
/// is allowed. `retry_after_ms` says when a refused call would fit. An mcp_client
/// session may only use the key it validated in this transaction.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn check_mcp_rate_limit(
    p_key_id: Option<Uuid>,
    p_cost: default!(Option<i32>, 1),
) -> TableIterator<
    'static,
    (
        name!(allowed, bool),
        name!(rate_limit, i32),
        name!(remaining, i32),
        name!(retry_after_ms, i32),
    ),
> {
    let key = keys::in_scope("p_key_id", p_key_id, access::scope());
    let cost = p_cost.unwrap_or_else(|| errors::required("p_cost"));
    if cost < 1 {
        errors::bad_param("p_cost", format!("must be at least 1 (got {cost})"));
    }
    if cost > key.rate_limit {
        errors::bad_param(
            "p_cost",
            format!(
                "{cost} exceeds the key's rate limit of {} per minute",
                key.rate_limit
            ),
        );
    }
    let d = decide(&key, cost);
    TableIterator::once((d.allowed, d.rate_limit, d.remaining, d.retry_after_ms))
}
