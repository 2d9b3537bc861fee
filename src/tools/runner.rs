//! Runs a tool handler the way PL/pgSQL runs an exception block: in a subtransaction
//! (so a failing handler's writes are rolled back while the caller goes on to audit
//! the failure), and as the role mcp_tool_runner, which row-level security applies
//! to: the handler sees and changes only the key's tenant, whatever SQL it runs.
//! Its writes stay in the caller's transaction only once the call is audited.

use crate::jsonb_datum::JsonbDatum;
use crate::spi;
use crate::subxact::{self, Raised};
use mcp_auth_core::envelope::ErrorKind;
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
    /// The handler returned, but `keep` refused its result (the call could not be
    /// audited): whatever it did is undone.
    Withheld,
}

/// Whether `code` is of class 22 (data exception).
pub fn is_data_exception(code: PgSqlErrorCode) -> bool {
    (code as i32) & 0xfff == (PgSqlErrorCode::ERRCODE_DATA_EXCEPTION as i32) & 0xfff
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
/// mcp_tool_runner. When the handler returned, `keep` (given the envelope) decides
/// whether its writes stay in the caller's transaction: call_tool keeps them only
/// once the call's audit entry is durable.
pub fn run(handler: &str, args: JsonbDatum, keep: impl FnOnce(&JsonbDatum) -> bool) -> Outcome {
    let sql = format!("SELECT pg_catalog.jsonb_build_object('ok', true, 'result', {handler}($1))");
    let runner = runner_role();
    let (mut user, mut security) = (pg_sys::InvalidOid, 0);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut security) };
    let as_caller = || unsafe { pg_sys::SetUserIdAndSecContext(user, security) };
    let mut kept = true;
    let result = subxact::run(
        || {
            unsafe {
                pg_sys::SetUserIdAndSecContext(
                    runner,
                    security
                        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
                )
            };
            let envelope = spi::run_handler(&sql, args.into_datum().expect("jsonb"));
            as_caller();
            envelope.expect("jsonb_build_object returns a row")
        },
        |envelope| {
            kept = keep(envelope);
            kept
        },
    );
    as_caller();
    match result {
        Ok(envelope) if kept => Outcome::Done(envelope),
        Ok(_) => Outcome::Withheld,
        Err(Raised { code, message }) => Outcome::Raised { code, message },
    }
}
