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
    /// Set when an OAuth access token, not the key itself, was presented.
    pub oauth: Option<Grant>,
}

/// What an OAuth access token adds to its key: the client it was issued to, and
/// the tools chosen at consent (None: every tool the key may call).
pub struct Grant {
    pub client: String,
    pub tools: Option<Vec<String>>,
}

impl Authenticated {
    /// Whether this caller may call `tool`: the key's patterns, and the token's tools.
    pub fn allows(&self, tool: &str) -> bool {
        mcp_auth_core::tools::allows(&self.patterns, tool)
            && self
                .oauth
                .as_ref()
                .and_then(|g| g.tools.as_ref())
                .is_none_or(|t| t.iter().any(|n| n == tool))
    }
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
    /// Columns 1 to 12 of FIND (and FIND_TOKEN): the key and the facts of its status.
    fn read(row: &pgrx::spi::SpiTupleTable<'_>) -> Option<KeyRow> {
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
    }

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
    spi::first(&FIND, &[lookup.into()], KeyRow::read)
}

// An access token's key, with the same facts as FIND, and what the token adds. The
// token must be live and for this server's resource (mcp_auth.oauth_resource, set
// by `mcp-auth serve --oauth-issuer` on its connections).
const FIND_TOKEN: Statement = Statement {
    sql: "SELECT k.id, k.tenant_id, k.name, k.key_hash, k.allowed_tools, k.rate_limit, k.environment,
                 k.key_prefix, k.revoked_at IS NOT NULL, k.enabled, k.expires_at <= pg_catalog.now(),
                 k.replaced_by IS NOT NULL, t.tools, t.client_id, c.client_name
            FROM @s.mcp_oauth_tokens t
            JOIN @s.mcp_authentication_keys k ON k.id = t.key_id
            LEFT JOIN @s.mcp_oauth_clients c ON c.client_id = t.client_id
           WHERE t.digest = $1 AND t.kind = 'access' AND t.revoked_at IS NULL
             AND t.expires_at > pg_catalog.now()
             AND t.resource = pg_catalog.current_setting('mcp_auth.oauth_resource', true)",
    args: &[TEXT],
    writes: false,
};

fn find_token(digest: &str) -> Option<(KeyRow, Grant)> {
    spi::first(&FIND_TOKEN, &[digest.into()], |row| {
        let mut key = KeyRow::read(row)?;
        // A rotated key's tokens end with the rotation, whatever its grace period.
        if key.status == super::status::ACTIVE && col::<bool>(row, 12)? {
            key.status = "rotated";
        }
        let client_id: String = col(row, 14)?;
        let client = match col::<String>(row, 15) {
            Some(name) => format!("{name} ({client_id})"),
            None => client_id,
        };
        let tools = col::<Vec<String>>(row, 13);
        Some((key, Grant { client, tools }))
    })
}

/// Checks `api_key` (a key, or an OAuth access token); on success sets the tenant
/// context and counts the use.
pub fn authenticate(api_key: &str) -> Result<Authenticated, Refused> {
    let refused = |refusal, key| Err(Refused { refusal, key });
    if mcp_auth_core::token::parse(api_key) == Some(mcp_auth_core::token::Kind::Access) {
        let Some((row, grant)) = find_token(&mcp_auth_core::token::digest(api_key)) else {
            return refused(Refusal::Unknown, None);
        };
        return accept(row, Some(grant));
    }
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
    accept(row, None)
}

/// A found key (or a token's key): refused unless active; else it sets the context.
fn accept(row: KeyRow, oauth: Option<Grant>) -> Result<Authenticated, Refused> {
    let refusal = match row.status {
        "revoked" => Some(Refusal::Revoked),
        "disabled" => Some(Refusal::Disabled),
        "rotated" => Some(Refusal::Rotated),
        "expired" => Some(Refusal::Expired),
        _ => None,
    };
    if let Some(refusal) = refusal {
        return Err(Refused {
            refusal,
            key: Some(row.info()),
        });
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
        oauth,
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
        Ok(k) => {
            // A token's tools that its key still allows, when it names them; else
            // the key's own list.
            let tools = match k.oauth.as_ref().and_then(|g| g.tools.as_ref()) {
                Some(t) => serde_json::json!(t.iter().filter(|n| k.allows(n)).collect::<Vec<_>>()),
                None => k.allowed_tools.clone(),
            };
            TableIterator::once((
                k.key.tenant_id,
                k.key.id,
                k.key.name,
                JsonB(tools),
                k.key.rate_limit,
                k.environment,
            ))
        }
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
