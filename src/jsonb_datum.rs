//! A jsonb value handed through as PostgreSQL built it. pgrx's `JsonB` converts to
//! and from `serde_json` by way of text, which for a tool's result (tens of
//! kilobytes) costs more than running the tool: `call_tool` returns the handler's
//! envelope as this type instead.

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::JsonB;

/// A detoasted jsonb datum in the memory context it was read into.
pub struct JsonbDatum(pg_sys::Datum);

impl JsonbDatum {
    /// The value as JSON text (jsonb's output function: no parsing, no depth limit).
    pub fn to_text(&self) -> String {
        unsafe {
            let text = pgrx::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(self.0)])
                .expect("jsonb_out returns a string");
            std::ffi::CStr::from_ptr(text.cast_mut_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }
}

impl From<JsonB> for JsonbDatum {
    fn from(j: JsonB) -> Self {
        JsonbDatum(j.into_datum().expect("a JsonB value is never NULL"))
    }
}

impl FromDatum for JsonbDatum {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // A copy in the current context: SPI's own memory ends with the SPI call.
        let copy = unsafe { pg_sys::pg_detoast_datum_copy(datum.cast_mut_ptr()) };
        Some(JsonbDatum(pg_sys::Datum::from(copy)))
    }
}

impl IntoDatum for JsonbDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// As an argument: the datum as given (detoasted), unread until the caller asks.
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbDatum {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum::<Self>()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }
}

unsafe impl BoxRet for JsonbDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

unsafe impl SqlTranslatable for JsonbDatum {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbDatum);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
