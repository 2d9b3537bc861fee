//! Per-backend memory of keys already verified with bcrypt, keyed by the key's
//! SHA-256 and the verifier it matched (never by the key itself). A hit spares
//! the bcrypt work only: the key row is still read on every call, so disable,
//! expiry, rotation and permission changes apply at once. Failures are never stored.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Entries before the cache starts over; a backend rarely sees more keys than this.
const CAPACITY: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    static BCRYPT_VERIFICATIONS: Cell<i64> = const { Cell::new(0) };
    static HITS: Cell<i64> = const { Cell::new(0) };
}

/// True when `lookup` was verified against exactly this `key_hash` before.
pub fn is_verified(lookup: &str, key_hash: &str) -> bool {
    let hit = VERIFIED.with(|v| v.borrow().get(lookup).is_some_and(|h| h == key_hash));
    if hit {
        HITS.with(|h| h.set(h.get() + 1));
    }
    hit
}

/// bcrypt-verifies `key` against `key_hash`, remembering a success.
pub fn verify(key: &str, lookup: &str, key_hash: &str) -> bool {
    BCRYPT_VERIFICATIONS.with(|c| c.set(c.get() + 1));
    let ok = bcrypt::verify(key, key_hash).unwrap_or(false);
    if ok {
        VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            if v.len() >= CAPACITY {
                v.clear();
            }
            v.insert(lookup.to_string(), key_hash.to_string());
        });
    }
    ok
}

/// (bcrypt verifications, cache hits, entries) of this backend.
pub fn stats() -> (i64, i64, i64) {
    (
        BCRYPT_VERIFICATIONS.with(Cell::get),
        HITS.with(Cell::get),
        VERIFIED.with(|v| v.borrow().len() as i64),
    )
}

pub fn clear() {
    VERIFIED.with(|v| v.borrow_mut().clear());
}
