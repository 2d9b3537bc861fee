//! The ledger's writer: one background worker per database, started by the first
//! backend that queues an entry there (dynamic, like the notifier), leaving after
//! IDLE_AFTER without work so that an idle database keeps no connection.
//!
//! Each round takes every queued entry of its database, writes them in one
//! transaction (the usage entries in one statement; when that fails, each in a
//! subtransaction of its own, so that one bad entry fails alone), commits, and
//! only then tells the waiting backends. A writer that dies mid-round loses
//! nothing: its transaction did not commit, and the next writer takes the entries
//! back from the slots where they still sit.

use super::{chain, counts, queue};
use crate::settings;
use crate::spi::{self, Statement, BYTEA, INT8_ARRAY, JSONB};
use crate::subxact;
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

const IDLE_AFTER: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(10);
const SCHEMA_RECHECK: Duration = Duration::from_secs(1);
const COUNTS_EVERY: Duration = Duration::from_millis(100);

/// Whether `t` is a sync entry (`mcp_ledger_sync`): a few bytes, unlike any other.
fn is_sync(t: &Taken) -> bool {
    t.bytes.as_deref().is_some_and(|b| {
        b.len() < 64
            && serde_json::from_slice::<serde_json::Value>(b).is_ok_and(|v| v["kind"] == "sync")
    })
}

/// Asks the postmaster for `db`'s writer. Never raises: a backend that cannot get
/// one times out and fails its call closed.
pub fn start(db: u32) {
    if !crate::workers::start("mcp_auth ledger", "mcp_auth_ledger_main", db) {
        pgrx::log!(
            "mcp_auth: could not start the ledger writer (no free background worker slot, \
             see max_worker_processes); calls fail until one starts"
        );
    }
}

/// What this database's schema has: one library serves a database before its
/// ALTER EXTENSION UPDATE.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Schema {
    /// 2.3.0: the charges table and the log's xact_id.
    charges: bool,
    /// 2.4.0: the audit chain's columns and heads.
    chain: bool,
}

/// The usage statement for `schema`, storing the chains' links when `chain` (see
/// the header of sql/queries/ledger_write.sql). Made once per writer and variant,
/// not in every round.
fn usage_sql(schema: Schema, chain: bool) -> &'static str {
    static MADE: [std::sync::OnceLock<String>; 8] = [const { std::sync::OnceLock::new() }; 8];
    let variant = schema.charges as usize | (schema.chain as usize) << 1 | (chain as usize) << 2;
    MADE[variant].get_or_init(|| {
        include_str!("../../sql/queries/ledger_write.sql")
            .lines()
            .filter(|l| {
                let l = l.trim_end();
                !(l.ends_with("-- 2.3.0") && !schema.charges
                    || l.ends_with("-- no chain") && chain
                    || l.ends_with("-- chain") && !l.ends_with("-- no chain") && !chain)
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

const CHARGE: Statement = Statement {
    sql: "INSERT INTO @s.mcp_rate_limit_charges (tenant_id, key_id, at, cost)
          SELECT ($1->>'tenant_id')::uuid, ($1->>'key_id')::uuid,
                 timestamptz '2000-01-01 00:00:00+00' + ($1->>'charged_at')::bigint * interval '1 microsecond',
                 ($1->>'cost')::integer",
    args: &[JSONB],
    writes: true,
};

const COUNTS: Statement = Statement {
    sql: include_str!("../../sql/queries/ledger_counts.sql"),
    args: &[JSONB],
    writes: true,
};

// Charges older than any window (the limiter reads only the last 60 seconds), and
// the validation counts of deleted keys (no foreign key: see sql/schema.sql).
const PRUNE: Statement = Statement {
    sql: "WITH charges AS (
              DELETE FROM @s.mcp_rate_limit_charges
               WHERE at < pg_catalog.now() - interval '2 minutes')
          DELETE FROM @s.mcp_key_usage_counters c
           WHERE NOT EXISTS (SELECT FROM @s.mcp_authentication_keys k
                              WHERE k.id = c.key_id AND k.tenant_id = c.tenant_id)",
    args: &[],
    writes: true,
};

// Admin bindings of dropped roles (a regrole column holds no dependency), before a
// new role could ever get the old one's oid. Fails harmlessly before 2.4.0.
const PRUNE_ADMINS: Statement = Statement {
    sql: "DELETE FROM @s.mcp_tenant_admins a
           WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_authid r WHERE r.oid = a.role::pg_catalog.oid)",
    args: &[],
    writes: true,
};

const SCHEMA: Statement = Statement {
    sql: "SELECT pg_catalog.to_regclass('@s.mcp_rate_limit_charges') IS NOT NULL,
                 pg_catalog.to_regclass('@s.mcp_audit_heads') IS NOT NULL",
    args: &[],
    writes: false,
};

/// One entry taken from its slot.
struct Taken {
    slot: usize,
    generation: u64,
    bytes: Option<Vec<u8>>,
}

fn collect(db: u32) -> Vec<Taken> {
    let mut taken: Vec<Taken> = (0..queue::slots())
        .filter_map(|i| {
            let s = queue::slot(i);
            if s.db() != db {
                return None;
            }
            s.take().map(|(generation, bytes)| Taken {
                slot: i,
                generation,
                bytes,
            })
        })
        .collect();
    taken.sort_by_key(|t| t.generation);
    taken
}

/// Runs `stmt` on `arg` in a subtransaction; false (with a warning naming `what`)
/// when it raised.
fn stored(what: &str, run: impl FnOnce()) -> bool {
    stored_or(what, run).is_ok()
}

/// `stored`, with the error's code when it raised.
fn stored_or(what: &str, run: impl FnOnce()) -> Result<(), PgSqlErrorCode> {
    subxact::attempt(run).map_err(|e| {
        pgrx::warning!("mcp_auth ledger: {what} could not be stored: {}", e.message);
        e.code
    })
}

/// Writes usage entries (a JSON array) in one statement, linked into their
/// chains first when they are kept; their toasts, or the error's code when it raised.
fn write_usage(
    mut entries: serde_json::Value,
    schema: Schema,
    what: &str,
    known: &mut chain::Known,
) -> Result<Vec<String>, PgSqlErrorCode> {
    let chain = schema.chain && settings::audit_chain();
    let sql = usage_sql(schema, chain);
    let mut toasts = Vec::new();
    let mut moved = None;
    let result = stored_or(what, || {
        // In the subtransaction: an entry whose values cannot be linked fails alone.
        let mut linked = match entries.as_array_mut() {
            Some(entries) if chain => Some(chain::link(entries, known)),
            _ => None,
        };
        let entries = pgrx::JsonB(entries);
        let read = |t: pgrx::spi::SpiTupleTable| {
            toasts = t
                .filter_map(|r| r.get::<String>(1).ok().flatten())
                .collect();
        };
        match linked.as_mut() {
            Some((chains, links)) => {
                let numbers = std::mem::take(&mut links.numbers);
                let hashes = std::mem::take(&mut links.hashes);
                spi::run_sql(
                    sql,
                    &[JSONB, INT8_ARRAY, BYTEA],
                    true,
                    &[entries.into(), numbers.into(), hashes.into()],
                    read,
                );
                chain::write_new(chains);
            }
            None => spi::run_sql(sql, &[JSONB], true, &[entries.into()], read),
        }
        moved = linked.map(|(chains, _)| chains);
    });
    if let Some(chains) = moved.filter(|_| result.is_ok()) {
        known.moved(chains);
    }
    result.map(|()| toasts)
}

/// Sends the toasts as NOTIFY mcp_activity in the round's transaction, so they go
/// out exactly when their entries commit. Toasts are not a promise: while
/// PostgreSQL's notification queue is over half full (a listener that stopped
/// reading holds it back), they are dropped rather than risk the commit failing
/// on a full queue, which would fail the calls.
fn notify(toasts: &[String]) {
    if toasts.is_empty() {
        return;
    }
    let usage =
        unsafe { pgrx::direct_function_call::<f64>(pg_sys::pg_notification_queue_usage, &[]) };
    if usage.unwrap_or(1.0) > 0.5 {
        pgrx::warning!(
            "mcp_auth ledger: {} mcp_activity notifications dropped: the notification queue is over half full",
            toasts.len()
        );
        return;
    }
    for toast in toasts.iter().filter(|t| t.len() < 8000) {
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::pg_notify,
                &["mcp_activity".into_datum(), toast.as_str().into_datum()],
            );
        }
    }
}

/// Writes one entry of another kind than usage.
fn write_other(entry: &serde_json::Value, schema: Schema) -> bool {
    let kind = entry["kind"].as_str().unwrap_or("");
    match kind {
        "charge" if schema.charges => {
            let entry = pgrx::JsonB(entry.clone());
            stored("a charge", || spi::run(&CHARGE, &[entry.into()], |_| ()))
        }
        "charge" | "sync" => true,
        "counts" => {
            let rows = pgrx::JsonB(entry["rows"].clone());
            stored("validation counts", || {
                spi::run(&COUNTS, &[rows.into()], |_| ())
            })
        }
        _ => {
            pgrx::warning!("mcp_auth ledger: an entry of unknown kind {kind:?} was refused");
            false
        }
    }
}

/// Writes a round's entries: every usage entry in one statement (one each when
/// that fails, so that a bad entry fails alone), the others one by one. Returns
/// which were stored.
fn write_entries(batch: &[Taken], schema: Schema, known: &mut chain::Known) -> Vec<bool> {
    let entries: Vec<Option<serde_json::Value>> = batch
        .iter()
        .map(|t| {
            t.bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
        })
        .collect();
    let mut stored = vec![false; batch.len()];
    let usage: Vec<usize> = (0..batch.len())
        .filter(|&i| entries[i].as_ref().is_some_and(|e| e["kind"] == "usage"))
        .collect();
    let all =
        || serde_json::Value::Array(usage.iter().filter_map(|&i| entries[i].clone()).collect());
    let mut batch = if usage.is_empty() {
        Ok(Vec::new())
    } else {
        write_usage(all(), schema, "a batch of usage entries", known)
    };
    if matches!(batch, Err(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE)) {
        // A lock someone held for a moment (an ALTER, a purge): once more, whole.
        batch = write_usage(all(), schema, "a batch of usage entries", known);
    }
    match batch {
        Ok(toasts) => {
            usage.iter().for_each(|&i| stored[i] = true);
            notify(&toasts);
        }
        // A lock still held would make each entry wait for it again.
        Err(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE) => {}
        Err(_) => {
            for &i in &usage {
                let one = serde_json::Value::Array(entries[i].iter().cloned().collect());
                if let Ok(toasts) = write_usage(one, schema, "a usage entry", known) {
                    stored[i] = true;
                    notify(&toasts);
                }
            }
        }
    }
    for (i, entry) in entries.iter().enumerate() {
        if let Some(e) = entry.as_ref().filter(|e| e["kind"] != "usage") {
            stored[i] = write_other(e, schema);
        }
    }
    stored
}

fn write_counts(pending: &[counts::Pending]) -> bool {
    if pending.is_empty() {
        return true;
    }
    let rows: Vec<serde_json::Value> = pending
        .iter()
        .map(|p| {
            serde_json::json!({"key_id": p.key.to_string(), "tenant_id": p.tenant.to_string(),
                               "count": p.count, "last": p.last})
        })
        .collect();
    let rows = pgrx::JsonB(serde_json::Value::Array(rows));
    subxact::attempt(|| spi::run(&COUNTS, &[rows.into()], |_| ())).is_ok()
}

/// One round in one transaction. Returns what became of each entry, or None when
/// mcp_auth is not installed here (the writer then leaves).
fn round(
    batch: &[Taken],
    pending: &[counts::Pending],
    prune: bool,
    known_schema: &mut Option<(Schema, Instant)>,
    heads: &mut chain::Known,
    heads_asked: bool,
    catch_up: bool,
) -> Option<(Vec<bool>, bool)> {
    // A schema without the chains is looked up in every round: a database being
    // upgraded to them gets chained rows from its first round after the commit (an
    // unchained row dated after it would look inserted).
    let known = known_schema
        .filter(|(c, at)| c.chain && at.elapsed() < SCHEMA_RECHECK)
        .map(|(c, _)| c);
    let none = Schema {
        charges: false,
        chain: false,
    };
    // (An error in the transaction ends the writer, and what it knew with it.)
    let unwinds = std::panic::AssertUnwindSafe(&mut *heads);
    let (schema, outcome) = BackgroundWorker::transaction(move || {
        let heads = { unwinds }.0;
        if !spi::is_installed() {
            heads.aborted();
            return (none, None);
        }
        // Looked up again after SCHEMA_RECHECK, so an ALTER EXTENSION UPDATE is seen
        // within a second, without a catalog query in every round (once chained).
        let schema = known.unwrap_or_else(|| {
            spi::first(&SCHEMA, &[], |r| {
                Some(Schema {
                    charges: spi::col::<bool>(r, 1)?,
                    chain: spi::col::<bool>(r, 2)?,
                })
            })
            .unwrap_or(none)
        });
        let stored = write_entries(batch, schema, heads);
        let counted = write_counts(pending);
        if schema.chain && heads.due(heads_asked) {
            heads.write();
        }
        if schema.chain && catch_up {
            heads.catch_up();
        }
        if prune && schema.charges {
            let _ = subxact::attempt(|| spi::run(&PRUNE, &[], |_| ()));
            let _ = subxact::attempt(|| spi::run(&PRUNE_ADMINS, &[], |_| ()));
        }
        if !batch.is_empty() {
            // Calls come in: have the notifier worker keep the log partitions
            // ahead of them (it starts after this commit unless it runs).
            crate::audit::notifier::queued();
        }
        (schema, Some((stored, counted)))
    });
    if outcome.is_some() {
        heads.committed();
    }
    if known.is_none() {
        *known_schema = Some((schema, Instant::now()));
    }
    outcome
}

fn db_of(arg: pg_sys::Datum) -> u32 {
    arg.value() as u32
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, arg: pg_sys::Datum) {
    if let Some(c) = queue::channel_of(db_of(arg)) {
        let _ = c
            .worker_pid
            .compare_exchange(unsafe { pg_sys::MyProcPid }, 0, SeqCst, SeqCst);
    }
}

/// Claims `db`'s channel for this process; false when another writer has it.
fn claim(db: u32) -> bool {
    let Some(c) = queue::channel_of(db) else {
        return false;
    };
    let me = unsafe { pg_sys::MyProcPid };
    if c.worker_pid
        .compare_exchange(0, me, SeqCst, SeqCst)
        .is_err()
    {
        return false;
    }
    c.worker_latch
        .store(unsafe { pg_sys::MyLatch } as usize, SeqCst);
    true
}

/// Lets the channel go; false when work arrived meanwhile and the channel was
/// claimed again (the writer goes on).
fn leave(db: u32) -> bool {
    let me = unsafe { pg_sys::MyProcPid };
    if let Some(c) = queue::channel_of(db) {
        let _ = c.worker_pid.compare_exchange(me, 0, SeqCst, SeqCst);
    }
    // A backend that saw this writer alive may have queued just before: look once more.
    let waiting = (0..queue::slots()).any(|i| {
        let s = queue::slot(i);
        s.db() == db && queue::state(s.word()) == queue::SUBMITTED
    }) || counts::any(db);
    !(waiting && claim(db))
}

/// The writer: `arg` is the database's oid.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn mcp_auth_ledger_main(arg: pg_sys::Datum) {
    // No role can make the writer wait on a row of its (no foreign key leads to one,
    // and no one else may lock its rows); a table lock someone holds makes the
    // entries that need it fail after a second, not every tenant's queue wait.
    let db = crate::workers::attach(arg, Some(c"1s"));
    if !claim(db) {
        return;
    }
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), arg) };
    // Entries a writer that died had taken were not committed: take them again.
    for i in 0..queue::slots() {
        let s = queue::slot(i);
        let word = s.word();
        if s.db() == db && queue::state(word) == queue::TAKEN {
            s.release(word >> 3);
        }
    }
    let (mut idle_since, mut pruned) = (Instant::now(), Instant::now());
    // The counts table is scanned only when something was added since the last scan
    // (or a failed write put counts back).
    let mut counted_at = None;
    let mut schema = None;
    let channel = queue::channel_of(db).expect("claimed above");
    let mut heads = chain::Known::new(channel.heads_recorded.swap(false, SeqCst));
    // Under a steady stream of calls the counts go in every COUNTS_EVERY, not in every
    // round: one statement fewer per commit. A lone call's count goes with its entry,
    // and a sync entry (mcp_ledger_sync) takes every count queued before it.
    let (mut busy, mut counts_flushed) = (false, Instant::now());
    loop {
        if BackgroundWorker::sigterm_received() {
            // Shut down (or told to leave): the heads first, if the table is behind;
            // what is queued waits for the next writer.
            if heads.due(true) {
                let _ = round(&[], &[], false, &mut schema, &mut heads, true, false);
            }
            channel.heads_recorded.store(heads.all_recorded(), SeqCst);
            return;
        }
        if BackgroundWorker::sighup_received() {
            // mcp_auth.audit_chain is read from the server's configuration.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let batch = collect(db);
        let adds = counts::generation();
        let due = !busy
            || batch.is_empty()
            || counts_flushed.elapsed() >= COUNTS_EVERY
            || batch.iter().any(is_sync);
        let pending = if counted_at == Some(adds) || !due {
            Vec::new()
        } else {
            counted_at = Some(adds);
            counts_flushed = Instant::now();
            counts::take(db)
        };
        busy = !batch.is_empty();
        let prune = pruned.elapsed() >= PRUNE_EVERY;
        // The heads table is brought up to date when a sync entry asks, HEADS_EVERY
        // after it fell behind, and before the writer leaves.
        let heads_asked = batch.iter().any(is_sync) || idle_since.elapsed() >= IDLE_AFTER;
        let write_heads = heads.due(heads_asked);
        if batch.is_empty() && pending.is_empty() && !prune && !write_heads {
            if idle_since.elapsed() >= IDLE_AFTER && heads.must_catch_up() {
                // After a writer that ended without recording its heads, this one
                // brings them all up to date before it says they are.
                let _ = round(&[], &[], false, &mut schema, &mut heads, true, true);
                if heads.must_catch_up() {
                    // (It could not: the next writer will search as this one did.)
                    if leave(db) {
                        return;
                    }
                    channel.heads_recorded.store(false, SeqCst);
                }
                continue;
            }
            if idle_since.elapsed() >= IDLE_AFTER {
                // (Said before the channel is let go: the next writer reads it.)
                channel.heads_recorded.store(heads.all_recorded(), SeqCst);
                if leave(db) {
                    return;
                }
                channel.heads_recorded.store(false, SeqCst);
            }
            // (On SIGTERM it returns at once: the loop's top handles it.)
            BackgroundWorker::wait_latch(Some(Duration::from_millis(200)));
            continue;
        }
        let Some((stored, counted)) = round(
            &batch,
            &pending,
            prune,
            &mut schema,
            &mut heads,
            heads_asked,
            false,
        ) else {
            for t in &batch {
                queue::slot(t.slot).finish(t.generation, queue::FAILED);
            }
            return; // mcp_auth is not installed in this database
        };
        for (t, ok) in batch.iter().zip(stored) {
            let outcome = if ok { queue::DONE } else { queue::FAILED };
            queue::slot(t.slot).finish(t.generation, outcome);
        }
        if !counted {
            counts::restore(db, &pending);
            counted_at = None;
            // Not straight back to a write that just failed (the server log says why).
            BackgroundWorker::wait_latch(Some(Duration::from_millis(500)));
        }
        if prune {
            pruned = Instant::now();
        }
        if !batch.is_empty() || !pending.is_empty() {
            idle_since = Instant::now();
        }
    }
}
