//! The ledger: audit entries and rate-limit charges made durable by a writer of
//! their own, before the call that made them returns.
//!
//! A caller's transaction can be undone after its result was seen (a failing cast,
//! a cursor, a suspended portal, a disconnect), so nothing that must survive the
//! call may be written in it. Instead a backend hands its entry to its database's
//! writer, a background worker (`writer`), through shared memory (`queue`), and
//! waits until the writer's transaction that holds it has committed (flushed as
//! `synchronous_commit` says). The writer commits whatever is queued in one
//! transaction, so concurrent calls share a commit (group commit), and a read-only
//! call's own transaction writes nothing at all.
//!
//! Fails closed: when no writer makes the entry durable within
//! `mcp_auth.ledger_timeout`, `write` says so and the caller answers with an error
//! instead of a result. Validation counts (`usage_count`, `last_used_at`) are not a
//! promise to anyone, so they are summed in shared memory (`counts`) and written
//! by the writer with its next batch, without the validating backend waiting.

pub mod chain;
pub mod counts;
pub mod queue;
pub mod writer;

use crate::settings;
use pgrx::prelude::*;
use queue::{state, DONE, EMPTY, FAILED, SUBMITTED, TAKEN};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// Why an entry is not durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// No writer committed it in time (none could start, or it is stuck).
    Timeout,
    /// The writer could not store it (the error is in the server log).
    Refused,
}

impl Down {
    pub fn message(self) -> &'static str {
        match self {
            Down::Timeout => {
                "the audit ledger did not confirm this call in time (mcp_auth.ledger_timeout); \
                 nothing was returned"
            }
            Down::Refused => {
                "the audit ledger could not store this call (see the server log); nothing was returned"
            }
        }
    }
}

/// A writer is asked for again after this long without one.
const RESTART_AFTER_US: i64 = 100_000;
/// How often a waiting backend looks whether its database still has a writer.
const RECHECK: Duration = Duration::from_millis(20);

fn db() -> u32 {
    unsafe { pg_sys::MyDatabaseId.to_u32() }
}

/// Wakes `db`'s writer, asking the postmaster for one when there is none.
pub fn wake(db: u32) {
    let Some(channel) = queue::channel_of(db) else {
        return; // every channel is busy: the wait times out and the call fails closed
    };
    if channel.worker_pid.load(SeqCst) != 0 {
        let latch = channel.worker_latch.load(SeqCst);
        if latch != 0 {
            unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
        }
        return;
    }
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let last = channel.started_at.load(SeqCst);
    if now - last < RESTART_AFTER_US
        || channel
            .started_at
            .compare_exchange(last, now, SeqCst, SeqCst)
            .is_err()
    {
        return;
    }
    writer::start(db);
}

/// Waits until `done` says the slot has moved on, or `deadline` passes; looks
/// after the writer meanwhile. Raises on a query cancel or statement timeout.
fn wait_for(db: u32, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut checked = Instant::now();
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                RECHECK.as_millis() as _,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
            pg_sys::check_for_interrupts!();
        }
        if checked.elapsed() >= RECHECK {
            wake(db);
            checked = Instant::now();
        }
    }
}

/// Makes `entry` durable through the writer, waiting for its commit.
pub fn write(entry: &serde_json::Value) -> Result<(), Down> {
    let Some(slot) = queue::my_slot() else {
        return Err(Down::Refused);
    };
    let db = db();
    let deadline = Instant::now() + settings::ledger_timeout();
    // An entry this backend left behind (its wait was cancelled) goes first.
    let free = wait_for(db, deadline, || {
        !matches!(state(slot.word()), SUBMITTED | TAKEN)
    });
    if !free {
        let word = slot.word();
        if state(word) == TAKEN || !slot.advance(word >> 3, SUBMITTED, EMPTY) {
            return Err(Down::Timeout);
        }
    }
    let bytes = serde_json::to_vec(entry).expect("a JSON value serialises");
    let segment = (bytes.len() > queue::INLINE).then(|| unsafe {
        let seg = pg_sys::dsm_create(bytes.len(), 0);
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            pg_sys::dsm_segment_address(seg) as *mut u8,
            bytes.len(),
        );
        seg
    });
    let handle = segment.map_or(0, |s| unsafe { pg_sys::dsm_segment_handle(s) });
    let generation = slot.submit(db, &bytes, handle);
    wake(db);
    let mut outcome = EMPTY;
    let finished = wait_for(db, deadline, || {
        let word = slot.word();
        outcome = state(word);
        word >> 3 != generation || matches!(outcome, DONE | FAILED)
    });
    let result = if !finished {
        // Not taken yet: withdraw it. Taken: it may still commit, which only
        // over-reports a call that returned no result.
        slot.advance(generation, SUBMITTED, EMPTY);
        Err(Down::Timeout)
    } else if slot.advance(generation, outcome, EMPTY) && outcome == DONE {
        Ok(())
    } else {
        Err(Down::Refused)
    };
    if let Some(seg) = segment {
        // Only once the writer has copied it (or it was withdrawn).
        if state(slot.word()) != TAKEN {
            unsafe { pg_sys::dsm_detach(seg) };
        }
    }
    result
}

/// Whether this database's ledger is stuck: an entry has waited longer than
/// `mcp_auth.ledger_timeout`. A call then runs nothing and fails at once.
pub fn stalled() -> Option<Down> {
    if !available() {
        return Some(Down::Refused);
    }
    let db = db();
    let limit = settings::ledger_timeout().as_micros() as i64;
    let now = now_us();
    let stuck = (0..queue::slots()).any(|i| {
        let s = queue::slot(i);
        s.db() == db && matches!(state(s.word()), SUBMITTED | TAKEN) && now - s.since() > limit
    });
    stuck.then_some(Down::Timeout)
}

/// Microseconds since 2000-01-01 UTC, PostgreSQL's clock: the time entries carry.
pub fn now_us() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// The top-level transaction's id when it has one (it wrote something), as the
/// text of an xid8; None for a transaction that wrote nothing.
pub fn xact_id() -> Option<String> {
    let id = unsafe { pg_sys::GetTopFullTransactionIdIfAny() };
    (id.value != 0).then(|| id.value.to_string())
}

/// Counts one validation of a key: in shared memory, written by the writer with
/// its next batch; when that table is full, through the queue like any entry.
pub fn count_validation(key: &pgrx::Uuid, tenant: &pgrx::Uuid) {
    let db = db();
    let at = now_us();
    if counts::add(db, key, tenant, 1, at) {
        wake(db);
        return;
    }
    let rows = serde_json::json!([{"key_id": key.to_string(), "tenant_id": tenant.to_string(),
                                   "count": 1, "last": at}]);
    if let Err(down) = write(&serde_json::json!({"kind": "counts", "rows": rows})) {
        crate::errors::internal(down.message());
    }
}

/// Whether `db` has a ledger writer now (calls are coming in).
pub fn writer_running(db: u32) -> bool {
    available()
        && queue::channels()
            .iter()
            .any(|c| c.db.load(SeqCst) == db && c.worker_pid.load(SeqCst) != 0)
}

/// Whether the ledger can work in this process at all.
pub fn available() -> bool {
    crate::shmem::ready()
}

/// Waits until everything this database queued before the call (entries and
/// validation counts) is durable: `usage_count` is written by the writer shortly
/// after a validation, and this is how a reader that must see it waits for it.
#[pg_extern(volatile)]
fn mcp_ledger_sync() {
    if let Err(down) = write(&serde_json::json!({"kind": "sync"})) {
        crate::errors::internal(down.message());
    }
}
