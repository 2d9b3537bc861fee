//! A key's status: the one rule, read by the validator (through every entry point)
//! and by the `mcp_keys` view (through `mcp_key_status`). The facts come from the
//! key's row, as SQL sees them in the same statement (`expires_at <= now()`); the
//! order in which they win is decided only here.

use pgrx::prelude::*;

pub const ACTIVE: &str = "active";

/// The status of a key with these facts: revoked wins over disabled, a rotated key
/// (expired, with a successor) over a plainly expired one.
pub fn of(revoked: bool, enabled: bool, expired: bool, replaced: bool) -> &'static str {
    if revoked {
        "revoked"
    } else if !enabled {
        "disabled"
    } else if expired && replaced {
        "rotated"
    } else if expired {
        "expired"
    } else {
        ACTIVE
    }
}

/// `status` of the mcp_keys view: active, revoked, disabled, rotated or expired.
#[pg_extern(immutable, parallel_safe)]
fn mcp_key_status(revoked: bool, enabled: bool, expired: bool, replaced: bool) -> &'static str {
    of(revoked, enabled, expired, replaced)
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn each_fact_wins_in_its_order() {
        assert_eq!(of(true, false, true, true), "revoked");
        assert_eq!(of(false, false, true, true), "disabled");
        assert_eq!(of(false, true, true, true), "rotated");
        assert_eq!(of(false, true, true, false), "expired");
        assert_eq!(of(false, true, false, true), "active");
    }
}
