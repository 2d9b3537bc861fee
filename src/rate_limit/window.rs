//! Every key's sliding 60-second window, in shared memory.
//!
//! A window is the list of the key's accepted charges (time, cost) of the last 60
//! seconds, oldest first, in a shared arena of events. Deciding takes one LWLock
//! of ours for a few hundred nanoseconds: drop what left the window, then accept
//! when the used cost plus the new one fits the limit. Nothing any role can lock
//! is involved, and deciders of different keys only share that short lock.
//!
//! Shared memory is empty after a restart, so a key's window is loaded from the
//! durable charges (`mcp_rate_limit_charges`, written by the ledger) the first
//! time it is needed; while one backend loads it, the others wait for it. A key
//! whose window has emptied may give its place to another key; loading it again
//! later finds nothing in its last 60 seconds, which is the truth.
//!
//! When the arena is full, a new charge is added to its key's newest one, which
//! then leaves the window later than it should: the limiter may refuse early,
//! never accept too much.

use crate::shmem::{self, Lock, Region};
use pgrx::Uuid;

pub const WINDOW_US: i64 = 60_000_000;
const KEYS: usize = 65_536;
const EVENTS: usize = 262_144;
const PROBES: usize = 64;
const NIL: u32 = u32::MAX;
/// A load that has not finished in this long is taken over (its backend failed).
const LOAD_STALE_US: i64 = 2_000_000;

const EMPTY: u32 = 0;
const LOADING: u32 = 1;
const READY: u32 = 2;

#[repr(C)]
struct Key {
    db: u32,
    state: u32,
    key: [u8; 16],
    loader: i32,
    head: u32,
    tail: u32,
    used: i64,
    /// When the load began (µs), or the newest charge's time.
    stamp: i64,
}

#[repr(C)]
struct Event {
    at: i64,
    cost: i32,
    next: u32,
}

#[repr(C)]
struct Header {
    free: u32,
}

static mut BASE: *mut u8 = std::ptr::null_mut();

fn keys_at() -> usize {
    shmem::aligned(size_of::<Header>())
}
fn events_at() -> usize {
    keys_at() + shmem::aligned(KEYS * size_of::<Key>())
}
fn size() -> usize {
    events_at() + shmem::aligned(EVENTS * size_of::<Event>())
}

unsafe fn attach(base: *mut u8, fresh: bool) {
    unsafe {
        BASE = base;
        if fresh {
            std::ptr::write_bytes(base, 0, size());
            let w = Windows::get();
            for (i, e) in w.events.iter_mut().enumerate() {
                e.next = if i + 1 < EVENTS { i as u32 + 1 } else { NIL };
            }
            w.header.free = 0;
        }
    }
}

pub static REGION: Region = Region {
    name: c"mcp_auth rate limit windows",
    size,
    attach,
};

struct Windows {
    header: &'static mut Header,
    keys: &'static mut [Key],
    events: &'static mut [Event],
}

impl Windows {
    /// Only under Lock::Windows (or while the postmaster initialises).
    unsafe fn get() -> Windows {
        unsafe {
            Windows {
                header: &mut *(BASE as *mut Header),
                keys: std::slice::from_raw_parts_mut(BASE.add(keys_at()).cast(), KEYS),
                events: std::slice::from_raw_parts_mut(BASE.add(events_at()).cast(), EVENTS),
            }
        }
    }

    /// Drops the charges of key `k` at or before `horizon`.
    fn expire(&mut self, k: usize, horizon: i64) {
        let key = &mut self.keys[k];
        while key.head != NIL && self.events[key.head as usize].at <= horizon {
            let e = key.head as usize;
            key.used -= i64::from(self.events[e].cost);
            key.head = self.events[e].next;
            self.events[e].next = self.header.free;
            self.header.free = e as u32;
        }
        if key.head == NIL {
            key.tail = NIL;
            key.used = 0;
        }
    }

    /// Appends a charge to key `k`; false when neither the arena nor the key has room.
    fn push(&mut self, k: usize, at: i64, cost: i32) -> bool {
        let free = self.header.free;
        let key = &mut self.keys[k];
        if free == NIL {
            if key.tail == NIL {
                return false;
            }
            let t = &mut self.events[key.tail as usize];
            t.at = t.at.max(at);
            t.cost += cost;
        } else {
            self.header.free = self.events[free as usize].next;
            self.events[free as usize] = Event {
                at,
                cost,
                next: NIL,
            };
            if key.tail == NIL {
                key.head = free;
            } else {
                self.events[key.tail as usize].next = free;
            }
            key.tail = free;
        }
        key.used += i64::from(cost);
        key.stamp = key.stamp.max(at);
        true
    }

    fn find(&self, db: u32, id: &[u8; 16]) -> Option<usize> {
        let home = home(db, id);
        (0..PROBES).map(|i| (home + i) % KEYS).find(|&k| {
            self.keys[k].state != EMPTY && self.keys[k].db == db && &self.keys[k].key == id
        })
    }

    /// A place for a new key: an empty one, or one whose window has emptied.
    fn place(&mut self, db: u32, id: &[u8; 16], now: i64) -> Option<usize> {
        let home = home(db, id);
        let k = (0..PROBES).map(|i| (home + i) % KEYS).find(|&k| {
            let key = &self.keys[k];
            key.state == EMPTY || (key.state == READY && key.stamp <= now - WINDOW_US)
        })?;
        if self.keys[k].state == READY {
            self.expire(k, i64::MAX);
        }
        self.keys[k] = Key {
            db,
            state: LOADING,
            key: *id,
            loader: 0,
            head: NIL,
            tail: NIL,
            used: 0,
            stamp: now,
        };
        Some(k)
    }
}

fn home(db: u32, id: &[u8; 16]) -> usize {
    let mut h = u64::from(db);
    for chunk in id.chunks(8) {
        h = h.rotate_left(23) ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % KEYS
}

/// What the window says about one charge.
pub enum Verdict {
    Allowed {
        remaining: i64,
    },
    Refused {
        remaining: i64,
        retry_after_ms: i32,
    },
    /// The key's window is not in memory: load it from the durable charges and
    /// `install` it, then ask again.
    Load,
    /// Another backend is loading it: ask again shortly.
    Wait,
    /// No room for this key (every place nearby holds a live window).
    Full,
}

fn me() -> i32 {
    unsafe { pgrx::pg_sys::MyProcPid }
}

/// Decides a charge of `cost` on `id` (limit `limit`) at `now` (µs), recording it
/// when accepted.
pub fn decide(db: u32, id: &Uuid, limit: i32, cost: i32, now: i64) -> Verdict {
    let id = id.as_bytes();
    let _held = shmem::lock(Lock::Windows);
    let mut w = unsafe { Windows::get() };
    let k = match w.find(db, id) {
        Some(k) => k,
        None => match w.place(db, id, now) {
            Some(k) => {
                w.keys[k].loader = me();
                return Verdict::Load;
            }
            None => return Verdict::Full,
        },
    };
    if w.keys[k].state == LOADING {
        if w.keys[k].loader == me() || now - w.keys[k].stamp > LOAD_STALE_US {
            w.keys[k].loader = me();
            w.keys[k].stamp = now;
            return Verdict::Load;
        }
        return Verdict::Wait;
    }
    w.expire(k, now - WINDOW_US);
    let (used, limit) = (w.keys[k].used, i64::from(limit));
    if used + i64::from(cost) <= limit {
        if !w.push(k, now, cost) {
            return Verdict::Full;
        }
        return Verdict::Allowed {
            remaining: limit - used - i64::from(cost),
        };
    }
    // It fits once the oldest charges worth `need` have left the window.
    let need = used + i64::from(cost) - limit;
    let (mut freed, mut e, mut at) = (0i64, w.keys[k].head, now);
    while e != NIL && freed < need {
        freed += i64::from(w.events[e as usize].cost);
        at = w.events[e as usize].at;
        e = w.events[e as usize].next;
    }
    let wait_us = (at + WINDOW_US - now).max(1);
    Verdict::Refused {
        remaining: (limit - used).max(0),
        retry_after_ms: ((wait_us + 999) / 1000).min(i64::from(i32::MAX)) as i32,
    }
}

/// Installs the window this backend loaded: the key's charges of the last 60
/// seconds, oldest first.
pub fn install(db: u32, id: &Uuid, charges: &[(i64, i32)]) {
    let id = id.as_bytes();
    let _held = shmem::lock(Lock::Windows);
    let mut w = unsafe { Windows::get() };
    let Some(k) = w.find(db, id) else { return };
    if w.keys[k].state != LOADING || w.keys[k].loader != me() {
        return; // taken over meanwhile; that backend installs it
    }
    for &(at, cost) in charges {
        // With no room at all the load is retried (Full is reported to the caller).
        if !w.push(k, at, cost) {
            break;
        }
    }
    w.keys[k].state = READY;
}
