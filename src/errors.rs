//! Errors raised to SQL callers. Every message names the field and the rule it broke;
//! authentication failures all read the same, so they reveal nothing.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::fmt::Display;

/// The one client-facing message for every key that does not authenticate (the
/// envelope's, so SQL errors and MCP answers say the same).
pub use mcp_auth_core::envelope::INVALID_KEY;

fn raise(code: PgSqlErrorCode, message: String, hint: Option<String>) -> ! {
    let mut report = ErrorReport::new(code, message, "mcp_auth");
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn invalid_key() -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        INVALID_KEY.into(),
        None,
    )
}

/// A parameter broke a rule: `p_environment: must be 'live' or 'test' (got "prod")`.
pub fn bad_param(field: &str, rule: impl Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("{field}: {rule}"),
        None,
    )
}

pub fn required(field: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        format!("{field}: must not be null"),
        None,
    )
}

pub fn denied(message: impl Display, hint: Option<&str>) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message.to_string(),
        hint.map(str::to_string),
    )
}

pub fn no_such_key(field: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
        format!("{field}: no such key for this tenant"),
        None,
    )
}

pub fn wrong_state(message: impl Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        message.to_string(),
        None,
    )
}

pub fn duplicate(field: &str, rule: impl Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
        format!("{field}: {rule}"),
        None,
    )
}

/// Something that cannot happen unless mcp_auth itself is broken (or not installed
/// in this database): reported as an internal error, with what was going on.
pub fn internal(what: impl Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("mcp_auth internal error: {what}"),
        None,
    )
}

/// The extension is not installed in the database this backend is connected to.
pub fn not_installed() -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        "extension mcp_auth is not installed in this database".into(),
        Some("CREATE EXTENSION mcp_auth".into()),
    )
}

/// The library was loaded on demand instead of at server start.
pub fn not_preloaded() -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "mcp_auth must be loaded by shared_preload_libraries".into(),
        Some(
            "Add mcp_auth to shared_preload_libraries in postgresql.conf \
             (shared_preload_libraries = 'mcp_auth') and restart PostgreSQL: \
             its audit ledger and rate limiter live in shared memory."
                .into(),
        ),
    )
}

/// Unwraps an SPI result; an SPI failure is a bug of ours, reported as such.
pub fn spi<T>(result: pgrx::spi::Result<T>) -> T {
    result.unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("mcp_auth internal query failed: {e}"),
            None,
        )
    })
}
