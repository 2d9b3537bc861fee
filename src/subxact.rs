//! Runs code in an internal subtransaction, as PL/pgSQL runs an exception block:
//! an error rolls back what the code did and comes back as a value, so the caller
//! goes on in its transaction.

use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

/// An error caught in a subtransaction.
pub struct Raised {
    pub code: PgSqlErrorCode,
    pub message: String,
}

/// Runs `body` in a subtransaction; then `keep` decides, from its result, whether
/// the subtransaction commits (an error always rolls it back).
pub fn run<R>(body: impl FnOnce() -> R, keep: impl FnOnce(&R) -> bool) -> Result<R, Raised> {
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let body = std::panic::AssertUnwindSafe(body);
        let result = PgTryBuilder::new(move || {
            let body = body; // the whole wrapper, not its field
            Ok((body.0)())
        })
        .catch_others(|e| {
            let report = match &e {
                CaughtError::PostgresError(r)
                | CaughtError::ErrorReport(r)
                | CaughtError::RustPanic { ereport: r, .. } => r,
            };
            Err(Raised {
                code: report.sql_error_code(),
                message: report.message().to_string(),
            })
        })
        .execute();
        pg_sys::MemoryContextSwitchTo(context);
        if matches!(&result, Ok(r) if keep(r)) {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        result
    }
}

/// Runs `body` in a subtransaction that commits unless it raised.
pub fn attempt<R>(body: impl FnOnce() -> R) -> Result<R, Raised> {
    run(body, |_| true)
}
