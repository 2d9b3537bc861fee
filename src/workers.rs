//! What the extension's background workers (the notifier, the ledger's writer)
//! share: how one is started for a database, and how it attaches to it.

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;
use std::ffi::CStr;

/// Asks the postmaster for the worker `name` (its entry point `function` in this
/// library) serving database `db`. Never raises: false when no slot was free.
pub fn start(name: &str, function: &str, db: u32) -> bool {
    BackgroundWorkerBuilder::new(name)
        .set_type(name)
        .set_library("mcp_auth")
        .set_function(function)
        .set_argument(Some(pg_sys::Datum::from(db)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load_dynamic()
        .is_ok()
}

/// Sets `name` to `value` for this worker's whole life.
fn set(name: &CStr, value: &CStr) {
    unsafe {
        pg_sys::SetConfigOption(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
}

/// Attaches a worker to the database `arg` names (its oid), as the bootstrap
/// superuser resolving names in pg_catalog only, whatever the database's default
/// search_path holds; `lock_timeout`, when given, bounds every lock it waits for.
/// Returns the database's oid.
pub fn attach(arg: pg_sys::Datum, lock_timeout: Option<&CStr>) -> u32 {
    let db = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), None);
    set(c"search_path", c"pg_catalog, pg_temp");
    if let Some(timeout) = lock_timeout {
        set(c"lock_timeout", timeout);
    }
    db
}
