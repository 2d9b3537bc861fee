//! The rules of mcp_auth that need no database: the public key format and its
//! checksum, the lookup digest, tool-permission patterns, redaction, the bounds and
//! schema checks of tool arguments, and the response envelope.
//!
//! The PostgreSQL extension and the `mcp-auth` binary both depend on this crate,
//! so a key is generated, parsed and matched by one implementation everywhere.

pub mod arguments;
pub mod audit_chain;
pub mod envelope;
pub mod key;
pub mod redact;
pub mod token;
pub mod tools;

pub use key::{Environment, KeyFormatError, ParsedKey};
