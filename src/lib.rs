//! mcp_auth: per-tenant API keys for MCP tool calls, inside PostgreSQL.
//!
//! Layout: `keys/` generates, validates and manages keys; `audit/` keeps the usage
//! log, activity log and statistics; `rate_limit` is the per-key window; `tenant` holds the
//! tenant context that row-level security reads; `access` decides who the caller
//! is; `spi` runs the extension's own prepared statements; `settings` declares
//! the GUCs; `tools/` is the registry and the MCP entry points list_tools and
//! call_tool; `ledger/` makes audit entries and rate-limit charges durable outside
//! the caller's transaction; `shmem` holds the shared memory the ledger and the
//! limiter's windows live in (hence `shared_preload_libraries`). Tables, policies and grants are SQL, in `sql/`.

use pgrx::prelude::*;

mod access;
mod admins;
mod audit;
mod errors;
mod jsonb_datum;
mod keys;
mod ledger;
mod locks;
mod oauth;
mod rate_limit;
mod roles;
mod settings;
mod shmem;
mod spi;
mod subxact;
mod tenant;
mod tools;
mod workers;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/audit.sql", name = "audit", requires = ["schema"]);
extension_sql_file!("../sql/server.sql", name = "server", requires = ["schema"]);
extension_sql_file!(
    "../sql/server_functions.sql",
    name = "server_functions",
    requires = [
        "server",
        "audit",
        mcp_current_tenant,
        mcp_caller_kind,
        mcp_redact_text,
        mcp_redact_json
    ]
);
extension_sql_file!(
    "../sql/partitions.sql",
    name = "partitions",
    requires = ["server_functions"]
);
extension_sql_file!(
    "../sql/audit_chain.sql",
    name = "audit_chain",
    requires = ["audit", mcp_audit_chain_step]
);
extension_sql_file!("../sql/tools.sql", name = "tools", requires = ["schema"]);
extension_sql_file!("../sql/oauth.sql", name = "oauth", requires = ["schema"]);
extension_sql!(
    "-- Every backend's copy of the registry is dropped when the registry changes.
CREATE TRIGGER mcp_tools_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mcp_tools
    FOR EACH STATEMENT EXECUTE FUNCTION mcp_tools_changed();",
    name = "tools_changed",
    requires = ["tools", mcp_tools_changed]
);
extension_sql_file!("../sql/admins.sql", name = "admins", requires = ["schema"]);
extension_sql!(
    "-- Every backend's copy of the admin bindings is dropped when they change.
CREATE TRIGGER mcp_tenant_admins_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mcp_tenant_admins FOR EACH STATEMENT EXECUTE FUNCTION mcp_tenant_admins_changed();",
    name = "tenant_admins_changed",
    requires = ["admins", mcp_tenant_admins_changed]
);
extension_sql_file!("../sql/security.sql", name = "security", finalize);

/// The shared memory regions, allocated at server start.
static REGIONS: [&shmem::Region; 3] = [
    &ledger::queue::REGION,
    &ledger::counts::REGION,
    &rate_limit::REGION,
];

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    shmem::init(&REGIONS);
    settings::init();
    tenant::init();
    admins::init();
    audit::notifier::init();
    tools::registry::init();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'mcp_auth'"]
    }
}
