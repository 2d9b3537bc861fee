//! GUCs: `mcp_auth.bcrypt_cost`, `mcp_auth.ledger_timeout` and
//! `mcp_auth.jwt_tenant_claim` (superuser only), `mcp_auth.audit_chain` (the server's
//! configuration), `mcp_auth.oauth_resource` (the audience of OAuth access tokens a
//! session accepts), and `mcp_auth.tenant_id` (the
//! tenant of an mcp_admin session, among those it is bound to; ignored for everyone
//! else).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static BCRYPT_COST: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static LEDGER_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5000);
pub static AUDIT_CHAIN: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static TENANT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static OAUTH_RESOURCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static JWT_TENANT_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"tenant_id"));

pub fn init() {
    GucRegistry::define_int_guc(
        c"mcp_auth.bcrypt_cost",
        c"bcrypt cost of newly generated MCP keys.",
        c"Existing keys keep the cost they were made with. 10 is the cost factor of the Eryxon Flow MCP Integration Guide.",
        &BCRYPT_COST,
        4,
        31,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mcp_auth.ledger_timeout",
        c"How long a call waits for the audit ledger to make its entry durable.",
        c"Past it the call fails with an internal_error and returns no result (the ledger fails closed).",
        &LEDGER_TIMEOUT,
        10,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"mcp_auth.audit_chain",
        c"Whether the ledger's writer links usage-log rows into each tenant's hash chain.",
        c"Off only to measure what the chain costs: rows written while it is off are outside the chain, and verify_mcp_audit reports them.",
        &AUDIT_CHAIN,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mcp_auth.tenant_id",
        c"Tenant of an mcp_admin session (uuid).",
        c"Read only for members of mcp_admin and superusers; a validated MCP key always wins.",
        &TENANT_ID,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mcp_auth.oauth_resource",
        c"The MCP endpoint URL this session serves, for OAuth access tokens.",
        c"mcp-auth serve --oauth-issuer sets it on its connections; a token is accepted only by the resource it was issued for.",
        &OAUTH_RESOURCE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mcp_auth.jwt_tenant_claim",
        c"Where the tenant is in request.jwt.claims, for roles bound by grant_mcp_jwt_tenant_admin.",
        c"A claim name, or a dotted path into nested objects (app_metadata.tenant_id).",
        &JWT_TENANT_CLAIM,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// The path of the tenant claim in a JWT's claims.
pub fn jwt_tenant_claim() -> String {
    JWT_TENANT_CLAIM
        .get()
        .map(|c| c.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tenant_id".into())
}

pub fn ledger_timeout() -> std::time::Duration {
    std::time::Duration::from_millis(LEDGER_TIMEOUT.get().max(1) as u64)
}

pub fn audit_chain() -> bool {
    AUDIT_CHAIN.get()
}

pub fn bcrypt_cost() -> u32 {
    BCRYPT_COST.get() as u32
}

/// The raw setting, `None` when unset or empty.
pub fn tenant_setting() -> Option<String> {
    TENANT_ID
        .get()
        .map(|c| c.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}
