//! GUCs: `mcp_auth.bcrypt_cost` (superuser only) and `mcp_auth.tenant_id`
//! (the tenant of an mcp_admin session; ignored for everyone else).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static BCRYPT_COST: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static TENANT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

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
    GucRegistry::define_string_guc(
        c"mcp_auth.tenant_id",
        c"Tenant of an mcp_admin session (uuid).",
        c"Read only for members of mcp_admin and superusers; a validated MCP key always wins.",
        &TENANT_ID,
        GucContext::Userset,
        GucFlags::default(),
    );
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
