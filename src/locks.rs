//! Transaction-scoped advisory locks taken directly from Rust: the same lock as
//! `pg_advisory_xact_lock(class, key)`, without the cost of an SQL statement.

use pgrx::prelude::*;

/// Lock classes (first key of the two-int4 advisory lock space): 'mcpa', 'mcpr'
/// (and 'mcpn', the notifier's, in audit/notifier.rs).
pub const KEY_NAME_CLASS: i32 = 0x6d63_7061;
pub const RATE_LIMIT_CLASS: i32 = 0x6d63_7072;

/// Waits for and takes the exclusive advisory lock (class, key) until the end of
/// the transaction. Visible in pg_locks like one taken with pg_advisory_xact_lock.
pub fn xact_lock(class: i32, key: i32) {
    let tag = advisory_tag(unsafe { pg_sys::MyDatabaseId }, class, key);
    unsafe {
        pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as i32, false, false);
    }
}

/// The tag of the two-int4 advisory lock (class, key) in database `db`.
pub fn advisory_tag(db: pg_sys::Oid, class: i32, key: i32) -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        locktag_field1: db.to_u32(),
        locktag_field2: class as u32,
        locktag_field3: key as u32,
        // 2 marks the two-int4 form, as SET_LOCKTAG_INT32 does.
        locktag_field4: 2,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

/// A 32-bit key for a uuid (collisions only make two keys share a lock).
pub fn uuid_key(id: &pgrx::Uuid) -> i32 {
    let b = id.as_bytes();
    let words = [
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
    ];
    (words[0] ^ words[1] ^ words[2] ^ words[3]) as i32
}
