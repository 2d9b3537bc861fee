//! The extension's shared memory: the ledger's queue and the rate limiter's windows.
//!
//! Both live in fixed regions the postmaster allocates at start, which is why
//! mcp_auth must be in `shared_preload_libraries` (as pgaudit, pg_cron and
//! timescaledb must). Each region is plain memory of atomics and fixed arrays, so a
//! region is valid at the same address in every backend (they are forked from the
//! postmaster) and needs no pointers inside it. Two LWLocks of the tranche
//! `mcp_auth` guard what atomics cannot: the limiter's windows, and the ledger's
//! validation counts.

use pgrx::prelude::*;
use std::ffi::CStr;

const TRANCHE: &CStr = c"mcp_auth";

/// The LWLocks of the tranche, by purpose.
#[derive(Clone, Copy)]
pub enum Lock {
    Windows = 0,
    Counts = 1,
}
const LOCKS: i32 = 2;

/// A region: its name in `ShmemIndex`, its size, and what to do with its address
/// (`fresh` when this call allocated it, so it must be initialised).
pub struct Region {
    pub name: &'static CStr,
    pub size: fn() -> usize,
    pub attach: unsafe fn(base: *mut u8, fresh: bool),
}

static REGIONS: std::sync::OnceLock<&'static [&'static Region]> = std::sync::OnceLock::new();
static mut LOCK_ARRAY: *mut pg_sys::LWLockPadded = std::ptr::null_mut();
static mut PREV_REQUEST: Option<unsafe extern "C-unwind" fn()> = None;
static mut PREV_STARTUP: Option<unsafe extern "C-unwind" fn()> = None;

/// Whether the regions exist in this process (false in a backend that loaded the
/// library without `shared_preload_libraries`, which `_PG_init` refuses anyway).
pub fn ready() -> bool {
    unsafe { !LOCK_ARRAY.is_null() }
}

/// Refuses to load outside `shared_preload_libraries`, then asks for the regions.
pub fn init(regions: &'static [&'static Region]) {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            crate::errors::not_preloaded();
        }
        let _ = REGIONS.set(regions);
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(on_request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(on_startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_request() {
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        let regions: &[&Region] = REGIONS.get().copied().unwrap_or_default();
        let total: usize = regions.iter().map(|r| (r.size)()).sum();
        pg_sys::RequestAddinShmemSpace(total);
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), LOCKS);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        // AddinShmemInitLock (lwlocknames.txt: 21) serialises ShmemInitStruct callers.
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let regions: &[&Region] = REGIONS.get().copied().unwrap_or_default();
        for r in regions {
            let mut found = false;
            let base = pg_sys::ShmemInitStruct(r.name.as_ptr(), (r.size)(), &mut found);
            (r.attach)(base.cast(), !found);
        }
        LOCK_ARRAY = pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr());
        pg_sys::LWLockRelease(init_lock);
    }
}

/// Holds `lock` exclusively until dropped. An error raised meanwhile releases it
/// too (PostgreSQL releases every LWLock on abort); nothing done under it may raise.
pub struct Held(*mut pg_sys::LWLock);

pub fn lock(which: Lock) -> Held {
    unsafe {
        let l = &raw mut (*LOCK_ARRAY.add(which as usize)).lock;
        pg_sys::LWLockAcquire(l, pg_sys::LWLockMode::LW_EXCLUSIVE);
        Held(l)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        unsafe { pg_sys::LWLockRelease(self.0) }
    }
}

/// `size` rounded up to a cache line, so regions and arrays in them stay aligned.
pub const fn aligned(size: usize) -> usize {
    size.div_ceil(64) * 64
}
