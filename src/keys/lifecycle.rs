//! Rotation, disable, enable, revoke and delete. Each locks the key row, checks that the
//! caller may manage its tenant, and changes it in one statement.

use super::generate::new_secret;
use crate::access;
use crate::errors;
use crate::spi::{self, col, Statement, INTERVAL, UUID};
use mcp_auth_core::key::Environment;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::Uuid;

struct Locked {
    tenant_id: Uuid,
    environment: String,
    revoked: bool,
    replaced: bool,
}

// Only a key of a tenant the caller manages ($2; NULL: every tenant) is locked: an
// admin naming another tenant's key must not hold that key's row.
const LOCK: Statement = Statement {
    sql: "SELECT tenant_id, environment, revoked_at IS NOT NULL, replaced_by IS NOT NULL
            FROM @s.mcp_authentication_keys
           WHERE id = $1 AND ($2::pg_catalog.uuid IS NULL OR tenant_id = $2) FOR UPDATE",
    args: &[UUID, UUID],
    writes: true,
};

/// Locks the key row; a key of a tenant the caller may not manage reads as missing.
fn lock(key_id: Option<Uuid>) -> (Uuid, Locked) {
    let key_id = key_id.unwrap_or_else(|| errors::required("p_key_id"));
    let managed = access::managed_tenant();
    let found = spi::first(&LOCK, &[key_id.into(), managed.into()], |r| {
        Some(Locked {
            tenant_id: col(r, 1)?,
            environment: col(r, 2)?,
            revoked: col(r, 3)?,
            replaced: col(r, 4)?,
        })
    });
    match found {
        Some(k) if managed.is_none_or(|t| t == k.tenant_id) => (key_id, k),
        _ => errors::no_such_key("p_key_id"),
    }
}

const SET_ENABLED: Statement = Statement {
    sql: "UPDATE @s.mcp_authentication_keys SET enabled = $2
           WHERE id = $1 AND enabled IS DISTINCT FROM $2 RETURNING id",
    args: &[UUID, spi::BOOL],
    writes: true,
};

fn set_enabled(key_id: Uuid, enabled: bool) -> bool {
    spi::run(&SET_ENABLED, &[key_id.into(), enabled.into()], |t| {
        !t.is_empty()
    })
}

/// Disables a key: it fails validation from the very next call. True when it was enabled.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn disable_mcp_key(p_key_id: Option<Uuid>) -> bool {
    let (id, _) = lock(p_key_id);
    set_enabled(id, false)
}

/// Enables a disabled key again; a revoked key cannot be. True when it was disabled.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enable_mcp_key(p_key_id: Option<Uuid>) -> bool {
    let (id, k) = lock(p_key_id);
    if k.revoked {
        errors::wrong_state("p_key_id: the key is revoked and cannot be enabled again");
    }
    set_enabled(id, true)
}

const REVOKE: Statement = Statement {
    sql: "UPDATE @s.mcp_authentication_keys
             SET revoked_at = pg_catalog.statement_timestamp(), enabled = false
           WHERE id = $1 AND revoked_at IS NULL RETURNING id",
    args: &[UUID],
    writes: true,
};

/// Revokes a key for good. True when it was not revoked already.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_mcp_key(p_key_id: Option<Uuid>) -> bool {
    let (id, _) = lock(p_key_id);
    spi::run(&REVOKE, &[id.into()], |t| !t.is_empty())
}

const DELETE: Statement = Statement {
    sql: "DELETE FROM @s.mcp_authentication_keys WHERE id = $1 RETURNING id",
    args: &[UUID],
    writes: true,
};

/// Deletes a key (its audit rows stay; the ledger's writer drops its validation
/// counts). True when it was there. Admins delete keys only through this function:
/// a table-level DELETE right would also let them LOCK the keys table against every
/// tenant's validations.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn delete_mcp_key(p_key_id: Option<Uuid>) -> bool {
    let (id, _) = lock(p_key_id);
    spi::run(&DELETE, &[id.into()], |t| !t.is_empty())
}

const NEGATIVE: Statement = Statement {
    sql: "SELECT $1 < '0'::interval",
    args: &[INTERVAL],
    writes: false,
};

const ROTATE: Statement = Statement {
    sql: include_str!("../../sql/queries/key_rotate.sql"),
    args: &[UUID, UUID, INTERVAL, spi::TEXT, spi::TEXT, spi::TEXT],
    writes: true,
};

/// Replaces a key with a new one of the same settings. The old key keeps working
/// until `p_grace` has passed (immediately unusable with the default of 0).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_mcp_key(
    p_key_id: Option<Uuid>,
    p_grace: default!(Option<Interval>, "'0'"),
) -> TableIterator<
    'static,
    (
        name!(key_id, Uuid),
        name!(api_key, String),
        name!(key_prefix, String),
    ),
> {
    let grace = p_grace.unwrap_or_else(|| errors::required("p_grace"));
    if spi::one::<bool>(&NEGATIVE, &[grace.into()]) == Some(true) {
        errors::bad_param("p_grace", "must not be negative");
    }
    let (old_id, k) = lock(p_key_id);
    if k.revoked {
        errors::wrong_state("p_key_id: the key is revoked and cannot be rotated");
    }
    if k.replaced {
        errors::wrong_state("p_key_id: the key was already rotated; rotate its replacement");
    }
    let environment = Environment::parse(&k.environment).unwrap_or(Environment::Live);
    let secret = new_secret(environment);
    let new_id = Uuid::from_bytes(*uuid::Uuid::new_v4().as_bytes());
    spi::run(
        &ROTATE,
        &[
            old_id.into(),
            new_id.into(),
            grace.into(),
            secret.key_hash.as_str().into(),
            secret.lookup_hash.as_str().into(),
            secret.key_prefix.as_str().into(),
        ],
        |_| (),
    );
    TableIterator::once((new_id, secret.api_key, secret.key_prefix))
}
