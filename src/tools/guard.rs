//! When `call_tool` may run. Every call writes its audit row and rate-limit charge;
//! for an `mcp_client` session those must commit with the call, or a client could
//! read a result and then roll its audit and charge back (`BEGIN; SELECT call_tool
//! ...; ROLLBACK`, a failing statement after it in one query string or pipeline, or
//! a `UNION ALL` with an error after the row was sent).

use crate::roles::{self, Caller};
use pgrx::pg_sys;

/// Why this transaction cannot run a call, if it cannot.
pub fn unfit_for_call() -> Option<&'static str> {
    unsafe {
        if pg_sys::XactReadOnly {
            return Some(
                "call_tool needs a read-write transaction: every call writes its audit row",
            );
        }
        if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
            return Some(
                "call_tool needs READ COMMITTED isolation: the rate limit must see other sessions' calls",
            );
        }
    }
    if roles::caller() != Caller::Other {
        // Superusers and mcp_admin own their tenant's audit trail anyway.
        return None;
    }
    unsafe {
        if pg_sys::IsTransactionBlock() || pg_sys::IsSubTransaction() {
            return Some(
                "call_tool must run in its own transaction, not inside BEGIN ... COMMIT \
                 or with other statements: its audit row and rate-limit charge commit with it",
            );
        }
    }
    if !is_whole_statement() {
        return Some("call_tool must be the whole statement: SELECT call_tool(...)");
    }
    // As PreventInTransactionBlock does: the extended protocol commits right after
    // this statement, before any later message of a pipeline runs.
    unsafe { pg_sys::MyXactFlags |= pg_sys::XACT_FLAGS_NEEDIMMEDIATECOMMIT as i32 };
    None
}

/// Whether the top-level statement is exactly `SELECT call_tool(...)`, optionally
/// with a safe wrapper (`::text`, `->'result'`): the arguments run before the call,
/// and nothing that could show the result and then fail runs after it.
fn is_whole_statement() -> bool {
    use pg_sys::NodeTag::*;
    unsafe {
        let portal = pg_sys::ActivePortal;
        if portal.is_null() || pg_sys::list_length((*portal).stmts) != 1 {
            return false;
        }
        let stmt = pg_sys::list_nth((*portal).stmts, 0) as *mut pg_sys::PlannedStmt;
        if (*stmt).type_ != T_PlannedStmt || (*stmt).commandType != pg_sys::CmdType::CMD_SELECT {
            return false;
        }
        let plan = (*stmt).planTree;
        if plan.is_null()
            || (*plan).type_ != T_Result
            || !(*plan).lefttree.is_null()
            || !(*plan).qual.is_null()
            || !(*(plan as *mut pg_sys::Result)).resconstantqual.is_null()
            || pg_sys::list_length((*plan).targetlist) != 1
        {
            return false;
        }
        let entry = pg_sys::list_nth((*plan).targetlist, 0) as *mut pg_sys::TargetEntry;
        let expr = unwrap_safe((*entry).expr as *mut pg_sys::Node);
        !expr.is_null()
            && (*expr).type_ == T_FuncExpr
            && is_call_tool((*(expr as *mut pg_sys::FuncExpr)).funcid)
    }
}

/// The jsonb operators a caller may apply to the envelope (`->`, `->>` by key or
/// index): built-in, without side effects. Anything else around the call, such as a
/// function that could show the result (RAISE NOTICE) and then fail, is refused.
const SAFE_OPERATORS: [u32; 4] = [
    pg_sys::F_JSONB_OBJECT_FIELD,
    pg_sys::F_JSONB_OBJECT_FIELD_TEXT,
    pg_sys::F_JSONB_ARRAY_ELEMENT,
    pg_sys::F_JSONB_ARRAY_ELEMENT_TEXT,
];

/// `expr` without its safe wrappers: casts through text output, and the operators
/// above with a constant right-hand side.
unsafe fn unwrap_safe(mut expr: *mut pg_sys::Node) -> *mut pg_sys::Node {
    use pg_sys::NodeTag::*;
    unsafe {
        while !expr.is_null() {
            match (*expr).type_ {
                T_CoerceViaIO => expr = (*(expr as *mut pg_sys::CoerceViaIO)).arg.cast(),
                T_OpExpr => {
                    let op = expr as *mut pg_sys::OpExpr;
                    let args = (*op).args;
                    if !SAFE_OPERATORS.contains(&(*op).opfuncid.to_u32())
                        || pg_sys::list_length(args) != 2
                        || (*(pg_sys::list_nth(args, 1) as *mut pg_sys::Node)).type_ != T_Const
                    {
                        return expr;
                    }
                    expr = pg_sys::list_nth(args, 0).cast();
                }
                _ => return expr,
            }
        }
        expr
    }
}

fn is_call_tool(funcid: pg_sys::Oid) -> bool {
    unsafe {
        if pg_sys::get_func_namespace(funcid) != crate::spi::namespace() {
            return false;
        }
        let name = pg_sys::get_func_name(funcid);
        !name.is_null() && std::ffi::CStr::from_ptr(name) == c"call_tool"
    }
}
