//! Runs a tool handler the way PL/pgSQL runs an exception block: in a subtransaction
//! (so a failing handler's writes are rolled back while the caller goes on to audit
//! the failure), and as the role mcp_tool_runner, which row-level security applies
//! to: the handler sees and changes only the key's tenant, whatever SQL it runs.
//! The rate limit is decided after the handler, still inside its subtransaction, so
//! a refused call leaves none of its writes.

use crate::jsonb_datum::JsonbDatum;
use crate::rate_limit::Decision;
use crate::spi::{self, JSONB};
use mcp_auth_core::envelope::ErrorKind;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

/// How a handler ended.
pub enum Outcome {
    /// The success envelope `{"ok": true, "result": <the handler's jsonb>}`, built
    /// by PostgreSQL so that the result never passes through text.
    Done(JsonbDatum),
    /// The handler raised: its error code and message.
    Raised {
        code: PgSqlErrorCode,
        message: String,
    },
    /// The rate limit refused the call; whatever the handler did is undone.
    Refused(Decision),
}

/// What a handler's error code means to a client.
pub fn classify(code: PgSqlErrorCode) -> ErrorKind {
    use PgSqlErrorCode::*;
    // The class of a code (its first two characters) is its low 12 bits.
    let class = |c: PgSqlErrorCode| (c as i32) & 0xfff;
    match code {
        ERRCODE_NO_DATA_FOUND => ErrorKind::NotFound,
        ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE => ErrorKind::InvalidState,
        ERRCODE_INSUFFICIENT_PRIVILEGE => ErrorKind::Permission,
        c if class(c) == class(ERRCODE_DATA_EXCEPTION)
            || class(c) == class(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION) =>
        {
            ErrorKind::Validation
        }
        _ => ErrorKind::Internal,
    }
}

fn runner_role() -> pg_sys::Oid {
    unsafe { pg_sys::get_role_oid(c"mcp_tool_runner".as_ptr(), false) }
}

/// The five-character SQLSTATE of `code`.
pub fn sqlstate(code: PgSqlErrorCode) -> String {
    unsafe {
        let p = pg_sys::unpack_sql_state(code as i32);
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Calls `handler(args)` (a qualified function name) in a subtransaction as
/// mcp_tool_runner, then `decide`s as the caller again; the subtransaction is
/// committed only when the handler returned and the call is allowed. Every call is
/// decided, and so counted against the limit, whether its handler returned or failed.
pub fn run(handler: &str, args: JsonbDatum, decide: impl FnOnce() -> Decision) -> Outcome {
    let sql = format!("SELECT pg_catalog.jsonb_build_object('ok', true, 'result', {handler}($1))");
    let runner = runner_role();
    unsafe {
        let caller_context = pg_sys::CurrentMemoryContext;
        let caller_owner = pg_sys::CurrentResourceOwner;
        let (mut user, mut security) = (pg_sys::InvalidOid, 0);
        pg_sys::GetUserIdAndSecContext(&mut user, &mut security);

        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(caller_context);
        pg_sys::SetUserIdAndSecContext(
            runner,
            security
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let outcome = PgTryBuilder::new(|| {
            let envelope: Option<JsonbDatum> =
                spi::run_sql(&sql, &[JSONB], true, &[args.into()], |t| {
                    if t.is_empty() {
                        None
                    } else {
                        spi::col(&t.first(), 1)
                    }
                });
            Outcome::Done(envelope.expect("jsonb_build_object returns a row"))
        })
        .catch_others(|e| {
            let report = match &e {
                CaughtError::PostgresError(r)
                | CaughtError::ErrorReport(r)
                | CaughtError::RustPanic { ereport: r, .. } => r,
            };
            Outcome::Raised {
                code: report.sql_error_code(),
                message: report.message().to_string(),
            }
        })
        .execute();

        pg_sys::SetUserIdAndSecContext(user, security);
        pg_sys::MemoryContextSwitchTo(caller_context);
        let leave = |keep: bool| {
            if keep {
                pg_sys::ReleaseCurrentSubTransaction();
            } else {
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
            }
            pg_sys::MemoryContextSwitchTo(caller_context);
            pg_sys::CurrentResourceOwner = caller_owner;
        };
        match outcome {
            // Decided inside the subtransaction, so that a refusal takes the handler's
            // writes back with it; an allowed call's record (and its turn on the key)
            // passes to the caller's transaction.
            Outcome::Done(envelope) => {
                let decision = decide();
                leave(decision.allowed);
                if decision.allowed {
                    Outcome::Done(envelope)
                } else {
                    Outcome::Refused(decision)
                }
            }
            // A failed call counts too: its writes go first, then it is decided in the
            // caller's transaction, where the record stays.
            raised => {
                leave(false);
                let decision = decide();
                if decision.allowed {
                    raised
                } else {
                    Outcome::Refused(decision)
                }
            }
        }
    }
}
