//! The extension's own heavyweight locks, in a lock space no SQL can name.
//!
//! Advisory locks are open to every role: `pg_advisory_xact_lock(class, key)` can
//! take any advisory tag, so a lock the extension waits on there could be held by
//! anyone to freeze another tenant's calls. These tags use `LOCKTAG_USERLOCK`, a tag
//! type that no built-in SQL function builds (it is reserved for C code), so only
//! this library takes them. They behave like advisory locks otherwise: they show in
//! `pg_locks` (locktype `userlock`), join deadlock detection, and end with their
//! transaction or session.

use pgrx::prelude::*;

/// What a lock serialises; the tag's 16-bit fourth field, so purposes never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Purpose {
    /// The notifier worker of a database (one per database).
    Notifier = 2,
}

/// The tag of lock (`purpose`, `id`) in database `db`: 64 bits of id.
pub fn tag(db: pg_sys::Oid, purpose: Purpose, id: u64) -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        locktag_field1: db.to_u32(),
        locktag_field2: (id >> 32) as u32,
        locktag_field3: id as u32,
        locktag_field4: purpose as u16,
        locktag_type: pg_sys::LockTagType::LOCKTAG_USERLOCK as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}
