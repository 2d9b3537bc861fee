//! Runs code in an internal subtransaction, as PL/pgSQL runs an exception block:
//! an error rolls back what the code did and comes back as a value, so the caller
//! goes on in its transaction.

use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;

/// An error caught in a subtransaction.
pub struct Raised {
    pub code: PgSqlErrorCode,
    pub message: String,
}

enum Caught {
    /// `body` raised: handed back as a value.
    Raised(Raised),
    /// `keep` raised (a cancel or a timeout while it waited): re-raised once the
    /// subtransaction is gone, so the statement ends as the caller asked.
    Rethrow(Box<CaughtError>),
}

/// Runs `body` in a subtransaction; then `keep` decides, from its result, whether
/// the subtransaction commits (an error always rolls it back). Whatever raises,
/// the subtransaction is closed before this returns or the error goes on: one left
/// open would leave even an autocommit session in an aborted transaction.
pub fn run<R>(body: impl FnOnce() -> R, keep: impl FnOnce(&R) -> bool) -> Result<R, Raised> {
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let in_keep = Cell::new(false);
        let work = AssertUnwindSafe((body, keep, &in_keep));
        let in_keep_seen = AssertUnwindSafe(&in_keep);
        let result = PgTryBuilder::new(move || {
            let work = work; // the whole wrapper, not its fields
            let (body, keep, in_keep) = work.0;
            let r = body();
            in_keep.set(true);
            let kept = keep(&r);
            Ok((r, kept))
        })
        .catch_others(|e| {
            let in_keep = &in_keep_seen;
            if in_keep.0.get() {
                return Err(Caught::Rethrow(Box::new(e)));
            }
            let report = match &e {
                CaughtError::PostgresError(r)
                | CaughtError::ErrorReport(r)
                | CaughtError::RustPanic { ereport: r, .. } => r,
            };
            Err(Caught::Raised(Raised {
                code: report.sql_error_code(),
                message: report.message().to_string(),
            }))
        })
        .execute();
        pg_sys::MemoryContextSwitchTo(context);
        if matches!(&result, Ok((_, true))) {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        match result {
            Ok((r, _)) => Ok(r),
            Err(Caught::Raised(raised)) => Err(raised),
            Err(Caught::Rethrow(e)) => e.rethrow(),
        }
    }
}

/// Runs `body` in a subtransaction that commits unless it raised.
pub fn attempt<R>(body: impl FnOnce() -> R) -> Result<R, Raised> {
    run(body, |_| true)
}
