//! `check_mcp_rate_limit`: an exact sliding 60-second window per key.
//!
//! A charge is accepted when the cost accepted in the last 60 seconds plus its own
//! fits the key's `rate_limit`, so no 60-second window ever holds more than
//! `rate_limit` accepted units, and a client at or under its limit is never
//! refused. The windows live in shared memory (`window`), decided under a lock no
//! SQL can take; every accepted charge is made durable by the ledger before the
//! call that made it returns, and a window is loaded from those charges after a
//! restart. Nothing here depends on the caller's transaction: its isolation
//! level, a rollback or a disconnect change no decision.

mod window;

pub use window::REGION;

use crate::access;
use crate::errors;
use crate::keys;
use crate::ledger;
use crate::spi::{self, Statement, INT8, UUID};
use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::json;

/// The outcome of one check.
pub struct Decision {
    pub allowed: bool,
    pub rate_limit: i32,
    pub remaining: i32,
    pub retry_after_ms: i32,
    /// When the charge was accepted (µs since 2000-01-01), for the ledger.
    pub at: i64,
}

// A key's durable charges of the window, oldest first (µs since 2000-01-01).
const CHARGES: Statement = Statement {
    sql: "SELECT ((extract(epoch FROM c.at) - 946684800) * 1000000)::bigint, c.cost::bigint
            FROM @s.mcp_rate_limit_charges c
           WHERE c.key_id = $1 AND c.tenant_id = $2
             AND c.at > timestamptz '2000-01-01 00:00:00+00' + $3 * interval '1 microsecond'
           ORDER BY c.at",
    args: &[UUID, UUID, INT8],
    writes: false,
};

// A database still at 2.1.0 or 2.2.0 has no durable charges to load.
const HAS_CHARGES: Statement = Statement {
    sql: "SELECT pg_catalog.to_regclass('@s.mcp_rate_limit_charges') IS NOT NULL",
    args: &[],
    writes: false,
};

fn load(key: &keys::KeyInfo, now: i64) -> Vec<(i64, i32)> {
    if spi::one::<bool>(&HAS_CHARGES, &[]) != Some(true) {
        return Vec::new();
    }
    spi::run(
        &CHARGES,
        &[
            key.id.into(),
            key.tenant_id.into(),
            (now - window::WINDOW_US).into(),
        ],
        |t| {
            t.filter_map(|r| {
                let at: i64 = r.get(1).ok().flatten()?;
                let cost: i64 = r.get(2).ok().flatten()?;
                Some((at, cost as i32))
            })
            .collect()
        },
    )
}

/// Decides one charge of `key` costing `cost` units, consuming them when allowed
/// (in shared memory: the caller makes the charge durable through the ledger).
pub fn decide(key: &keys::KeyInfo, cost: i32) -> Decision {
    let db = unsafe { pg_sys::MyDatabaseId.to_u32() };
    loop {
        let now = ledger::now_us();
        let (allowed, remaining, retry_after_ms) =
            match window::decide(db, &key.id, key.rate_limit, cost, now) {
                window::Verdict::Allowed { remaining } => (true, remaining, 0),
                window::Verdict::Refused {
                    remaining,
                    retry_after_ms,
                } => (false, remaining, retry_after_ms),
                window::Verdict::Load => {
                    let charges = load(key, now);
                    window::install(db, &key.id, &charges);
                    continue;
                }
                window::Verdict::Wait => {
                    unsafe {
                        pg_sys::WaitLatch(
                            pg_sys::MyLatch,
                            (pg_sys::WL_LATCH_SET
                                | pg_sys::WL_TIMEOUT
                                | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                            1,
                            pg_sys::PG_WAIT_EXTENSION,
                        );
                        pg_sys::ResetLatch(pg_sys::MyLatch);
                        pg_sys::check_for_interrupts!();
                    }
                    continue;
                }
                window::Verdict::Full => errors::internal(
                    "the rate limiter's shared memory is full; no call can be decided",
                ),
            };
        return Decision {
            allowed,
            rate_limit: key.rate_limit,
            remaining: remaining.clamp(0, i64::from(i32::MAX)) as i32,
            retry_after_ms,
            at: now,
        };
    }
}

/// The ledger entry of a charge made outside call_tool.
fn charge_entry(key: &keys::KeyInfo, cost: i32, at: i64) -> serde_json::Value {
    json!({"kind": "charge", "tenant_id": key.tenant_id.to_string(),
           "key_id": key.id.to_string(), "cost": cost, "charged_at": at})
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
    if d.allowed {
        if let Err(down) = ledger::write(&charge_entry(&key, cost, d.at)) {
            errors::internal(down.message());
        }
    }
    TableIterator::once((d.allowed, d.rate_limit, d.remaining, d.retry_after_ms))
}
