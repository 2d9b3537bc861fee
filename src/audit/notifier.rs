//! Delivers `NOTIFY mcp_activity` toasts left in `mcp_activity_outbox`, and keeps the
//! logs' day partitions (below).
//!
//! PostgreSQL holds a database-wide lock from a notifying transaction's pre-commit
//! until its commit record is flushed, so transactions that NOTIFY cannot share a
//! WAL flush. Before 2.3.0 every logged call queued its toast in the unlogged
//! `mcp_activity_outbox`, and this worker notified them in batches. Since 2.3.0 the
//! ledger's writer (ledger/writer.rs) notifies in its own batched commits, one
//! process per database, so nothing new is queued here; the worker still sends what
//! an earlier version left queued.
//!
//! Exactly once: a row is deleted in the transaction that notifies it (a second
//! worker's DELETE waits for the first and finds the row gone), and the worker only
//! skips rows of transactions that ended before its previous delivery's snapshot,
//! all of which that delivery saw.
//!
//! Never stranded: the worker holds a session lock (in the extension's own lock
//! space, which no SQL can take, so no role can stop notifications) while it runs; after
//! every commit that queued a row (and every round of the ledger's writer) the
//! committing process tries that lock and, when it is free,
//! starts a worker (dynamic, so no `shared_preload_libraries` is needed; not again
//! for STARTUP_GRACE, so a burst of commits starts at most one worker per backend,
//! and the extras exit at once). A worker idle for IDLE_AFTER (nothing to send, and
//! no ledger writer in its database) lets the lock go,
//! drains once more and exits, so whichever comes later, that drain or the
//! backend's check, covers the row. An idle database keeps no worker (DROP DATABASE
//! waits for connected sessions).
//!
//! The worker also keeps the logs' day partitions ahead of the calls: it runs
//! `maintain_mcp_log_partitions` when it starts and hourly while it runs, so the
//! partitions exist whenever calls come in, without a scheduler. And it drops the
//! partitions a purge detached, within a second (a purge starts a worker when none
//! runs): the file system's release of their files, about a second per gigabyte
//! here, is then not the purging caller's wait. With the hourly maintenance it
//! writes a checkpoint of the audit chains' heads, when the last is an hour old.

use super::{chain, partitions};
use crate::locks;
use crate::spi::{self, Statement};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;
use std::cell::Cell;
use std::time::{Duration, Instant};

// Only what an earlier version left in the outbox is delivered from here: no hurry.
const POLL: Duration = Duration::from_millis(100);
const IDLE_AFTER: Duration = Duration::from_secs(1);
const BATCH: i64 = 5000;
const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);
const DROP_PURGED_EVERY: Duration = Duration::from_secs(1);

/// After starting a worker, a backend leaves it this long to take its lock before
/// checking again; without it, every commit in the worker's first milliseconds would
/// start another one.
const STARTUP_GRACE: Duration = Duration::from_millis(500);

thread_local! {
    /// This transaction queued a notification.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    /// When this backend last started a worker, or failed to.
    static LAST_START: Cell<Option<Instant>> = const { Cell::new(None) };
}

pub fn init() {
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut()) };
}

/// Called by the statement that queues a notification.
pub fn queued() {
    QUEUED.with(|q| q.set(true));
}

/// Starts this database's worker after the commit, unless one is running: a purge
/// calls it so that the worker drops the partitions it detached (a running worker
/// finds them within DROP_PURGED_EVERY).
#[pg_extern(volatile)]
fn mcp_wake_notifier() {
    queued();
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        // After the commit, so a worker that is just leaving has either seen the row
        // in its last drain or released the lock this check takes.
        XACT_EVENT_COMMIT if QUEUED.with(|q| q.replace(false)) => ensure_worker(),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => {
            QUEUED.with(|q| q.set(false))
        }
        _ => {}
    }
}

fn worker_lock(db: pg_sys::Oid) -> pg_sys::LOCKTAG {
    locks::tag(db, locks::Purpose::Notifier, 0)
}

/// Takes the worker lock for the session without waiting; false when it is held.
/// Never raises (a full lock table also answers false): a backend calls this from
/// its commit callback, where an error could no longer be reported as an abort.
fn try_session_lock(mode: u32) -> bool {
    let tag = worker_lock(unsafe { pg_sys::MyDatabaseId });
    let got = unsafe {
        pg_sys::LockAcquireExtended(&tag, mode as i32, true, true, false, std::ptr::null_mut())
    };
    got != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

fn release_session_lock(mode: u32) {
    let tag = worker_lock(unsafe { pg_sys::MyDatabaseId });
    unsafe { pg_sys::LockRelease(&tag, mode as i32, true) };
}

/// Starts this database's worker unless one is running (or this backend started
/// one within STARTUP_GRACE).
fn ensure_worker() {
    if LAST_START.with(|t| t.get().is_some_and(|t| t.elapsed() < STARTUP_GRACE)) {
        return;
    }
    if !try_session_lock(pg_sys::ShareLock) {
        return; // a worker holds it
    }
    release_session_lock(pg_sys::ShareLock);
    LAST_START.with(|t| t.set(Some(Instant::now())));
    let started = crate::workers::start(
        "mcp_auth notifier",
        "mcp_auth_notifier_main",
        unsafe { pg_sys::MyDatabaseId }.to_u32(),
    );
    if !started {
        // Server log only: the client's commit succeeded, and the rows wait in
        // mcp_activity_outbox for the next worker that starts.
        pgrx::log!(
            "mcp_auth: could not start the notifier worker (no free background worker slot, \
             see max_worker_processes); mcp_activity notifications stay queued until one starts"
        );
    }
}

// Once everything visible now is sent, no row below the returned xmin can appear later.
const DELIVER: Statement = Statement {
    sql: include_str!("../../sql/queries/notifier_deliver.sql"),
    args: &[spi::INT8, spi::INT8],
    writes: true,
};

/// What one delivery did.
struct Delivered {
    sent: i64,
    /// The xid the next delivery may start from.
    from: i64,
}

/// One transaction: sends what is queued from xid `from` on, or None when the
/// extension is not (or no longer) installed.
fn deliver(from: i64) -> Option<Delivered> {
    BackgroundWorker::transaction(|| {
        if !spi::is_installed() {
            return None;
        }
        let (sent, xmin) = spi::run(&DELIVER, &[BATCH.into(), from.into()], |t| {
            let r = t.first();
            (
                spi::col::<i64>(&r, 1).unwrap_or(0),
                spi::col::<i64>(&r, 2).unwrap_or(from),
            )
        });
        // A full batch may have left visible rows behind: start there again.
        let from = if sent == BATCH { from } else { xmin.max(from) };
        Some(Delivered { sent, from })
    })
}

/// The worker: `arg` is the database's oid.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn mcp_auth_notifier_main(arg: pg_sys::Datum) {
    let db = crate::workers::attach(arg, None);
    if !try_session_lock(pg_sys::ExclusiveLock) {
        return; // another worker serves this database
    }
    let idle_rounds = (IDLE_AFTER.as_millis() / POLL.as_millis()) as u32;
    let (mut idle, mut from) = (0, 0);
    let (mut maintained, mut dropped): (Option<Instant>, Instant) = (None, Instant::now());
    loop {
        if maintained.is_none_or(|t| t.elapsed() >= MAINTAIN_EVERY) {
            if !partitions::maintain() || !chain::checkpoint_if_due() {
                return;
            }
            (maintained, dropped) = (Some(Instant::now()), Instant::now());
        } else if dropped.elapsed() >= DROP_PURGED_EVERY {
            if !partitions::drop_purged() {
                return;
            }
            dropped = Instant::now();
        }
        let Some(d) = deliver(from) else { return };
        from = d.from;
        // While the ledger's writer serves the database, calls are coming in: the
        // worker stays (keeping the partitions hourly) rather than leave and be
        // started again, with a maintenance run, by the writer's next round.
        let busy = d.sent > 0 || crate::ledger::writer_running(db);
        idle = if busy { 0 } else { idle + 1 };
        if idle >= idle_rounds {
            release_session_lock(pg_sys::ExclusiveLock);
            // Rows committed before a backend saw the lock held are visible now, and
            // so are the partitions a purge detached before then.
            if !partitions::drop_purged() {
                return;
            }
            match deliver(from) {
                None => return,
                Some(d) if d.sent == 0 => return,
                Some(_) if !try_session_lock(pg_sys::ExclusiveLock) => return,
                Some(d) => (idle, from) = (0, d.from),
            }
        }
        if !BackgroundWorker::wait_latch(Some(POLL)) {
            return; // SIGTERM: the server is stopping
        }
    }
}
