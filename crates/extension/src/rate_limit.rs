//! `check_mcp_rate_limit`: an exact sliding 60-second window per key.
//!
//! A call is accepted when the cost of the calls accepted in the last 60 seconds
//! plus its own cost fits the key's `rate_limit`, so no 60-second window ever holds
//! more than `rate_limit` accepted units, and a client at or under its limit is never
//! refused. Deciders of one key are serialised by a transaction-level advisory lock
//! and read each other's committed calls in a fresh snapshot; keys never wait on
//! each other.

use crate::access;
use crate::errors;
use crate::keys;
use crate::spi::{self, col, Statement, INT4, UUID};
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

// Class 'mcpr' in the two-key advisory lock space; the second key is the key's hash.
const LOCK: Statement = Statement {
    sql: "SELECT pg_catalog.pg_advisory_xact_lock(1835233394, pg_catalog.hashtext($1::text))",
    args: &[UUID],
    writes: false,
};

// Read-write, so the snapshot is taken after the lock and sees every earlier decision.
// Also drops this key's calls that have left the window.
const USED: Statement = Statement {
    sql: "WITH t AS (SELECT pg_catalog.clock_timestamp() AS now),
          gone AS (DELETE FROM @s.mcp_rate_limit_events e USING t
                    WHERE e.key_id = $1 AND e.at <= t.now - interval '60 seconds')
          SELECT t.now,
                 (SELECT COALESCE(sum(e.cost), 0)::int FROM @s.mcp_rate_limit_events e
                   WHERE e.key_id = $1 AND e.at > t.now - interval '60 seconds')
            FROM t",
    args: &[UUID],
    writes: true,
};

const ACCEPT: Statement = Statement {
    sql: "INSERT INTO @s.mcp_rate_limit_events (key_id, at, cost, tenant_id) VALUES ($1, $2, $3, $4)",
    args: &[UUID, spi::TIMESTAMPTZ, INT4, UUID],
    writes: true,
};

// When enough of the window will have expired for `cost` to fit: the oldest accepted
// call whose expiry brings the used amount down to `limit - cost`.
const RETRY_AFTER: Statement = Statement {
    sql: "SELECT GREATEST(1, ceil(extract(epoch FROM (s.at + interval '60 seconds' - $2)) * 1000))::int
            FROM (SELECT e.at, sum(e.cost) OVER (ORDER BY e.at, e.ctid) AS expired
                    FROM @s.mcp_rate_limit_events e
                   WHERE e.key_id = $1 AND e.at > $2 - interval '60 seconds') s
           WHERE $3 - s.expired + $4 <= $5
           ORDER BY s.at LIMIT 1",
    args: &[UUID, spi::TIMESTAMPTZ, INT4, INT4, INT4],
    writes: false,
};

/// Decides one call of `key` costing `cost` units, consuming them when allowed.
pub fn decide(key: &keys::KeyInfo, cost: i32) -> Decision {
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        errors::wrong_state(
            "check_mcp_rate_limit needs READ COMMITTED isolation (it must see other sessions' calls)",
        );
    }
    let limit = key.rate_limit;
    spi::run(&LOCK, &[key.id.into()], |_| ());
    let (now, used): (TimestampWithTimeZone, i32) = spi::run(&USED, &[key.id.into()], |t| {
        let r = t.first();
        (col(&r, 1).expect("clock"), col(&r, 2).unwrap_or(0))
    });
    if used + cost <= limit {
        spi::run(
            &ACCEPT,
            &[key.id.into(), now.into(), cost.into(), key.tenant_id.into()],
            |_| (),
        );
        return Decision {
            allowed: true,
            rate_limit: limit,
            remaining: limit - used - cost,
            retry_after_ms: 0,
        };
    }
    let retry = spi::one::<i32>(
        &RETRY_AFTER,
        &[key.id.into(), now.into(), used.into(), cost.into(), limit.into()],
    )
    .unwrap_or(60_000);
    Decision {
        allowed: false,
        rate_limit: limit,
        remaining: (limit - used).max(0),
        retry_after_ms: retry,
    }
}

/// Checks the key's per-minute budget and consumes `p_cost` units of it when the call
/// is allowed. `retry_after_ms` says when a refused call would fit. An mcp_client
/// session may only use the key it validated in this transaction.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
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
            format!("{cost} exceeds the key's rate limit of {} per minute", key.rate_limit),
        );
    }
    let d = decide(&key, cost);
    TableIterator::once((d.allowed, d.rate_limit, d.remaining, d.retry_after_ms))
}
