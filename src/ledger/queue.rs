//! The ledger's queue in shared memory: one slot per backend, one channel per
//! database with a writer.
//!
//! A backend has at most one entry in flight (it waits for it), so a slot per
//! backend (indexed by `pgprocno`) is the whole queue: no allocation, no ring to
//! wrap, no lock. A slot's state and generation share one atomic word, so the
//! writer's "done" for an entry can never land on a later entry of the same slot.
//! Entries larger than the slot's inline buffer travel in a DSM segment the backend
//! creates and keeps until the writer is done with it.

use crate::shmem::{self, Region};
use pgrx::prelude::*;
use std::cell::UnsafeCell;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::*,
};

/// Bytes an entry may take inside its slot; larger ones go through DSM.
pub const INLINE: usize = 8 * 1024;
/// Databases with a live writer at one time.
const CHANNELS: usize = 64;

pub const EMPTY: u64 = 0;
pub const SUBMITTED: u64 = 1;
pub const TAKEN: u64 = 2;
pub const DONE: u64 = 3;
pub const FAILED: u64 = 4;

#[repr(C)]
pub struct Slot {
    /// `generation << 3 | state`.
    word: AtomicU64,
    db: AtomicU32,
    len: AtomicU32,
    /// DSM handle of an entry longer than INLINE, else 0.
    dsm: AtomicU32,
    /// The submitting backend's latch, set when the entry is done.
    latch: AtomicUsize,
    /// When the entry was submitted (µs since 2000-01-01).
    since: AtomicI64,
    data: UnsafeCell<[u8; INLINE]>,
}

/// A database's writer.
#[repr(C)]
pub struct Channel {
    pub db: AtomicU32,
    pub worker_pid: AtomicI32,
    pub worker_latch: AtomicUsize,
    /// When a backend last asked the postmaster for a writer (µs since 2000).
    pub started_at: AtomicI64,
    /// Whether the last writer left with every audit chain's head recorded
    /// (ledger/chain.rs): the next one may then take the recorded heads as they are.
    /// False from the server's start, and while a writer runs.
    pub heads_recorded: AtomicBool,
}

#[repr(C)]
struct Header {
    generation: AtomicU64,
    slots: AtomicU32,
    channels: [Channel; CHANNELS],
}

static mut BASE: *mut u8 = std::ptr::null_mut();

fn slot_count() -> usize {
    // Regular backends, autovacuum and background workers come first in the PGPROC
    // array (InitProcGlobal), so their pgprocno is below MaxBackends.
    unsafe { pg_sys::MaxBackends as usize }
}

fn size() -> usize {
    shmem::aligned(size_of::<Header>()) + slot_count() * shmem::aligned(size_of::<Slot>())
}

unsafe fn attach(base: *mut u8, fresh: bool) {
    unsafe {
        if fresh {
            std::ptr::write_bytes(base, 0, size());
            (*(base as *mut Header))
                .slots
                .store(slot_count() as u32, SeqCst);
        }
        BASE = base;
    }
}

pub static REGION: Region = Region {
    name: c"mcp_auth ledger",
    size,
    attach,
};

fn header() -> &'static Header {
    unsafe { &*(BASE as *const Header) }
}

pub fn slots() -> usize {
    header().slots.load(Relaxed) as usize
}

pub fn slot(i: usize) -> &'static Slot {
    assert!(i < slots(), "ledger slot {i} out of range");
    unsafe {
        let at =
            BASE.add(shmem::aligned(size_of::<Header>()) + i * shmem::aligned(size_of::<Slot>()));
        &*(at as *const Slot)
    }
}

pub fn channels() -> &'static [Channel; CHANNELS] {
    &header().channels
}

/// This backend's slot, or None for a process without one (should not happen).
pub fn my_slot() -> Option<&'static Slot> {
    let i = unsafe { (*pg_sys::MyProc).pgprocno } as usize;
    (i < slots()).then(|| slot(i))
}

/// The channel of `db`, claiming a free one for it; None when all are taken.
pub fn channel_of(db: u32) -> Option<&'static Channel> {
    let all = channels();
    all.iter().find(|c| c.db.load(SeqCst) == db).or_else(|| {
        all.iter()
            .find(|c| c.db.compare_exchange(0, db, SeqCst, SeqCst).is_ok())
    })
}

pub fn state(word: u64) -> u64 {
    word & 7
}

impl Slot {
    pub fn word(&self) -> u64 {
        self.word.load(SeqCst)
    }

    pub fn db(&self) -> u32 {
        self.db.load(SeqCst)
    }

    /// When the entry in the slot was submitted.
    pub fn since(&self) -> i64 {
        self.since.load(SeqCst)
    }

    /// Publishes `bytes` for `db` (the slot must be free): returns the generation.
    /// `dsm` is the handle of a segment holding `bytes` when they exceed INLINE.
    pub fn submit(&self, db: u32, bytes: &[u8], dsm: u32) -> u64 {
        if dsm == 0 {
            let at = self.data.get().cast::<u8>();
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
        }
        self.len.store(bytes.len() as u32, SeqCst);
        self.dsm.store(dsm, SeqCst);
        self.db.store(db, SeqCst);
        self.latch
            .store(unsafe { pg_sys::MyLatch } as usize, SeqCst);
        self.since
            .store(unsafe { pg_sys::GetCurrentTimestamp() }, SeqCst);
        let generation = header().generation.fetch_add(1, SeqCst) + 1;
        self.word.store(generation << 3 | SUBMITTED, SeqCst);
        generation
    }

    /// Moves the slot from `from` to `to` in generation `generation`; false when
    /// it is no longer in that state.
    pub fn advance(&self, generation: u64, from: u64, to: u64) -> bool {
        self.word
            .compare_exchange(generation << 3 | from, generation << 3 | to, SeqCst, SeqCst)
            .is_ok()
    }

    /// The writer takes a submitted entry: its generation and a copy of its bytes
    /// (None when its DSM segment is gone: the backend gave up on it).
    pub fn take(&self) -> Option<(u64, Option<Vec<u8>>)> {
        let word = self.word();
        if state(word) != SUBMITTED || !self.advance(word >> 3, SUBMITTED, TAKEN) {
            return None;
        }
        let len = self.len.load(SeqCst) as usize;
        let dsm = self.dsm.load(SeqCst);
        let bytes = if dsm == 0 {
            let at = self.data.get().cast::<u8>().cast_const();
            Some(unsafe { std::slice::from_raw_parts(at, len.min(INLINE)) }.to_vec())
        } else {
            unsafe {
                let seg = pg_sys::dsm_attach(dsm);
                (!seg.is_null()).then(|| {
                    let at = pg_sys::dsm_segment_address(seg) as *const u8;
                    let copy = std::slice::from_raw_parts(at, len).to_vec();
                    pg_sys::dsm_detach(seg);
                    copy
                })
            }
        };
        Some((word >> 3, bytes))
    }

    /// Ends a taken entry (DONE or FAILED) and wakes its backend.
    pub fn finish(&self, generation: u64, outcome: u64) {
        if self.advance(generation, TAKEN, outcome) {
            let latch = self.latch.load(SeqCst);
            if latch != 0 {
                unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
            }
        }
    }

    /// Gives a taken entry back (its writer's transaction did not commit).
    pub fn release(&self, generation: u64) {
        self.advance(generation, TAKEN, SUBMITTED);
    }
}
