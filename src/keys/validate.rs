//! `validate_mcp_key`: format and checksum first (no table read), then one indexed
//! lookup by SHA-256, then bcrypt at most once (never for a cached key), then the
//! key's state. Success sets the transaction's tenant context.

use super::{verified_cache, KeyInfo};
use crate::errors;
use crate::ledger;
use crate::spi::{self, col, Statement, TEXT};
use crate::tenant;
use mcp_auth_core::key::{self, KeyFormatError};
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

/// A key that authenticated, with what the rest of a call needs of it.
pub struct Authenticated {
    pub key: KeyInfo,
    pub allowed_tools: serde_json::Value,
    /// `allowed_tools` read once.
    pub patterns: Vec<String>,
    pub environment: String,
}

/// Why a key did not authenticate. Clients only ever see `Invalid or disabled MCP key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed(KeyFormatError),
    Unknown,
    Mismatch,
    Disabled,
    Revoked,
    Expired,
    Rotated,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed(e) => e.reason(),
            Refusal::Unknown => "unknown key",
            Refusal::Mismatch => "key does not match its verifier",
            Refusal::Disabled => "key is disabled",
            Refusal::Revoked => "key is revoked",
            Refusal::Expired => "key has expired",
            Refusal::Rotated => "key was rotated and its grace period has ended",
        }
    }
}

/// A refusal, with the key when it was found (so the refusal can be audited under
/// its tenant without reading the row again).
pub struct Refused {
    pub refusal: Refusal,
    pub key: Option<KeyInfo>,
}

const FIND: Statement = Statement {
    // The facts of the key's status (keys/status.rs decides it), as in mcp_keys.
    sql: "SELECT id, tenant_id, name, key_hash, allowed_tools, rate_limit, environment, key_prefix,
                 revoked_at IS NOT NULL, enabled, expires_at <= pg_catalog.now(),
                 replaced_by IS NOT NULL
            FROM @s.mcp_authentication_keys
           WHERE lookup_hash = $1",
    args: &[TEXT],
    writes: false,
};

struct KeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    key_hash: String,
    allowed_tools: serde_json::Value,
    rate_limit: i32,
    environment: String,
    key_prefix: String,
    status: &'static str,
}

impl KeyRow {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name.clone(),
            key_prefix: self.key_prefix.clone(),
            rate_limit: self.rate_limit,
        }
    }
}

fn find(lookup: &str) -> Option<KeyRow> {
    spi::first(&FIND, &[lookup.into()], |row| {
        Some(KeyRow {
            id: col(row, 1)?,
            tenant_id: col(row, 2)?,
            name: col(row, 3)?,
            key_hash: col(row, 4)?,
            allowed_tools: col::<JsonB>(row, 5)?.0,
            rate_limit: col(row, 6)?,
            environment: col(row, 7)?,
            key_prefix: col(row, 8)?,
            status: super::status::of(
                col(row, 9)?,
                col(row, 10)?,
                col::<bool>(row, 11).unwrap_or(false), // NULL expires_at: never
                col(row, 12)?,
            ),
        })
    })
}

/// Checks `api_key`; on success sets the tenant context and counts the use.
pub fn authenticate(api_key: &str) -> Result<Authenticated, Refused> {
    let refused = |refusal, key| Err(Refused { refusal, key });
    if let Err(e) = key::parse(api_key) {
        return refused(Refusal::Malformed(e), None);
    }
    let lookup = key::lookup_digest(api_key);
    let Some(row) = find(&lookup) else {
        return refused(Refusal::Unknown, None);
    };
    let found = Some(row.info());
    match row.status {
        "revoked" => return refused(Refusal::Revoked, found),
        "disabled" => return refused(Refusal::Disabled, found),
        "rotated" => return refused(Refusal::Rotated, found),
        "expired" => return refused(Refusal::Expired, found),
        _ => {}
    }
    if !verified_cache::is_verified(&lookup, &row.key_hash)
        && !verified_cache::verify(api_key, &lookup, &row.key_hash)
    {
        return refused(Refusal::Mismatch, found);
    }
    tenant::set_key_context(
        row.tenant_id,
        row.id,
        row.name.clone(),
        row.environment.clone(),
    );
    // Summed in shared memory; the ledger's writer writes it (ledger/counts.rs).
    ledger::count_validation(&row.id, &row.tenant_id);
    Ok(Authenticated {
        key: row.info(),
        patterns: super::stored_patterns(&row.allowed_tools),
        allowed_tools: row.allowed_tools,
        environment: row.environment,
    })
}

/// Validates an MCP key. Raises `Invalid or disabled MCP key` for any key that does
/// not authenticate; on success the key's tenant is this transaction's tenant.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn validate_mcp_key(
    p_api_key: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(tenant_id, Uuid),
        name!(key_id, Uuid),
        name!(key_name, String),
        name!(allowed_tools, JsonB),
        name!(rate_limit, i32),
        name!(environment, String),
    ),
> {
    let Some(api_key) = p_api_key else {
        errors::invalid_key()
    };
    match authenticate(api_key) {
        Ok(k) => TableIterator::once((
            k.key.tenant_id,
            k.key.id,
            k.key.name,
            JsonB(k.allowed_tools),
            k.key.rate_limit,
            k.environment,
        )),
        // The reason is never reported, at any log level: one message for all.
        Err(_) => errors::invalid_key(),
    }
}

/// This backend's validation counters, for tests and benchmarks (superuser only).
#[pg_extern(volatile)]
fn mcp_auth_backend_stats() -> TableIterator<
    'static,
    (
        name!(bcrypt_verifications, i64),
        name!(cache_hits, i64),
        name!(cached_keys, i64),
    ),
> {
    TableIterator::once(verified_cache::stats())
}

/// Forgets this backend's verified keys, so the next validation is cold (superuser only).
#[pg_extern(volatile)]
fn mcp_auth_reset_cache() {
    verified_cache::clear();
}
