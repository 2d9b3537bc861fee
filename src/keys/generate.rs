//! `generate_mcp_key`: a new key, shown once. Only its bcrypt verifier and its
//! SHA-256 lookup value are stored.

use crate::access;
use crate::errors;
use crate::settings;
use crate::spi::{self, Statement, INT4, JSONB, TEXT, TIMESTAMPTZ, UUID};
use mcp_auth_core::key::{self, Environment};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

/// The secret part of a key row: the key, its verifier and lookup value.
pub struct Secret {
    pub api_key: String,
    pub key_hash: String,
    pub lookup_hash: String,
    pub key_prefix: String,
}

pub fn new_secret(environment: Environment) -> Secret {
    let api_key = key::generate(environment);
    let key_hash = bcrypt::hash(&api_key, settings::bcrypt_cost())
        .unwrap_or_else(|e| errors::internal(format!("bcrypt failed: {e}")));
    let lookup_hash = key::lookup_digest(&api_key);
    let key_prefix = api_key[..key::DISPLAY_PREFIX_LEN].to_string();
    Secret {
        api_key,
        key_hash,
        lookup_hash,
        key_prefix,
    }
}

const IN_PAST: Statement = Statement {
    sql: "SELECT $1 <= pg_catalog.statement_timestamp()",
    args: &[TIMESTAMPTZ],
    writes: false,
};

// Name uniqueness is the partial unique index's: a concurrent creator of the same
// (tenant, name) waits on that index entry (which only a creator of the same
// tenant and name can hold, never a lock anyone can take) and then finds it taken:
// no row comes back, and the caller gets the clear duplicate-name error. There is no
// separate check before the bcrypt work: its generic plan read a tenant's keys
// through the (tenant_id, created_at) index, one by one, so the 100,000th key of a
// tenant made in one statement read 99,999 rows (a duplicate name now costs its
// caller one bcrypt hash instead).
const INSERT: Statement = Statement {
    sql: "INSERT INTO @s.mcp_authentication_keys
              (tenant_id, name, description, key_hash, lookup_hash, key_prefix,
               environment, allowed_tools, rate_limit, created_by, expires_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
          ON CONFLICT (tenant_id, name) WHERE replaced_by IS NULL AND revoked_at IS NULL
          DO NOTHING
          RETURNING id",
    args: &[
        UUID,
        TEXT,
        TEXT,
        TEXT,
        TEXT,
        TEXT,
        TEXT,
        JSONB,
        INT4,
        UUID,
        TIMESTAMPTZ,
    ],
    writes: true,
};

/// Generates a key for `p_tenant_id`. The returned `api_key` is shown this once.
#[allow(clippy::too_many_arguments)]
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn generate_mcp_key(
    p_tenant_id: Option<Uuid>,
    p_name: Option<String>,
    p_description: default!(Option<String>, "NULL"),
    p_environment: default!(Option<String>, "'live'"),
    p_allowed_tools: default!(Option<JsonB>, "'[\"*\"]'"),
    p_created_by: default!(Option<Uuid>, "NULL"),
    p_rate_limit: default!(Option<i32>, 100),
    p_expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(key_id, Uuid),
        name!(api_key, String),
        name!(key_prefix, String),
    ),
> {
    let tenant_id = p_tenant_id.unwrap_or_else(|| errors::required("p_tenant_id"));
    access::require_tenant("p_tenant_id", tenant_id);

    let name = p_name.unwrap_or_else(|| errors::required("p_name"));
    if name.trim().is_empty() {
        errors::bad_param("p_name", "must not be empty");
    }
    if name.chars().count() > 200 {
        errors::bad_param("p_name", "must be at most 200 characters");
    }
    let env_text = p_environment.unwrap_or_else(|| errors::required("p_environment"));
    let environment = Environment::parse(&env_text).unwrap_or_else(|| {
        errors::bad_param(
            "p_environment",
            format!("must be 'live' or 'test' (got {env_text:?})"),
        )
    });
    let tools = p_allowed_tools.unwrap_or_else(|| errors::required("p_allowed_tools"));
    super::tool_patterns("p_allowed_tools", &tools.0);
    let rate_limit = p_rate_limit.unwrap_or_else(|| errors::required("p_rate_limit"));
    if rate_limit <= 0 {
        errors::bad_param(
            "p_rate_limit",
            format!("must be a positive number of requests per minute (got {rate_limit})"),
        );
    }
    if let Some(expires_at) = p_expires_at {
        if spi::one::<bool>(&IN_PAST, &[expires_at.into()]) == Some(true) {
            errors::bad_param("p_expires_at", "must be in the future");
        }
    }
    let name_taken = || -> ! {
        errors::duplicate(
            "p_name",
            format!("this tenant already has a key named {name:?}"),
        )
    };

    let secret = new_secret(environment);
    let Some(key_id) = spi::one::<Uuid>(
        &INSERT,
        &[
            tenant_id.into(),
            name.as_str().into(),
            p_description.into(),
            secret.key_hash.as_str().into(),
            secret.lookup_hash.as_str().into(),
            secret.key_prefix.as_str().into(),
            environment.as_str().into(),
            tools.into(),
            rate_limit.into(),
            p_created_by.into(),
            p_expires_at.into(),
        ],
    ) else {
        name_taken()
    };
    TableIterator::once((key_id, secret.api_key, secret.key_prefix))
}
