//! Validation counts waiting for the writer: `validate_mcp_key` adds one to its key
//! here (a few hundred nanoseconds under an LWLock) instead of waiting for a
//! commit; the writer moves them to `mcp_key_usage_counters` with its next batch.
//! Every validation counts here, call_tool's included. Under a steady stream of
//! calls the writer writes them every 100 ms, a lone call's with its entry. A crash
//! loses at most the counts of that last moment; they are statistics, not a promise
//! (the audit rows are).

use crate::shmem::{self, Lock, Region};
use pgrx::Uuid;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

const ENTRIES: usize = 4096;
const PROBES: usize = 32;

#[repr(C)]
#[derive(Clone, Copy)]
struct Entry {
    db: u32,
    key: [u8; 16],
    tenant: [u8; 16],
    count: i64,
    /// µs since 2000-01-01.
    last: i64,
}

static mut TABLE: *mut Entry = std::ptr::null_mut();
/// Bumped by every `add`: the writer scans the table only when it moved.
static mut ADDS: *const AtomicU64 = std::ptr::null();

fn size() -> usize {
    shmem::aligned(size_of::<AtomicU64>()) + shmem::aligned(ENTRIES * size_of::<Entry>())
}

unsafe fn attach(base: *mut u8, fresh: bool) {
    unsafe {
        if fresh {
            std::ptr::write_bytes(base, 0, size());
        }
        ADDS = base.cast();
        TABLE = base.add(shmem::aligned(size_of::<AtomicU64>())).cast();
    }
}

pub static REGION: Region = Region {
    name: c"mcp_auth validation counts",
    size,
    attach,
};

fn adds() -> &'static AtomicU64 {
    unsafe { &*ADDS }
}

/// How many adds there have been: `take` has nothing new to find while it stays.
pub fn generation() -> u64 {
    adds().load(SeqCst)
}

fn table() -> &'static mut [Entry] {
    unsafe { std::slice::from_raw_parts_mut(TABLE, ENTRIES) }
}

fn home(db: u32, key: &[u8; 16]) -> usize {
    let mut h = db as u64;
    for chunk in key.chunks(8) {
        h = h.rotate_left(17) ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % ENTRIES
}

/// Counts `n` validations of `key`; false when the table has no room (the caller
/// then writes the count through the queue).
pub fn add(db: u32, key: &Uuid, tenant: &Uuid, n: i64, at: i64) -> bool {
    let key = *key.as_bytes();
    let start = home(db, &key);
    let _held = shmem::lock(Lock::Counts);
    adds().fetch_add(1, SeqCst);
    let t = table();
    let mut free = None;
    for i in 0..PROBES {
        let e = &mut t[(start + i) % ENTRIES];
        if e.db == db && e.key == key {
            e.count += n;
            e.last = e.last.max(at);
            return true;
        }
        if e.count == 0 && free.is_none() {
            free = Some((start + i) % ENTRIES);
        }
        if e.db == 0 {
            break; // never used: the key is not further on
        }
    }
    let Some(i) = free else { return false };
    t[i] = Entry {
        db,
        key,
        tenant: *tenant.as_bytes(),
        count: n,
        last: at,
    };
    true
}

/// A key's counts taken by the writer.
pub struct Pending {
    pub key: Uuid,
    pub tenant: Uuid,
    pub count: i64,
    pub last: i64,
}

/// Takes every count of `db`, leaving zero behind.
pub fn take(db: u32) -> Vec<Pending> {
    let _held = shmem::lock(Lock::Counts);
    table()
        .iter_mut()
        .filter(|e| e.db == db && e.count > 0)
        .map(|e| {
            let p = Pending {
                key: Uuid::from_bytes(e.key),
                tenant: Uuid::from_bytes(e.tenant),
                count: e.count,
                last: e.last,
            };
            e.count = 0;
            p
        })
        .collect()
}

/// Puts back counts the writer could not store.
pub fn restore(db: u32, pending: &[Pending]) {
    for p in pending {
        add(db, &p.key, &p.tenant, p.count, p.last);
    }
}

/// Whether `db` has counts waiting.
pub fn any(db: u32) -> bool {
    let _held = shmem::lock(Lock::Counts);
    table().iter().any(|e| e.db == db && e.count > 0)
}
